//! `protostar serve`: start the selected targets in this process behind the public and admin
//! listeners, until SIGTERM.

use crate::targets::Target;
use axum::Router;
use kernel::config::{ConfigError, ConfigSource};
use kernel::http::{bind, serve, shutdown_signal, standard_layers};
use kernel::service::Platform;
use kernel::telemetry::health_router;
use serde::Deserialize;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Top-level keys of the binary itself.
#[derive(Debug, Deserialize)]
pub struct ListenConfig {
    #[serde(default = "default_public")]
    pub public_addr: String,
    #[serde(default = "default_admin")]
    pub admin_addr: String,
    /// Request bodies larger than this are refused with 413 (uploads have their own limit).
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(default = "default_drain")]
    pub drain_secs: u64,
}

fn default_public() -> String {
    "127.0.0.1:8080".into()
}
fn default_admin() -> String {
    "127.0.0.1:8081".into()
}
fn default_body_limit() -> usize {
    kernel::http::DEFAULT_BODY_LIMIT
}
fn default_drain() -> u64 {
    20
}

/// Every top-level key the binary knows; anything else is a misspelling and an error.
pub const KNOWN_KEYS: &[&str] = &[
    "public_addr",
    "admin_addr",
    "body_limit_bytes",
    "drain_secs",
    "data_dir",
    "database",
    "broker",
    "redis",
    "blob",
    "auth",
    "log",
    "upstreams",
    "ai",
    "audit",
    "noti",
    "chat",
    "gateway",
];

/// Every problem with the configuration at once: unknown keys, the binary's own settings and the
/// kernel's sections.
pub fn validate(config: &ConfigSource) -> Result<(), ConfigError> {
    let mut errors = Vec::new();
    if let Err(e) = check_known_keys(config, &[]) {
        errors.push(e);
    }
    if let Err(e) = config.section::<ListenConfig>("") {
        errors.push(e);
    }
    if let Err(e) = Platform::from_config(config.clone(), CancellationToken::new()) {
        errors.push(e);
    }
    if let Err(e) = noti::config::NotiConfig::load(config) {
        errors.push(e);
    }
    if let Err(e) = chat::ChatConfig::load(config) {
        errors.push(e);
    }
    if let Err(e) = ai::AiConfig::load(config) {
        errors.push(e);
    }
    ConfigError::collect(errors)
}

pub fn check_known_keys(config: &ConfigSource, extra: &[&str]) -> Result<(), ConfigError> {
    let errors: Vec<ConfigError> = config
        .top_level_keys()
        .into_iter()
        .filter(|k| !KNOWN_KEYS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
        .map(|k| ConfigError::key(&k, "is not a known setting (misspelt?)"))
        .collect();
    ConfigError::collect(errors)
}

pub async fn run(config: ConfigSource, targets: Vec<&Target>) -> anyhow::Result<()> {
    let listen: ListenConfig = config.section("")?;
    let stop = CancellationToken::new();
    let mut platform = Platform::from_config(config, stop.clone())?;
    platform.local_targets = targets.iter().map(|t| t.name.to_owned()).collect();
    // Ports first: a busy port is a configuration error to report before any target starts.
    let public_listener = bind(&listen.public_addr, "public_addr").await?;
    let admin_listener = bind(&listen.admin_addr, "admin_addr").await?;

    let mut public = Router::new();
    let mut admin = Router::new();
    for target in &targets {
        let Some(init) = target.init else { continue };
        let routes = init(&platform)
            .await
            .map_err(|e| anyhow::anyhow!("target {} failed to start: {e}", target.name))?;
        public = public.merge(routes.public);
        admin = admin.merge(routes.admin);
        tracing::info!(target = target.name, "target started");
    }
    // Calls between targets of this process (chat → ai) go straight to these routers.
    let _ = platform.local_admin.set(admin.clone());
    // With the gateway here, every request goes through it; the targets of this process are
    // its in-process upstreams. Without it, the targets answer their listeners directly, and
    // a gateway elsewhere forwards to them.
    if targets.iter().any(|t| t.name == gateway::TARGET) {
        let local = gateway::LocalTargets {
            names: targets
                .iter()
                .map(|t| t.name)
                .filter(|n| *n != gateway::TARGET)
                .collect(),
            public,
            admin,
        };
        let routes = gateway::front(&platform, local)
            .await
            .map_err(|e| anyhow::anyhow!("target gateway failed to start: {e}"))?;
        public = routes.public;
        admin = routes.admin;
    }
    let health = health_router(platform.metrics.clone(), platform.readiness.clone());
    let public = standard_layers(
        public.merge(health.clone()),
        "public",
        platform.metrics.clone(),
        listen.body_limit_bytes,
    );
    let admin = standard_layers(
        admin.merge(health),
        "admin",
        platform.metrics.clone(),
        listen.body_limit_bytes,
    );

    let names: Vec<&str> = targets.iter().map(|t| t.name).collect();
    tracing::info!(
        public = %public_listener.local_addr()?,
        admin = %admin_listener.local_addr()?,
        targets = ?names,
        events = platform.bus.kind(),
        "listening"
    );

    let servers = tokio::spawn({
        let stop = stop.clone();
        async move {
            tokio::try_join!(
                serve(public_listener, public, stop.clone()),
                serve(admin_listener, admin, stop.clone())
            )
        }
    });
    shutdown_signal().await;
    tracing::info!(
        drain_secs = listen.drain_secs,
        "stopping: draining in-flight requests"
    );
    stop.cancel();
    match tokio::time::timeout(Duration::from_secs(listen.drain_secs), servers).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => return Err(e.into()),
        Ok(Err(e)) => return Err(e.into()),
        Err(_) => tracing::warn!("drain deadline passed; closing remaining connections"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// `protostar migrate`: apply every selected target's migrations, then exit.
pub async fn migrate(config: ConfigSource, targets: Vec<&Target>) -> anyhow::Result<()> {
    let platform = Platform::from_config(config, CancellationToken::new())?;
    if platform.database.is_none() {
        return Err(ConfigError::key("database.url", "is required to migrate").into());
    }
    for target in targets {
        if let Some((schema, migrations)) = target.schema {
            platform.migrate_now(schema, migrations).await?;
            tracing::info!(target = target.name, schema, "migrated");
        }
    }
    Ok(())
}
