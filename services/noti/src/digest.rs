//! The daily digest (`protostar job noti-digest`, run by a CronJob): every owner in digest mode
//! gets the questions that waited since the last run, in one message per channel.
//!
//! Two steps, each safe to repeat: questions are first gathered into a digest row (one
//! transaction per owner; a question joins exactly one digest), then every digest not yet sent is
//! sent through the same ledger as instant notifications, keyed by the digest's id. A run that
//! dies after gathering leaves digests the next run sends; a digest that was sent is never sent
//! again. The one exception is the ledger's `unknown` state (the job died between sending and
//! recording): the next run sends that digest again, as there is no person in the loop here.

use crate::handler::Notifier;
use crate::store;
use crate::templates::QuestionView;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DigestReport {
    /// Digests made from waiting questions in this run.
    pub gathered: usize,
    /// Digests delivered (on every channel the owner chose).
    pub sent: usize,
    /// Digests left for the next run, with why.
    pub failed: Vec<String>,
}

impl std::fmt::Display for DigestReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "noti-digest: {} gathered, {} sent, {} left for the next run",
            self.gathered,
            self.sent,
            self.failed.len()
        )
    }
}

pub async fn run(notifier: &Notifier) -> Result<DigestReport, sqlx::Error> {
    let pool = notifier.db().pool();
    let mut report = DigestReport::default();
    let owners: Vec<Uuid> = sqlx::query_scalar(
        "SELECT DISTINCT owner_id FROM pending_questions WHERE digest_id IS NULL",
    )
    .fetch_all(pool)
    .await?;
    for owner in owners {
        let mut tx = kernel::db::begin(pool).await?;
        let id = Uuid::now_v7();
        sqlx::query("INSERT INTO digests (id, owner_id) VALUES ($1, $2)")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        let taken = sqlx::query(
            "UPDATE pending_questions SET digest_id = $1 WHERE owner_id = $2 AND digest_id IS NULL",
        )
        .bind(id)
        .bind(owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if taken == 0 {
            // Another run took them first.
            tx.rollback().await?;
            continue;
        }
        tx.commit().await?;
        report.gathered += 1;
    }

    let unsent: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, owner_id FROM digests WHERE sent_at IS NULL ORDER BY created_at",
    )
    .fetch_all(pool)
    .await?;
    for (id, owner) in unsent {
        let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT chatbot_slug, question, asker_role, asked_at FROM pending_questions \
             WHERE digest_id = $1 ORDER BY asked_at, event_id",
        )
        .bind(id)
        .fetch_all(pool)
        .await?;
        let items: Vec<QuestionView> = rows
            .into_iter()
            .map(
                |(chatbot_slug, question, asker_role, asked_at)| QuestionView {
                    chatbot_slug,
                    question,
                    asker_role,
                    asked_at,
                },
            )
            .collect();
        let mut conn = pool.acquire().await?;
        let (settings, recipient) = store::settings_and_recipient(&mut conn, owner).await?;
        drop(conn);
        // An owner who switched notifications off (or whose account is gone) gets nothing.
        let outcome = if items.is_empty() || settings.mode == store::Mode::Off {
            Ok(())
        } else {
            notifier
                .tell_owner(id, recipient.as_ref(), &settings, &items)
                .await
        };
        match outcome {
            Ok(()) => {
                let mut tx = kernel::db::begin(pool).await?;
                sqlx::query("UPDATE digests SET sent_at = now() WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM pending_questions WHERE digest_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                report.sent += 1;
            }
            Err(e) => {
                tracing::warn!(digest = %id, owner = %owner, error = %e, "digest not delivered; the next run tries again");
                report.failed.push(format!("digest {id} for {owner}: {e}"));
            }
        }
    }
    Ok(report)
}
