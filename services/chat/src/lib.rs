//! The chat service: chatbots and the questions recruiters ask them.
//!
//! - [`chatbots`]: each protostar's chatbot, its settings and public face;
//! - [`ask`]: asking, with exact quotas ([`ask::quota`]), answers streamed from the ai service
//!   and kept with their citations;
//! - [`conversations`], [`answers`] (feedback, corrections), [`insights`], [`talent`];
//! - [`content`]: career documents (uploads, originals in object storage, ingestion status);
//! - [`export`]: everything of one account's, for the user service's export.
//!
//! It talks to ai through events (`content.*`, `chat.correction_saved`) and its internal API
//! (`/internal/ai/answer`, `/internal/ai/retrieve`), in process under `--target all` and over
//! HTTP otherwise (`upstreams.ai.admin`).

pub mod ai;
pub mod answers;
pub mod ask;
pub mod chatbots;
pub mod content;
pub mod conversations;
mod events;
pub mod export;
pub mod insights;
mod metrics;
pub mod talent;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};
use futures::future::BoxFuture;
use kernel::client_address::TrustedProxies;
use kernel::db::Database;
use kernel::events::Subscription;
use kernel::service::{Platform, Routes, ServiceError};
use kernel::tokens::{Caller, Role, TokenVerifier};
use kernel::{ConfigError, Problem};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const TARGET: &str = "chat";
pub const SCHEMA: &str = "chat";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
pub(crate) const SERVICE: &str = "chat";

/// The `chat` configuration section: one subsection per module.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    #[serde(default)]
    pub content: content::ContentConfig,
    #[serde(default)]
    pub quotas: ask::quota::QuotaConfig,
    #[serde(default)]
    pub insights: insights::InsightsConfig,
    #[serde(default)]
    pub talent: talent::TalentConfig,
    /// Proxies whose `X-Forwarded-For` names the client (the gateway, when it runs in another
    /// process): the per-address guest quota counts the client, not the proxy.
    #[serde(default)]
    pub trusted_proxies: Option<String>,
    /// Longest an answer may take from ai, streaming included.
    #[serde(default = "default_answer_timeout")]
    pub answer_timeout_secs: u64,
}

fn default_answer_timeout() -> u64 {
    120
}

impl ChatConfig {
    /// The `chat` section with its bounds checked, for start-up and `protostar check-config`.
    pub fn load(config: &kernel::config::ConfigSource) -> Result<Self, ConfigError> {
        let c: Self = config.section("chat")?;
        let mut errors = Vec::new();
        for check in [
            c.content.validate(),
            c.quotas.validate(),
            c.insights.validate(),
            c.talent.validate(),
        ] {
            if let Err(e) = check {
                errors.push(e);
            }
        }
        if let Err(m) = TrustedProxies::parse(c.trusted_proxies.as_deref().unwrap_or("")) {
            errors.push(ConfigError::key("chat.trusted_proxies", m));
        }
        if !(1..=3600).contains(&c.answer_timeout_secs) {
            errors.push(ConfigError::key(
                "chat.answer_timeout_secs",
                "must be between 1 and 3600",
            ));
        }
        ConfigError::collect(errors)?;
        Ok(c)
    }
}

/// Everything the chat handlers share.
#[derive(Clone)]
pub struct Chat {
    pub db: Database,
    pub verifier: Arc<TokenVerifier>,
    pub config: Arc<ChatConfig>,
    pub quotas: ask::quota::Quotas,
    pub ai: ai::Ai,
    pub trusted_proxies: Arc<TrustedProxies>,
    metrics: metrics::AskMetrics,
}

impl FromRef<Chat> for Arc<TokenVerifier> {
    fn from_ref(c: &Chat) -> Self {
        c.verifier.clone()
    }
}

/// The account behind the caller, once it has at least `role`.
pub(crate) fn account(caller: &Caller, role: Role) -> Result<Uuid, Problem> {
    caller.require(role)?;
    Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))
}

/// The target's init, for the binary's registry.
pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(start(p))
}

async fn start(p: &Platform) -> Result<Routes, ServiceError> {
    let config = ChatConfig::load(&p.config)?;
    let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
    let blobs = p.open_blob_store().await?;
    let ai = ai::Ai::new(p.internal_client("ai", Duration::from_secs(config.answer_timeout_secs))?);
    let trusted_proxies = TrustedProxies::parse(config.trusted_proxies.as_deref().unwrap_or(""))
        .map_err(|m| ConfigError::key("chat.trusted_proxies", m))?;
    let quotas = ask::quota::Quotas::new(db.clone(), config.quotas.clone());
    quotas.spawn_pruning(p.stop.clone());
    let check = quotas.clone();
    p.readiness.add("chat.quotas.timezone", move || {
        let q = check.clone();
        async move { q.check_timezone().await }
    });
    let content = content::Content::new(
        db.clone(),
        blobs,
        p.verifier.clone(),
        config.content.clone(),
        &p.metrics,
    );
    let chat = Chat {
        db: db.clone(),
        verifier: p.verifier.clone(),
        config: Arc::new(config),
        quotas,
        ai,
        trusted_proxies: Arc::new(trusted_proxies),
        metrics: metrics::AskMetrics::register(&p.metrics),
    };
    p.bus.start_consumer(
        Subscription::new(
            SERVICE,
            events::PATTERNS,
            db.clone(),
            events::Consumer {
                content: content.clone(),
                quotas: chat.quotas.clone(),
            },
        ),
        p.stop.clone(),
    );
    Ok(Routes {
        public: content.routes().merge(public_routes(chat.clone())),
        admin: kernel::service::dead_letter_routes(p, &db).merge(
            Router::new()
                .route(
                    "/internal/chat/widget-origins",
                    get(chatbots::widget_origins),
                )
                .route(export::PATH, get(export::export))
                .with_state(chat),
        ),
    })
}

/// The chat API on the public listener.
pub fn public_routes(chat: Chat) -> Router {
    Router::new()
        .route(
            "/api/chatbots/mine",
            get(chatbots::get_mine).patch(chatbots::patch_mine),
        )
        .route("/api/chatbots/mine/insights", get(insights::insights))
        .route("/api/chatbots/{slug}", get(chatbots::public))
        .route("/api/chatbots/{slug}/ask", post(ask::ask))
        .route("/api/chatbots/{slug}/quota", get(ask::quota))
        .route("/api/conversations", get(conversations::list))
        .route("/api/conversations/{id}", get(conversations::one))
        .route("/api/answers/{id}/feedback", post(answers::feedback))
        .route("/api/answers/{id}/correction", post(answers::correction))
        .route("/api/talent/search", get(talent::search))
        .with_state(chat)
}
