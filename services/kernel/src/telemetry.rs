//! Logs, metrics and health: JSON log lines on stdout (collected by Loki), Prometheus metrics,
//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter such as `info,protostar=debug`.
    #[serde(default = "default_filter")]
    pub filter: String,
    #[serde(default)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: default_filter(),
            format: LogFormat::default(),
        }
    }
}

fn default_filter() -> String {
    "info".into()
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Json,
    /// For a person at a terminal.
    Text,
}

/// Installs the global subscriber once, writing to standard output; later calls (tests) are
/// no-ops.
pub fn init_logging(config: &LogConfig) -> Result<(), crate::ConfigError> {
    init_logging_with(config, crate::log_lines::LogLines::stdout, || {
        crate::log_lines::LogLines::stdout()
    })
}

/// The same, with the lines going to `file` instead (appended, each line one write).
pub fn init_logging_to(config: &LogConfig, file: std::fs::File) -> Result<(), crate::ConfigError> {
    let second = file
        .try_clone()
        .map_err(|e| crate::ConfigError::key("log", format!("cannot use the log file: {e}")))?;
    init_logging_with(
        config,
        move || crate::log_lines::LogLines::to_file(file),
        move || crate::log_lines::LogLines::to_file(second),
    )
}

/// `events`: the writer of the subscriber; `access`: the writer of the access lines, which
/// the kernel encodes itself in the JSON format ([`crate::access_log`]).
fn init_logging_with(
    config: &LogConfig,
    events: impl FnOnce() -> crate::log_lines::LogLines,
    access: impl FnOnce() -> crate::log_lines::LogLines,
) -> Result<(), crate::ConfigError> {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_new(&config.filter)
        .map_err(|e| crate::ConfigError::key("log.filter", e.to_string()))?;
    let installed = match config.format {
        LogFormat::Json => json_subscriber(filter, events()).try_init(),
        LogFormat::Text => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(events())
            .finish()
            .try_init(),
    };
    if installed.is_ok() && config.format == LogFormat::Json {
        crate::access_log::install(access());
    }
    Ok(())
}

/// The JSON log format, one object per line (what Loki collects): the event's fields flattened
/// beside `timestamp`, `level` and `target`, and the current span's fields under `span`. Tests
/// that read log lines build their subscriber here, so they read what production writes.
pub fn json_subscriber<W>(
    filter: EnvFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .fmt_fields(crate::span_fields::JsonSpanFields)
        .finish()
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    // Shared and borrowed, not owned: one set of labels is built per request.
    pub listener: std::sync::Arc<str>,
    pub method: std::borrow::Cow<'static, str>,
    pub status: u16,
}

/// The process's metric registry and the metrics the kernel itself records.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: Family<HttpLabels, Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("protostar");
        let http_requests = Family::<HttpLabels, Counter>::default();
        let http_duration = Family::<HttpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ])
        });
        registry.register(
            "http_requests",
            "HTTP requests answered",
            http_requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            http_duration.clone(),
        );
        let events = crate::events::metrics::get();
        registry.register(
            "events_published",
            "Events the relays published",
            events.published.clone(),
        );
        registry.register(
            "events_publish_failures",
            "Relay batches the bus refused or could not take",
            events.publish_failures.clone(),
        );
        registry.register(
            "events_consumed",
            "Deliveries by consumer and outcome",
            events.consumed.clone(),
        );
        Self {
            registry: Arc::new(Mutex::new(registry)),
            http_requests,
            http_duration,
        }
    }

    /// Registers a service's own metric.
    pub fn register(
        &self,
        name: &str,
        help: &str,
        metric: impl prometheus_client::registry::Metric,
    ) {
        if let Ok(mut r) = self.registry.lock() {
            r.register(name, help, metric);
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Ok(r) = self.registry.lock() {
            let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        }
        out
    }
}

type CheckFn = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Named checks of what the process depends on; `/readyz` runs them all.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Arc<Mutex<Vec<(String, CheckFn)>>>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Readiness {
    pub fn add<F, Fut>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), String>> + Send + 'static,
    {
        let f: CheckFn = Arc::new(move || Box::pin(check()));
        if let Ok(mut c) = self.checks.lock() {
            c.push((name.into(), f));
        }
    }

    /// Every check's outcome, run concurrently, each bounded by a timeout.
    pub async fn run(&self) -> Vec<(String, Result<(), String>)> {
        let checks: Vec<(String, CheckFn)> =
            self.checks.lock().map(|c| c.clone()).unwrap_or_default();
        let runs = checks.into_iter().map(|(name, f)| async move {
            let outcome = match tokio::time::timeout(CHECK_TIMEOUT, f()).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} s", CHECK_TIMEOUT.as_secs())),
            };
            (name, outcome)
        });
        futures::future::join_all(runs).await
    }
}

#[derive(Clone)]
struct HealthState {
    metrics: Metrics,
    readiness: Readiness,
}

/// `/healthz`, `/readyz` and `/metrics`, merged into every listener.
pub fn health_router(metrics: Metrics, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(HealthState { metrics, readiness })
}

async fn readyz(State(s): State<HealthState>) -> Response {
    let results = s.readiness.run().await;
    let ready = results.iter().all(|(_, r)| r.is_ok());
    let checks: serde_json::Map<String, serde_json::Value> = results
        .into_iter()
        .map(|(name, r)| {
            let v = match r {
                Ok(()) => serde_json::json!({"status": "ok"}),
                Err(e) => serde_json::json!({"status": "failing", "reason": e}),
            };
            (name, v)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body =
        serde_json::json!({"status": if ready {"ready"} else {"not-ready"}, "checks": checks});
    (status, axum::Json(body)).into_response()
}

async fn metrics_handler(State(s): State<HealthState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
        .into_response()
}
