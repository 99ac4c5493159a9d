//! `protostar-operator`: elects a leader, serves metrics and probes, and reconciles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use clap::Parser;
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use prometheus_client::registry::Registry;
use protostar_operator::controller::{self, Context};
use protostar_operator::leader::LeaderElector;
use protostar_operator::metrics::Metrics;

#[derive(Parser, Debug)]
#[command(version, about = "Reconciles Protostar resources into the whole stack")]
struct Args {
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "OPERATOR_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    http_addr: SocketAddr,
    /// Watch one namespace only (default: all).
    #[arg(long, env = "WATCH_NAMESPACE")]
    namespace: Option<String>,
    /// Namespace of the leader-election Lease (normally the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "protostar-system")]
    lease_namespace: String,
    #[arg(long, default_value = "protostar-operator")]
    lease_name: String,
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Emit logs as JSON lines.
    #[arg(long, env = "OPERATOR_LOG_JSON")]
    log_json: bool,
}

async fn serve_http(addr: SocketAddr, registry: Arc<Registry>) -> anyhow::Result<()> {
    let metrics = move || {
        let registry = registry.clone();
        async move {
            let mut out = String::new();
            match prometheus_client::encoding::text::encode(&mut out, &registry) {
                Ok(()) => (StatusCode::OK, out),
                Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
            }
        }
    };
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {addr}"))?;
    axum::serve(listener, app).await.context("http server")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    if args.log_json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }

    let client = Client::try_default()
        .await
        .context("no Kubernetes client configuration")?;
    let metrics = Arc::new(Metrics::default());
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let http = tokio::spawn(serve_http(args.http_addr, Arc::new(registry)));

    let identity = args
        .identity
        .clone()
        .unwrap_or_else(|| format!("protostar-operator-{}", std::process::id()));
    let elector = LeaderElector::new(
        Api::<Lease>::namespaced(client.clone(), &args.lease_namespace),
        &args.lease_name,
        &identity,
        Duration::from_secs(args.lease_seconds),
    );
    tracing::info!(%identity, "waiting for the leader lease");
    elector.acquire().await?;
    tracing::info!(%identity, "leading");

    let ctx = Arc::new(Context::new(client, metrics, Some(identity)));
    tokio::select! {
        () = controller::run(ctx, args.namespace) => {
            // Shut down by a signal: hand over at once.
            if let Err(err) = elector.release().await {
                tracing::warn!(error = %err, "could not release the leader lease");
            }
            Ok(())
        }
        // Losing the lease stops reconciling at once; the pod restarts as a candidate.
        err = elector.hold() => Err(anyhow::Error::new(err).context("stopped leading")),
        res = http => Err(anyhow::anyhow!("http server stopped: {res:?}")),
    }
}
