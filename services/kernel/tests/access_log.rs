//! The access line as `telemetry::init_logging` writes it in the JSON format: encoded by the
//! kernel itself, one line per request, beside the subscriber's own lines. A test binary of
//! its own, because it installs the process's global logging.

use axum::Router;
use axum::routing::get;
use kernel::http::{serve, standard_layers};
use kernel::telemetry::{LogConfig, LogFormat, Metrics, Readiness, health_router, init_logging_to};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn json_logging_writes_one_access_line_per_request_beside_the_events() {
    let path = std::env::temp_dir().join(format!("protostar-access-{}.log", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .unwrap();
    init_logging_to(
        &LogConfig {
            filter: "info".into(),
            format: LogFormat::Json,
        },
        file,
    )
    .unwrap();

    let metrics = Metrics::new();
    let api = Router::new().route(
        "/noisy",
        get(|| async {
            tracing::warn!(detail = "inside", "handler warns");
            "ok"
        }),
    );
    let router = standard_layers(
        api.merge(health_router(metrics.clone(), Readiness::default())),
        "public",
        metrics,
        1024,
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, router, stop.clone()));

    let client = kernel::http::client(std::time::Duration::from_secs(10));
    let res = client
        .get(format!("http://{addr}/noisy?x=1"))
        .header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let ours = res.headers()["traceparent"].to_str().unwrap().to_owned();
    let span_id = ours.split('-').nth(2).unwrap().to_owned();
    // Health checks are not access-logged.
    let health = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    stop.cancel();

    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let access: Vec<&serde_json::Value> =
        lines.iter().filter(|v| v["message"] == "access").collect();
    assert_eq!(access.len(), 1, "{text}");
    let line = access[0];
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["target"], "kernel::http");
    assert!(
        chrono::DateTime::parse_from_rfc3339(line["timestamp"].as_str().unwrap()).is_ok(),
        "{line}"
    );
    assert_eq!(line["request_id"], request_id.as_str());
    assert_eq!(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(line["span_id"], span_id.as_str());
    assert_eq!(line["listener"], "public");
    assert_eq!(line["method"], "GET");
    assert_eq!(line["path"], "/noisy");
    assert_eq!(line["status"], 200);
    assert!(line["duration_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(line["client"], "127.0.0.1");

    // A line logged inside the request still carries the request's ids, from its span.
    let warned: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["message"] == "handler warns")
        .collect();
    assert_eq!(warned.len(), 1, "{text}");
    assert_eq!(warned[0]["level"], "WARN");
    assert_eq!(warned[0]["span"]["request_id"], request_id.as_str());
    assert_eq!(
        warned[0]["span"]["trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(warned[0]["span"]["span_id"], span_id.as_str());
}
