//! What this service does with other services' events: a sign-up in auth makes a profile.

use crate::store;
use futures::future::BoxFuture;
use kernel::events::{Event, Handler, HandlerError};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

pub const PATTERNS: &[&str] = &["user.registered"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    user_id: Uuid,
    email: String,
    display_name: String,
}

pub struct Consumer;

impl Handler for Consumer {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            if event.event_type != "user.registered" {
                return Ok(());
            }
            let r: Registered = event
                .data_as()
                .map_err(|e| HandlerError::Permanent(anyhow::anyhow!("user.registered: {e}")))?;
            store::registered(tx, r.user_id, &r.email, &r.display_name).await?;
            Ok(())
        })
    }
}
