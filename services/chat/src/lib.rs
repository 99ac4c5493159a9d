//! The chat service. Today it holds the career documents of protostars (the `content` module:
//! uploads, their originals in object storage, and their ingestion status as the ai service
//! reports it); chatbots, questions, quotas and feedback join it as modules of their own.
//!
//! It talks to the ai service only through events (`content.*`, see
//! `kernel::events::content`), so `--target all` and separate processes behave the same.

pub mod content;
mod events;

use futures::future::BoxFuture;
use kernel::events::Subscription;
use kernel::service::{Platform, Routes, ServiceError};
use serde::Deserialize;

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
}

impl ChatConfig {
    /// The `chat` section with its bounds checked, for start-up and `protostar check-config`.
    pub fn load(config: &kernel::config::ConfigSource) -> Result<Self, kernel::ConfigError> {
        let c: Self = config.section("chat")?;
        c.content.validate()?;
        Ok(c)
    }
}

/// The target's init, for the binary's registry.
pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(start(p))
}

async fn start(p: &Platform) -> Result<Routes, ServiceError> {
    let config = ChatConfig::load(&p.config)?;
    let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
    let blobs = p.open_blob_store().await?;
    let content = content::Content::new(
        db.clone(),
        blobs,
        p.verifier.clone(),
        config.content,
        &p.metrics,
    );
    p.bus.start_consumer(
        Subscription::new(
            SERVICE,
            events::PATTERNS,
            db.clone(),
            events::Consumer {
                content: content.clone(),
            },
        ),
        p.stop.clone(),
    );
    Ok(Routes {
        public: content.routes(),
        admin: kernel::service::dead_letter_routes(p, &db),
    })
}
