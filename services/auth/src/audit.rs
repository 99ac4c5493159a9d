//! Audit events (`audit.*`): who did what to whom, with what outcome, from where. The audit
//! service keeps them; we only write them to our outbox beside the change they describe.

use crate::routes::Context;
use kernel::Problem;
use kernel::events::audit::AuditRecord;
use kernel::events::{Event, outbox};
use kernel::http::RequestContext;
use serde_json::Value;
use sqlx::PgConnection;

pub const SERVICE: &str = "auth";

pub struct Audit<'a> {
    pub action: &'static str,
    pub actor: Option<String>,
    pub target: Option<String>,
    pub outcome: &'static str,
    pub context: Option<&'a Context>,
    pub details: Value,
}

impl Audit<'_> {
    pub fn event(&self) -> Result<Event, Problem> {
        let request = self.context.and_then(Context::get);
        AuditRecord {
            action: self.action,
            actor: self.actor.clone(),
            target: self.target.clone(),
            outcome: self.outcome,
            client: self.context.and_then(|c| c.client),
            request_id: request.map(|c| c.request_id.clone()),
            trace: request.map(|c| c.trace),
            details: self.details.clone(),
        }
        .event(SERVICE)
        .map_err(Problem::internal)
    }

    pub async fn enqueue(&self, tx: &mut PgConnection) -> Result<(), Problem> {
        outbox::enqueue(tx, &self.event()?).await?;
        Ok(())
    }
}

/// A domain event (`user.*`) from this service, in the transaction of its change.
pub async fn publish(
    tx: &mut PgConnection,
    event_type: &str,
    subject: &str,
    data: Value,
    context: Option<&RequestContext>,
) -> Result<(), Problem> {
    outbox::enqueue(
        tx,
        &outbox::event(
            SERVICE,
            event_type,
            subject,
            data,
            context.map(|c| &c.trace),
        )?,
    )
    .await?;
    Ok(())
}
