//! What auth does with other services' events: an invite redeemed in `user` promotes the
//! account; an account deleted in `user` loses its credentials and tokens here.

use crate::audit::{self, Audit};
use crate::store::{accounts, failures};
use futures::future::BoxFuture;
use kernel::events::{Event, Handler, HandlerError};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

pub const PATTERNS: &[&str] = &["invite.redeemed", "user.deleted"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AboutUser {
    user_id: Uuid,
}

pub struct Consumer;

impl Handler for Consumer {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            let about: AboutUser = event.data_as().map_err(|e| {
                HandlerError::Permanent(anyhow::anyhow!("{}: {e}", event.event_type))
            })?;
            match event.event_type.as_str() {
                "invite.redeemed" => promote(tx, about.user_id, event).await?,
                "user.deleted" => {
                    if let Some(email) = accounts::delete(tx, about.user_id).await? {
                        failures::clear(tx, &failures::account_key(&email)).await?;
                    }
                }
                _ => {}
            }
            Ok(())
        })
    }
}

/// A stargazer who redeemed an invite becomes a protostar; other roles stay as they are.
async fn promote(tx: &mut PgConnection, user_id: Uuid, event: &Event) -> Result<(), HandlerError> {
    if !accounts::promote_to_protostar(tx, user_id).await? {
        return Ok(());
    }
    let failed = |e: kernel::Problem| HandlerError::Transient(anyhow::anyhow!("{e}"));
    let id = user_id.to_string();
    Audit {
        action: "role_changed",
        actor: Some(id.clone()),
        target: Some(id.clone()),
        outcome: "success",
        context: None,
        details: json!({"from": "stargazer", "to": "protostar", "because": "invite.redeemed", "event": event.id}),
    }
    .enqueue(tx)
    .await
    .map_err(failed)?;
    audit::publish(
        tx,
        "user.role_changed",
        &id,
        json!({"userId": id, "role": "protostar"}),
        None,
    )
    .await
    .map_err(failed)
}
