//! The generated CRD: fresh on disk, structural, and carrying the validation it promises.

use protostar_crds::{CRD_FILE, Protostar, StoreMode, crd, crd_yaml};
use serde_json::{Value, json};

fn schema() -> Value {
    let crd = serde_json::to_value(crd()).expect("CRD serialises");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

#[test]
fn crd_yaml_is_fresh() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_FILE);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = crd_yaml().expect("CRD renders");
    assert!(
        committed == generated,
        "{} is stale: run `cargo run -p protostar-crds --bin protostar-crdgen` and commit it",
        path.display()
    );
}

/// Kubernetes' structural-schema rules, as far as a generated schema can break them: every
/// node has a type (unless it is an int-or-string or keeps unknown fields), no `$ref`, and
/// nodes under anyOf/allOf/oneOf/not carry no type, default, nullable or description.
fn assert_structural(node: &Value, path: &str, in_junction: bool) {
    let Some(obj) = node.as_object() else {
        panic!("{path}: schema node is not an object");
    };
    assert!(!obj.contains_key("$ref"), "{path}: $ref is not allowed");
    assert!(
        !obj.contains_key("definitions") && !obj.contains_key("$defs"),
        "{path}: definitions"
    );
    let escape = obj.get("x-kubernetes-int-or-string") == Some(&json!(true))
        || obj.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true));
    if in_junction {
        for key in [
            "type",
            "default",
            "nullable",
            "description",
            "additionalProperties",
        ] {
            assert!(
                !obj.contains_key(key),
                "{path}: `{key}` inside anyOf/allOf/oneOf/not"
            );
        }
    } else if !escape {
        let ty = obj.get("type").and_then(Value::as_str);
        assert!(ty.is_some_and(|t| !t.is_empty()), "{path}: missing type");
    }
    if obj.contains_key("additionalProperties") {
        assert!(
            !obj.contains_key("properties"),
            "{path}: properties with additionalProperties"
        );
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            assert_structural(child, &format!("{path}.{name}"), in_junction);
        }
    }
    if let Some(items) = obj.get("items") {
        assert_structural(items, &format!("{path}[]"), in_junction);
    }
    if let Some(extra) = obj.get("additionalProperties").filter(|v| v.is_object()) {
        assert_structural(extra, &format!("{path}{{}}"), in_junction);
    }
    for junction in ["anyOf", "allOf", "oneOf"] {
        for (i, child) in obj
            .get(junction)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            assert_structural(child, &format!("{path}/{junction}[{i}]"), true);
        }
    }
    if let Some(not) = obj.get("not") {
        assert_structural(not, &format!("{path}/not"), true);
    }
}

#[test]
fn crd_is_structural() {
    assert_structural(&schema(), "", false);
}

#[test]
fn structural_check_rejects_untyped_nodes() {
    // The check itself must be able to fail.
    let bad = json!({"type": "object", "properties": {"x": {"description": "no type"}}});
    let caught = std::panic::catch_unwind(|| assert_structural(&bad, "", false));
    assert!(caught.is_err());
}

#[test]
fn crd_has_status_subresource_and_printer_columns() {
    let crd = serde_json::to_value(crd()).expect("CRD serialises");
    let version = &crd["spec"]["versions"][0];
    assert_eq!(crd["spec"]["group"], "protostar.dev");
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert!(version["subresources"]["status"].is_object());
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for wanted in ["Ready", "Version", "Age"] {
        assert!(
            columns.contains(&wanted),
            "missing printer column {wanted}: {columns:?}"
        );
    }
}

fn rules_at(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["rule"].as_str().map(str::to_owned))
        .collect()
}

fn enum_values(node: &Value) -> Vec<String> {
    let mut values: Vec<String> = node["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    values.sort();
    values
}

#[test]
fn schema_carries_cel_rules_ranges_and_enums() {
    let spec = &schema()["properties"]["spec"]["properties"];
    let db = &spec["database"];
    assert!(
        rules_at(db)
            .iter()
            .any(|r| r.contains("has(self.external)")),
        "external database needs a secret reference: {db}"
    );
    assert_eq!(rules_at(&db["properties"]["mode"]), vec!["self == oldSelf"]);
    assert_eq!(
        enum_values(&db["properties"]["mode"]),
        ["External", "Managed"]
    );
    let instances = &db["properties"]["managed"]["properties"]["instances"];
    assert_eq!(
        (instances["minimum"].as_f64(), instances["maximum"].as_f64()),
        (Some(1.0), Some(9.0))
    );
    assert_eq!(
        enum_values(&spec["broker"]["properties"]["mode"]),
        ["External", "Managed", "None"]
    );
    assert!(
        rules_at(&spec["gateway"])
            .iter()
            .any(|r| r.contains("has(self.className) != has(self.existing)"))
    );
    let storage_class =
        &db["properties"]["managed"]["properties"]["storage"]["properties"]["storageClassName"];
    assert_eq!(rules_at(storage_class), vec!["self == oldSelf"]);
    let required = schema()["properties"]["spec"]["required"].clone();
    for field in [
        "version",
        "hostnames",
        "gateway",
        "database",
        "objectStorage",
    ] {
        assert!(
            required
                .as_array()
                .is_some_and(|r| r.contains(&json!(field))),
            "{field} required"
        );
    }
}

#[test]
fn minimal_spec_takes_defaults() {
    let ps: Protostar = serde_json::from_value(json!({
        "apiVersion": "protostar.dev/v1alpha1",
        "kind": "Protostar",
        "metadata": {"name": "home", "namespace": "protostar"},
        "spec": {
            "version": "0.1.0",
            "hostnames": {"public": ["chat.example.org"], "admin": "admin.example.org"},
            "gateway": {"existing": {"name": "shared"}},
            "database": {},
            "objectStorage": {
                "endpoint": "http://minio:9000",
                "bucket": "protostar",
                "credentialsSecretRef": {"name": "minio"}
            }
        }
    }))
    .expect("minimal spec parses");
    assert_eq!(ps.spec.database.mode, StoreMode::Managed);
    assert_eq!(ps.spec.database.managed.instances, 1);
    assert!(ps.spec.database.managed.image.contains("standard"));
    assert_eq!(ps.spec.log_filter, "info");
    assert_eq!(ps.spec.image.repository, "ghcr.io/protostar-dev/protostar");
    assert!(ps.spec.services.for_target("chat").is_none());
}

#[test]
fn top_level_rule_bounds_the_instance_name() {
    assert!(
        rules_at(&schema())
            .iter()
            .any(|r| r.contains("size(self.metadata.name) <= 30")),
        "children's names derive from the instance's"
    );
}
