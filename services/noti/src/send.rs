//! One message to one recipient on one channel, exactly once: claim it in the ledger, send,
//! record. What a failure means for the event is decided here.

use crate::ledger::{self, Claim, Key};
use kernel::events::HandlerError;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sqlx::PgPool;
use std::future::Future;
use std::sync::OnceLock;

#[derive(Debug, Clone, thiserror::Error)]
pub enum SendError {
    /// Not delivered; worth trying again (429 beyond our patience, 5xx, 4xx SMTP reply, no
    /// connection, a timeout).
    #[error("{0}")]
    Transient(String),
    /// Not delivered, and never will be as it stands (unknown webhook, 5xx SMTP reply, an
    /// address that is not one, no mail server configured).
    #[error("{0}")]
    Permanent(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    AlreadySent,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// email, discord
    pub channel: String,
    /// sent, duplicate, transient, permanent, uncertain
    pub outcome: String,
}

/// `protostar_noti_deliveries_total{channel, outcome}` once registered.
pub fn metrics() -> &'static Family<DeliveryLabels, Counter> {
    static M: OnceLock<Family<DeliveryLabels, Counter>> = OnceLock::new();
    M.get_or_init(Family::default)
}

fn count(channel: &str, outcome: &str) {
    metrics()
        .get_or_create(&DeliveryLabels {
            channel: channel.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// Claims `key`, runs `send` if it is ours to send, and records the outcome. `send` is not
/// polled unless the claim succeeds.
pub async fn deliver(
    pool: &PgPool,
    key: Key<'_>,
    send: impl Future<Output = Result<(), SendError>>,
) -> Result<Outcome, HandlerError> {
    match ledger::claim(pool, &key).await? {
        Claim::Send => {}
        Claim::AlreadySent => {
            count(key.channel, "duplicate");
            return Ok(Outcome::AlreadySent);
        }
        Claim::Uncertain => {
            count(key.channel, "uncertain");
            return Err(HandlerError::Permanent(anyhow::anyhow!(
                "{} to {}: an earlier attempt may have delivered it (it stopped between sending \
                 and recording); not sent again. Retrying this dead letter sends it once more.",
                key.channel,
                key.recipient
            )));
        }
    }
    match send.await {
        Ok(()) => {
            ledger::sent(pool, &key).await.map_err(|e| {
                count(key.channel, "uncertain");
                HandlerError::Transient(anyhow::anyhow!(
                    "{} to {} was sent but cannot be recorded: {e}",
                    key.channel,
                    key.recipient
                ))
            })?;
            count(key.channel, "sent");
            Ok(Outcome::Sent)
        }
        Err(e) => {
            let reason = e.to_string();
            // If even this cannot be written the row stays `sending`, and the next attempt parks
            // the event as uncertain: the cautious side.
            if let Err(db) = ledger::failed(pool, &key, &reason).await {
                tracing::warn!(error = %db, "cannot record a failed delivery");
            }
            let what = anyhow::anyhow!("{} to {}: {reason}", key.channel, key.recipient);
            Err(match e {
                SendError::Transient(_) => {
                    count(key.channel, "transient");
                    HandlerError::Transient(what)
                }
                SendError::Permanent(_) => {
                    count(key.channel, "permanent");
                    HandlerError::Permanent(what)
                }
            })
        }
    }
}
