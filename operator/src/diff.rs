//! Desired versus observed: is a write needed?
//!
//! The API server adds defaults, status and metadata to what was applied, so an observed object
//! matches when everything the operator renders is there with the same value; fields only the
//! server set are not the operator's business. This is what makes a converged reconcile write
//! nothing.

use serde_json::Value;

/// True when `desired` is contained in `observed`: objects recursively by key, arrays element by
/// element with equal length, scalars by value. Integers and their string form differ, as
/// they do for the API server. Quantities (values of `cpu`, `memory`, `storage`, `size`, …)
/// compare by amount, because the server rewrites them in canonical form (`1000m` → `1`).
pub fn contains(observed: &Value, desired: &Value) -> bool {
    contains_at(None, observed, desired)
}

/// Keys whose string values are Kubernetes quantities.
const QUANTITY_KEYS: [&str; 6] = [
    "cpu",
    "memory",
    "ephemeral-storage",
    "storage",
    "size",
    "nvidia.com/gpu",
];

fn contains_at(key: Option<&str>, observed: &Value, desired: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(k, w)| match have.get(k) {
            Some(h) => contains_at(Some(k), h, w),
            // An empty map or list that the server dropped is no difference.
            None => is_empty(w),
        }),
        (Value::Object(want), Value::Null) => want.values().all(is_empty),
        (Value::Array(want), Value::Array(have)) => {
            want.len() == have.len() && want.iter().zip(have).all(|(w, h)| contains_at(key, h, w))
        }
        (Value::Array(want), Value::Null) => want.is_empty(),
        (Value::Number(w), Value::Number(h)) => w.as_f64() == h.as_f64(),
        (Value::String(w), Value::String(h))
            if w != h && key.is_some_and(|k| QUANTITY_KEYS.contains(&k)) =>
        {
            match (quantity(w), quantity(h)) {
                (Some(a), Some(b)) => (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()) * 4.0,
                _ => false,
            }
        }
        (w, h) => w == h,
    }
}

/// The amount a quantity string stands for (`500m` → 0.5, `1Gi` → 2^30), or `None`.
pub fn quantity(s: &str) -> Option<f64> {
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        exp if exp.starts_with(['e', 'E']) => 10f64.powi(exp[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
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
    fn quantities_compare_by_amount_only_where_they_are_quantities() {
        let desired = json!({"resources": {"requests": {"cpu": "1000m", "memory": "1024Mi"}}});
        let observed = json!({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}});
        assert!(contains(&observed, &desired));
        assert!(!contains(
            &json!({"resources": {"requests": {"cpu": "2"}}}),
            &json!({"resources": {"requests": {"cpu": "1000m"}}})
        ));
        // Elsewhere strings are strings.
        assert!(!contains(
            &json!({"version": "1"}),
            &json!({"version": "1000m"})
        ));
        assert_eq!(super::quantity("500m"), Some(0.5));
        assert_eq!(super::quantity("2Ki"), Some(2048.0));
        assert_eq!(super::quantity("1e3"), Some(1000.0));
        assert_eq!(super::quantity("lots"), None);
    }

    #[test]
    fn empty_collections_match_absence() {
        assert!(contains(&json!({}), &json!({"ingress": [], "labels": {}})));
        assert!(!contains(&json!({}), &json!({"labels": {"a": "b"}})));
    }
}
