//! The gateway: Protostar's only way in. It owns both listeners — public (`/api`, the widget
//! and pages) and admin (`/admin`) — and sends each request, by a fixed route table, to the
//! target that answers it: the target's router when it runs in this process
//! (`--target all`), an HTTP client to its listener otherwise. Either way the upstream is a
//! tower `Service`, and the same checks run in front of it: CORS per chatbot origin, a token
//! check, rate limits (shared through Redis), a circuit breaker and retries for remote targets.

pub mod breaker;
pub mod config;
pub mod cors;
pub mod front;
pub mod health;
pub mod metrics;
pub mod openapi;
pub mod pool;
pub mod proxy;
pub mod rate_limit;
pub mod routes;
pub mod web;

use axum::Router;
use axum::routing::any;
use config::Settings;
use front::{Front, Upstream};
use futures::future::BoxFuture;
use kernel::config::ConfigError;
use kernel::service::{Platform, Routes, ServiceError};
use routes::Listener;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

pub const TARGET: &str = "gateway";

/// The targets that run in this process, and their routers.
pub struct LocalTargets {
    pub names: Vec<&'static str>,
    pub public: Router,
    pub admin: Router,
}

/// The registry's start hook: the gateway has no routes of its own to add, it wraps the
/// others' (see [`front`]); here it only checks its settings, so that a bad one stops the
/// process before any other target starts.
pub fn init(platform: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(async move {
        Settings::read(&platform.config)?;
        Ok(Routes::default())
    })
}

/// Both listeners' routers, with every route going through the gateway.
pub async fn front(platform: &Platform, local: LocalTargets) -> Result<Routes, ServiceError> {
    let settings = Settings::read(&platform.config)?;
    let known = routes::targets();
    let unknown: Vec<ConfigError> = settings
        .upstreams
        .keys()
        .filter(|t| !known.contains(&t.as_str()))
        .map(|t| {
            ConfigError::key(
                &format!("upstreams.{t}"),
                format!(
                    "names no target the gateway routes to ({})",
                    known.join(", ")
                ),
            )
        })
        .collect();
    ConfigError::collect(unknown)?;

    let metrics = metrics::GatewayMetrics::register(&platform.metrics);
    let proxy_settings = proxy::ProxySettings {
        timeout: settings.request_timeout(),
        connect_timeout: Duration::from_millis(settings.gateway.connect_timeout_ms),
        retries: settings.gateway.retries,
    };
    let mut public: HashMap<&'static str, Upstream> = HashMap::new();
    let mut admin: HashMap<&'static str, Upstream> = HashMap::new();
    let mut placements = Vec::new();
    for target in known {
        if local.names.contains(&target) {
            public.insert(target, front::in_process(local.public.clone()));
            admin.insert(target, front::in_process(local.admin.clone()));
            placements.push((target, health::Placement::InProcess));
            continue;
        }
        let Some(urls) = settings.upstreams.get(target) else {
            placements.push((target, health::Placement::NotDeployed));
            continue;
        };
        let remote = |base: &http::Uri| {
            BoxCloneSyncService::new(proxy::HttpUpstream::new(
                target,
                base.clone(),
                breaker::Breaker::new(&settings.gateway.breaker),
                &proxy_settings,
                metrics.clone(),
            ))
        };
        if let Some(base) = &urls.public {
            public.insert(target, remote(base));
            placements.push((target, health::Placement::Remote(base.clone())));
        }
        if let Some(base) = &urls.admin {
            admin.insert(target, remote(base));
        }
    }

    let limiter = Arc::new(rate_limit::RateLimiter::new(
        settings.redis_url.as_deref(),
        metrics.clone(),
        platform.stop.clone(),
    ));
    let cors = Arc::new(cors::Cors::new(&settings.gateway.cors.allowed_origins));
    if let Some(chat) = admin.get("chat").cloned() {
        spawn_origin_refresh(
            chat,
            cors.clone(),
            Duration::from_secs(settings.gateway.cors.origins_refresh_secs.max(1)),
            platform.readiness.clone(),
            platform.stop.clone(),
        );
    }
    let health = Arc::new(health::Health {
        targets: placements,
        readiness: platform.readiness.clone(),
        client: kernel::http::client(Duration::from_secs(3)),
        limiter: limiter.clone(),
    });
    tracing::info!(
        rate_limits = limiter.backend(),
        in_process = ?local.names,
        remote = ?settings.upstreams.keys().collect::<Vec<_>>(),
        "gateway ready"
    );

    let public_auth = public.get("auth").cloned();
    let make = |listener: Listener, upstreams: HashMap<&'static str, Upstream>| {
        let state = Arc::new(Front {
            listener,
            upstreams,
            verifier: platform.verifier.clone(),
            limiter: limiter.clone(),
            cors: cors.clone(),
            trusted_proxies: settings.trusted_proxies.clone(),
            rates: settings.gateway.rate_limit.clone(),
            max_body: settings.gateway.max_body_bytes,
            max_upload: settings.gateway.max_upload_bytes,
            health: (listener == Listener::Admin).then(|| health.clone()),
            sign_in: (listener == Listener::Admin)
                .then(|| public_auth.clone())
                .flatten(),
        });
        // Routes, not a fallback: the listener's own `/healthz`, `/readyz` and `/metrics` are
        // merged beside these and, being exact, win over the catch-all.
        Router::new()
            .route("/", any(front::handle))
            .route("/{*path}", any(front::handle))
            .with_state(state)
    };
    Ok(Routes {
        public: make(Listener::Public, public),
        admin: make(Listener::Admin, admin),
    })
}

/// Re-reads the chatbots' widget origins from the chat service every `every`, keeping the last
/// good answer when it fails. Until the first good answer it asks every second: widgets loaded
/// just after a start are refused only as long as chat is not ready. An in-process chat is
/// asked only once its schema is (its readiness check `database:chat`), not while it migrates.
fn spawn_origin_refresh(
    chat_admin: Upstream,
    cors: Arc<cors::Cors>,
    every: Duration,
    readiness: kernel::telemetry::Readiness,
    stop: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let mut loaded = false;
        loop {
            if !loaded && !chat_schema_ready(&readiness).await {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
                }
            }
            let req = axum::http::Request::get(cors::ORIGINS_PATH)
                .body(axum::body::Body::empty())
                .expect("a static request is valid");
            let res = chat_admin.clone().oneshot(req).await;
            match res {
                Ok(res) if res.status().is_success() => {
                    let body = axum::body::to_bytes(res.into_body(), 4 * 1024 * 1024).await;
                    match body.map(|b| serde_json::from_slice::<cors::WidgetOrigins>(&b)) {
                        Ok(Ok(origins)) => {
                            cors.update(origins);
                            loaded = true;
                        }
                        _ => tracing::warn!("the chat service's widget origins were unreadable"),
                    }
                }
                Ok(res) => tracing::debug!(status = %res.status(), "widget origins not available"),
                Err(e) => match e {},
            }
            let wait = if loaded {
                every
            } else {
                every.min(Duration::from_secs(1))
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

/// Whether this process's chat schema is ready; true when chat does not run here (a remote
/// chat answers for itself).
async fn chat_schema_ready(readiness: &kernel::telemetry::Readiness) -> bool {
    readiness
        .run()
        .await
        .iter()
        .find(|(name, _)| name == "database:chat")
        .is_none_or(|(_, outcome)| outcome.is_ok())
}
