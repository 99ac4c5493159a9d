//! Fixtures shared by the operator's tests: a full-featured Protostar built from small,
//! chainable constructors.

#![allow(dead_code)]

use protostar_crds::{Protostar, ProtostarStatus};
use serde_json::{Value, json};

pub const NS: &str = "home";
pub const NAME: &str = "ps";

/// A spec that turns on every feature: managed stores, a created Gateway, jobs, models,
/// notifications, quotas and one autoscaled target.
pub fn full_spec(version: &str) -> Value {
    json!({
        "version": version,
        "hostnames": {"public": ["chat.example.org", "widget.example.org"], "admin": "admin.example.org"},
        "gateway": {
            "className": "cilium",
            "tls": {"publicCertificateRef": {"name": "public-tls"}, "adminCertificateRef": {"name": "admin-tls"}}
        },
        "database": {"mode": "Managed", "managed": {"instances": 2, "storage": {"size": "20Gi", "storageClassName": "local-path"}}},
        "broker": {"mode": "Managed"},
        "redis": {"mode": "Managed"},
        "objectStorage": {
            "endpoint": "https://minio.home.arpa:9000",
            "bucket": "protostar",
            "credentialsSecretRef": {"name": "minio-credentials"}
        },
        "models": {
            "generation": {
                "order": ["OpenAI", "Anthropic", "Extractive"],
                "openai": {"baseUrl": "http://vllm.ai.svc:8000", "model": "openai/gpt-oss-120b", "apiKeySecretRef": {"name": "vllm", "key": "token"}},
                "anthropic": {"model": "claude-sonnet-4-5", "apiKeySecretRef": {"name": "anthropic", "key": "api-key"}}
            },
            "embedding": {"provider": "OpenAI", "baseUrl": "http://ollama.ai.svc:11434", "model": "e5-small"}
        },
        "services": {"chat": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}, "psych": {"replicas": 1}},
        "quotas": {"guestTotal": 3, "stargazerPerDay": 10, "guestIpPerDay": 12, "chatbotPerDay": 500, "timezone": "Asia/Seoul", "maxUploadMegabytes": 30},
        "notifications": {
            "discordWebhookSecretRef": {"name": "discord", "key": "url"},
            "smtp": {"host": "smtp.example.org", "from": "bot@example.org", "credentialsSecretRef": {"name": "smtp"}}
        },
        "jobs": [{"name": "recrawl", "schedule": "0 3 * * *"}]
    })
}

pub struct Fixture(Value);

impl Fixture {
    pub fn new(version: &str) -> Self {
        Fixture(json!({
            "apiVersion": "protostar.dev/v1alpha1",
            "kind": "Protostar",
            "metadata": {"name": NAME, "namespace": NS, "uid": "ps-uid", "generation": 1},
            "spec": full_spec(version),
        }))
    }

    pub fn version(mut self, v: &str) -> Self {
        self.0["spec"]["version"] = json!(v);
        let g = self.0["metadata"]["generation"].as_i64().unwrap_or(1);
        self.0["metadata"]["generation"] = json!(g + 1);
        self
    }

    pub fn spec(mut self, f: impl FnOnce(&mut Value)) -> Self {
        f(&mut self.0["spec"]);
        self
    }

    pub fn status(mut self, status: &ProtostarStatus) -> Self {
        self.0["status"] = serde_json::to_value(status).expect("status serialises");
        self
    }

    pub fn deleting(mut self) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        self
    }

    pub fn json(&self) -> Value {
        self.0.clone()
    }

    pub fn build(self) -> Protostar {
        serde_json::from_value(self.0).expect("fixture is a valid Protostar")
    }
}
