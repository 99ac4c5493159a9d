//! The Grafana dashboards under `gitops/observability/dashboards` (part of this issue): every file
//! is valid dashboard JSON, and every PromQL query names only metrics that something exports —
//! the kernel's and noti's registries (read from the real registries, not a copy), the gateway's
//! and chat's, RabbitMQ's plugin, and the few names later services are to export, which the
//! dashboards say.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

/// Registered by `services/gateway/src/metrics.rs` (a crate noti does not depend on).
const GATEWAY: &[&str] = &[
    "protostar_gateway_rate_limited_total",
    "protostar_gateway_rate_limit_fallbacks_total",
    "protostar_gateway_upstream_requests_total",
    "protostar_gateway_upstream_retries_total",
    "protostar_gateway_breaker_state",
];
/// Registered by `services/chat/src/content/metrics.rs` and `services/chat/src/metrics.rs`.
const CHAT: &[&str] = &[
    "protostar_document_uploads_total",
    "protostar_questions_total",
    "protostar_quota_refusals_total",
];
/// RabbitMQ's own Prometheus plugin (per-object metrics).
const RABBITMQ: &[&str] = &[
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
];
/// Not exported yet: the names ai's ingestion is to export. Each panel that reads one says so
/// in its description (checked below).
const FUTURE: &[&str] = &[
    "protostar_ingestion_documents_total",
    "protostar_ingestion_in_progress",
    "protostar_ingestion_chunks_total",
];

fn dashboards() -> Vec<(PathBuf, serde_json::Value)> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../gitops/observability/dashboards");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f, v)
        })
        .collect()
}

/// Series names the registries expose, read from their own text output. A family shows only
/// once it has a child, so one child of each is made first (in this test process only).
fn exported() -> HashSet<String> {
    use kernel::events::metrics::{ConsumerLabels, SchemaLabel};
    let metrics = kernel::telemetry::Metrics::new();
    metrics.register(
        "noti_deliveries",
        "Notifications",
        noti::send::metrics().clone(),
    );
    let http = kernel::telemetry::HttpLabels {
        listener: "public".into(),
        method: "GET".into(),
        status: 200,
    };
    metrics.http_requests.get_or_create(&http).inc();
    metrics.http_duration.get_or_create(&http).observe(0.01);
    let events = kernel::events::metrics::get();
    let schema = SchemaLabel {
        schema: "noti".into(),
    };
    events.published.get_or_create(&schema).inc();
    events.publish_failures.get_or_create(&schema).inc();
    events
        .consumed
        .get_or_create(&ConsumerLabels {
            consumer: "noti".into(),
            outcome: "applied".into(),
        })
        .inc();
    noti::send::metrics()
        .get_or_create(&noti::send::DeliveryLabels {
            channel: "email".into(),
            outcome: "sent".into(),
        })
        .inc();
    metrics
        .encode()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The metric names a PromQL expression reads: what is left once strings, label matchers,
/// ranges, grouping clauses, functions and keywords are taken out.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut cleaned = String::new();
    let mut chars = expr.chars().peekable();
    let mut depth_brace = 0;
    let mut depth_bracket = 0;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == '"' {
                        break;
                    }
                }
                cleaned.push(' ');
            }
            '{' => depth_brace += 1,
            '}' => depth_brace -= 1,
            '[' => depth_bracket += 1,
            ']' => depth_bracket -= 1,
            _ if depth_brace > 0 || depth_bracket > 0 => {}
            c => cleaned.push(c),
        }
    }
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregations may put `by (...)` between their name and their parentheses.
    const NOT_METRICS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "group",
    ];
    let chars: Vec<char> = cleaned.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':') || (i > 0 && chars[i - 1] == '$') {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len()
            && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
        {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let mut j = i;
        while j < chars.len() && chars[j] == ' ' {
            j += 1;
        }
        let call = j < chars.len() && chars[j] == '(';
        if GROUPING.contains(&word.as_str()) {
            // The label list in parentheses.
            if call {
                while j < chars.len() && chars[j] != ')' {
                    j += 1;
                }
                i = j;
            }
        } else if !call && !NOT_METRICS.contains(&word.as_str()) {
            names.insert(word);
        }
    }
    names
}

#[test]
fn the_parser_finds_metrics_not_labels_or_functions() {
    let e = r#"histogram_quantile(0.95, sum by (le, container) (rate(protostar_http_request_duration_seconds_bucket{namespace="$namespace"}[$__rate_interval])))"#;
    assert_eq!(
        metric_names(e).into_iter().collect::<Vec<_>>(),
        ["protostar_http_request_duration_seconds_bucket"]
    );
    let e = r#"sum(rate(a_total{x="y"}[5m])) / sum without (pod) (b_total) > bool 0"#;
    assert_eq!(
        metric_names(e).into_iter().collect::<Vec<_>>(),
        ["a_total", "b_total"]
    );
}

#[test]
fn every_dashboard_is_valid_and_reads_only_exported_metrics() {
    let all = dashboards();
    assert!(all.len() >= 3, "dashboards found: {}", all.len());
    let mut known = exported();
    assert!(known.contains("protostar_http_requests_total"), "{known:?}");
    assert!(
        known.contains("protostar_noti_deliveries_total"),
        "{known:?}"
    );
    known.extend(
        GATEWAY
            .iter()
            .chain(CHAT)
            .chain(RABBITMQ)
            .map(|s| (*s).to_owned()),
    );
    let future: HashSet<String> = FUTURE.iter().map(|s| (*s).to_owned()).collect();

    let mut uids = HashSet::new();
    for (file, d) in &all {
        let name = file.display();
        assert!(
            uids.insert(
                d["uid"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: uid"))
                    .to_owned()
            )
        );
        assert!(
            d["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{name}: title"
        );
        let panels = d["panels"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: panels"));
        assert!(!panels.is_empty(), "{name}: no panels");
        let mut ids = HashSet::new();
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{name}: duplicate panel id"
            );
            assert!(
                p["gridPos"]["w"].as_u64().is_some(),
                "{name}/{title}: gridPos"
            );
            let kind = p["datasource"]["type"].as_str().unwrap_or_default();
            let targets = p["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}/{title}: no queries");
            for t in targets {
                let expr = t["expr"].as_str().unwrap();
                match kind {
                    "prometheus" => {
                        let names = metric_names(expr);
                        assert!(!names.is_empty(), "{name}/{title}: no metric in {expr}");
                        for m in names {
                            if future.contains(&m) {
                                let desc = p["description"].as_str().unwrap_or_default();
                                assert!(
                                    desc.contains("NOT YET EXPORTED") && desc.contains(&m),
                                    "{name}/{title}: {m} is not exported yet; the description must say so"
                                );
                            } else {
                                assert!(
                                    known.contains(&m),
                                    "{name}/{title}: `{m}` is exported by nothing (in {expr})"
                                );
                            }
                        }
                    }
                    "loki" => {
                        assert!(
                            expr.contains(r#"namespace="$namespace""#),
                            "{name}/{title}: {expr}"
                        );
                        assert!(
                            expr.contains("| json"),
                            "{name}/{title}: the logs are JSON lines: {expr}"
                        );
                    }
                    other => panic!("{name}/{title}: datasource type `{other}`"),
                }
            }
        }
        for v in d["templating"]["list"].as_array().unwrap() {
            if let Some(q) = v["definition"].as_str() {
                for m in metric_names(q.trim_start_matches("label_values(").trim_end_matches(')')) {
                    if m != "namespace" && m != "container" {
                        assert!(known.contains(&m), "{name}: variable reads `{m}`");
                    }
                }
            }
        }
    }
}
