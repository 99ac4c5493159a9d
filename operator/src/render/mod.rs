//! Renderers: pure functions from a `Protostar` to the objects that make it run.
//!
//! Each module renders one kind of object (or one small family) as JSON in the exact shape of
//! its API type; the tests deserialise every rendered object into its `k8s-openapi` or
//! `gateway-api` type and back, so a misspelt field cannot hide. Nothing here talks to the API
//! server, reads the clock or draws randomness it was not handed.

pub mod broker;
pub mod config;
pub mod cronjob;
pub mod database;
pub mod gateway;
pub mod hpa;
pub mod migration;
pub mod network_policy;
pub mod pdb;
pub mod plan;
pub mod redis;
pub mod secrets;
pub mod service;
pub mod volume;
pub mod workload;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use protostar_crds::{Protostar, ProtostarSpec};
use serde_json::{Value, json};

use crate::kind::Kind;

/// The operator's name: field manager of every apply and `managed-by` label value.
pub const MANAGER: &str = "protostar-operator";
pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_INSTANCE: &str = "app.kubernetes.io/instance";
pub const LABEL_COMPONENT: &str = "app.kubernetes.io/component";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_VERSION: &str = "app.kubernetes.io/version";
/// Pods with this label may reach the data stores (the NetworkPolicies select on it).
pub const LABEL_DATA_CLIENT: &str = "protostar.dev/data-client";
/// Hash of the rendered configuration on pod templates, so a change rolls the pods.
pub const ANNOTATION_CONFIG_HASH: &str = "protostar.dev/config-hash";
/// The release a migration Job migrates to.
pub const ANNOTATION_MIGRATES_TO: &str = "protostar.dev/migrates-to";

/// One rendered object and where it goes.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: Kind,
    pub name: String,
    pub body: Value,
}

impl Object {
    pub fn new(kind: Kind, body: Value) -> Self {
        let name = body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Self { kind, name, body }
    }
}

/// What every renderer reads: the instance's identity and its spec.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    pub spec: &'a ProtostarSpec,
    /// Controller reference to the Protostar; `None` only in renderer tests that do not care.
    pub owner: Option<OwnerReference>,
}

impl<'a> Ctx<'a> {
    /// `None` when the resource has no namespace (the CRD is namespaced, so only a bug or a
    /// hand-built object gets here).
    pub fn from_resource(ps: &'a Protostar) -> Option<Self> {
        let namespace = ps.metadata.namespace.as_deref()?;
        let name = ps.metadata.name.as_deref()?;
        Some(Self {
            name,
            namespace,
            spec: &ps.spec,
            owner: ps.controller_owner_ref(&()),
        })
    }

    /// Name of a child object: `<instance>-<suffix>`.
    pub fn child(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    pub fn labels(&self, component: &str) -> Value {
        json!({
            LABEL_NAME: "protostar",
            LABEL_INSTANCE: self.name,
            LABEL_COMPONENT: component,
            LABEL_MANAGED_BY: MANAGER,
        })
    }

    /// The immutable subset of labels that Deployments and Services select on.
    pub fn selector(&self, component: &str) -> Value {
        json!({ LABEL_INSTANCE: self.name, LABEL_COMPONENT: component })
    }

    /// Metadata of a child. Data holders get no owner reference, so deleting the Protostar
    /// never deletes data (their removal is a deliberate, documented act).
    pub fn meta(&self, name: &str, component: &str, owned: bool) -> Value {
        let mut meta = json!({
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(component),
        });
        if owned && let Some(owner) = &self.owner {
            meta["ownerReferences"] = json!([owner]);
        }
        meta
    }

    pub fn image(&self, version: &str) -> String {
        format!("{}:{version}", self.spec.image.repository)
    }

    pub fn image_pull_secrets(&self) -> Option<Value> {
        let secrets = &self.spec.image.pull_secrets;
        (!secrets.is_empty())
            .then(|| Value::Array(secrets.iter().map(|s| json!({ "name": s })).collect()))
    }
}

/// Set `key` only when there is a value: rendered objects carry no nulls, so they compare
/// cleanly with what the API server returns.
pub fn put(obj: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(map), Some(value)) = (obj.as_object_mut(), value) {
        map.insert(key.to_owned(), value);
    }
}

/// A label selector string matching everything this operator made for one instance.
pub fn instance_selector(name: &str) -> String {
    format!("{LABEL_INSTANCE}={name},{LABEL_MANAGED_BY}={MANAGER}")
}
