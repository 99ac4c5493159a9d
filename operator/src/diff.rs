//! Desired versus observed: is a write needed?
//!
//! The API server adds defaults, status and metadata to what was applied, so an observed object
//! matches when everything the operator renders is there with the same value; fields only the
//! server set are not the operator's business. This is what makes a converged reconcile write
//! nothing.

use serde_json::Value;

/// True when `desired` is contained in `observed`: objects recursively by key, arrays element by
/// element with equal length, scalars by value. Integers and their string form differ, as
/// they do for the API server.
pub fn contains(observed: &Value, desired: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, w)| match have.get(k) {
            Some(h) => contains(h, w),
            // An empty map or list that the server dropped is no difference.
            None => is_empty(w),
        }),
        (Value::Object(want), Value::Null) => want.values().all(is_empty),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains(h, w))
        }
        (Value::Array(want), Value::Null) => want.is_empty(),
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        (w, h) => w == h,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::contains;
    use serde_json::json;

    #[test]
    fn server_defaults_do_not_count_as_drift() {
        let desired =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let observed = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
            "template": {"spec": {"containers": [{"name": "a", "terminationMessagePath": "/dev/termination-log"}]}}},
            "status": {"availableReplicas": 2}});
        assert!(contains(&observed, &desired));
    }

    #[test]
    fn changed_or_missing_values_are_drift() {
        let desired = json!({"spec": {"replicas": 3}});
        assert!(!contains(&json!({"spec": {"replicas": 2}}), &desired));
        assert!(!contains(&json!({"spec": {}}), &desired));
        assert!(!contains(&json!({"a": [1, 2]}), &json!({"a": [1]})));
        assert!(!contains(&json!({"port": "8080"}), &json!({"port": 8080})));
    }

    #[test]
    fn empty_collections_match_absence() {
        assert!(contains(&json!({}), &json!({"ingress": [], "labels": {}})));
        assert!(!contains(&json!({}), &json!({"labels": {"a": "b"}})));
    }
}
