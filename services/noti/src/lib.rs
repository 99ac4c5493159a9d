//! noti: notifications by e-mail (SMTP) and Discord webhooks, driven only by events.
//!
//! Nothing here runs in a user's request: auth, user and chat publish events in the transaction
//! of what happened, and this consumer turns them into messages whenever the mail server or
//! Discord is able to take them. A slow or broken peer delays notifications, never a request.
//!
//! | event | message |
//! |---|---|
//! | `user.registered` | welcome mail; the address is remembered for later mails |
//! | `user.password_reset_requested` | the reset link, to the address in the event |
//! | `invite.redeemed` | "you are a protostar now" mail |
//! | `chat.question_asked` | the chatbot's owner is told, instantly or in the daily digest |
//! | `system.dead_lettered` | an alert on the admins' Discord webhook |
//! | `user.deleted` | everything noti holds about the account is dropped |
//!
//! Exactly once out (at least once in): every message is claimed in a ledger keyed by (event id,
//! channel, recipient) and committed *before* it is sent, then marked sent. A redelivered event
//! finds `sent` and sends nothing. The trade-off, stated plainly: between the peer accepting a
//! message and the ledger recording it there is a window (a crash, the database gone); a later
//! delivery then finds the claim still `sending`, cannot know whether the message went out, and
//! parks the event with that reason instead of sending it twice. Only an admin's retry of that
//! dead letter sends it again. So noti prefers "at most once, and you are told" to a duplicate in
//! that window. The other way round (send, then record in the consumer's transaction) would send
//! twice whenever the commit failed. A timeout waiting for the peer's answer counts as not
//! delivered and is retried: Discord and SMTP give no idempotency key, so a peer that accepted
//! the message but answered too late can get it twice.
//!
//! Failures: a peer that may recover (429 beyond `noti.discord.max_wait_secs`, 5xx, SMTP 4xx,
//! no connection) is retried with backoff (`noti.retry`); one that will not (an unknown webhook,
//! an SMTP 5xx) parks the event at once, with the reason, in this schema's dead letters
//! (`/admin/api/dead-letters/noti`).
//!
//! Without a mail server (`noti.smtp` unset, as on a one-machine install) there is no e-mail
//! channel: mails that only inform (welcome, invite redeemed, questions to an owner) are skipped,
//! and what the event teaches noti (an account's address) is still kept; a password-reset mail,
//! which someone is waiting for, is parked with that reason, to be retried once one is set.

pub mod config;
pub mod digest;
pub mod discord;
pub mod events;
pub mod handler;
pub mod ledger;
pub mod mail;
pub mod send;
pub mod settings;
pub mod store;
pub mod templates;

use futures::future::BoxFuture;
use kernel::ConfigError;
use kernel::db::Database;
use kernel::events::Subscription;
use kernel::service::{Platform, Routes, ServiceError};
use std::sync::Arc;

pub use handler::Notifier;

pub const TARGET: &str = "noti";
pub const SCHEMA: &str = "noti";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// `protostar job noti-digest`.
pub const DIGEST_JOB: &str = "noti-digest";

/// Events of one relay batch that noti applies in one transaction: every question asked is an
/// event here, and on the one-machine install each cost four round trips of its own (BEGIN,
/// the processed-event record, the owner's settings, COMMIT). Sending happens through the
/// ledger, apart from the transaction, so a batch that fails and goes again one by one sends
/// nothing twice. Half the consumer's deliveries in flight (16 by default), so a batch whose
/// sends wait on a slow peer leaves the other half to the rest.
const BATCH: usize = 8;

/// The consumer, for the binary and for tests that drive it over their own bus.
pub fn subscription(notifier: Notifier) -> Subscription {
    let retry = notifier.config().config.retry.policy();
    let db = notifier.db().clone();
    Subscription::new(TARGET, events::PATTERNS, db, notifier)
        .with_retry(retry)
        .with_batch(BATCH)
}

fn notifier(p: &Platform, db: Database) -> Result<Notifier, ServiceError> {
    let config = config::NotiConfig::load(&p.config)?;
    let database = p
        .database
        .as_ref()
        .ok_or_else(|| ConfigError::key("database.url", "is required by noti"))?;
    // A pool of its own for the delivery ledger (see `handler::Notifier`).
    let ledger = Database::connect_lazy(database, SCHEMA)?;
    // The mailer's errors name their own key.
    Notifier::new(db, ledger, config).map_err(|e| ServiceError::Other(e.to_string()))
}

/// The target's init, for the binary's registry.
pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(async move {
        let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
        let notifier = notifier(p, db.clone())?;
        p.metrics.register(
            "noti_deliveries",
            "Notifications by channel and outcome",
            send::metrics().clone(),
        );
        let discord = Arc::new(notifier.config().config.discord.clone());
        p.bus.start_consumer(subscription(notifier), p.stop.clone());
        Ok(Routes {
            public: settings::routes(settings::SettingsState {
                db: db.clone(),
                verifier: p.verifier.clone(),
                discord,
            }),
            admin: kernel::service::dead_letter_routes(p, &db),
        })
    })
}

/// `protostar job noti-digest`: one pass of the digest, then return what it did. It never
/// migrates: the schema must be the migration Job's.
pub fn digest_job(p: &Platform) -> BoxFuture<'_, Result<digest::DigestReport, ServiceError>> {
    Box::pin(async move {
        let database = p
            .database
            .as_ref()
            .ok_or_else(|| ConfigError::key("database.url", "is required by noti-digest"))?;
        let db = Database::connect_lazy(database, SCHEMA)?;
        if !db.verify_migrated(Some(&MIGRATOR)).await? {
            return Err(ServiceError::Other(
                "the noti schema is not migrated yet (run `protostar migrate`)".into(),
            ));
        }
        let notifier = notifier(p, db)?;
        digest::run(&notifier)
            .await
            .map_err(|e| ServiceError::Other(format!("noti-digest: {e}")))
    })
}
