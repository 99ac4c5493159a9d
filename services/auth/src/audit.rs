//! Audit events (`audit.*`): who did what to whom, with what outcome, from where. The audit
//! service keeps them; we only write them to our outbox beside the change they describe.

use crate::routes::Context;
use kernel::Problem;
use kernel::events::{Event, outbox};
use kernel::http::RequestContext;
use serde_json::{Value, json};
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
        let data = json!({
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome,
            "clientAddress": self.context.and_then(|c| c.client).map(|a| a.to_string()),
            "requestId": self.context.and_then(Context::get).map(|c| c.request_id.clone()),
            "details": self.details,
        });
        let mut event = Event::new(&format!("audit.{}", self.action), SERVICE, data)
            .map_err(Problem::internal)?;
        if let Some(t) = &self.target {
            event = event.with_subject(t.clone());
        }
        if let Some(c) = self.context.and_then(Context::get) {
            event = event.with_trace(&c.trace);
        }
        Ok(event)
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
    let mut event = Event::new(event_type, SERVICE, data)
        .map_err(Problem::internal)?
        .with_subject(subject);
    if let Some(c) = context {
        event = event.with_trace(&c.trace);
    }
    outbox::enqueue(tx, &event).await?;
    Ok(())
}
