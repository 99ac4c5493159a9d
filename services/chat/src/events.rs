//! What this service does with events: one queue (`protostar.chat`), each event handed to the
//! module it concerns.

use crate::ask::quota::Quotas;
use crate::chatbots::store;
use crate::content::Content;
use futures::future::BoxFuture;
use kernel::events::{Event, Handler, HandlerError, content};
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

pub const PATTERNS: &[&str] = &[
    content::STATUS_CHANGED,
    content::DELETED,
    "user.registered",
    "user.deleted",
];

pub struct Consumer {
    pub content: Content,
    pub quotas: Quotas,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Registered {
    user_id: Uuid,
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deleted {
    user_id: Uuid,
}

fn bad(event: &Event, e: impl std::fmt::Display) -> HandlerError {
    HandlerError::Permanent(anyhow::anyhow!("{}: {e}", event.event_type))
}

impl Handler for Consumer {
    fn handle<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        event: &'a Event,
    ) -> BoxFuture<'a, Result<(), HandlerError>> {
        Box::pin(async move {
            match event.event_type.as_str() {
                content::STATUS_CHANGED => self.content.status_changed(tx, event).await,
                content::DELETED => self.content.deleted(event).await,
                "user.registered" => {
                    let r: Registered = event.data_as().map_err(|e| bad(event, e))?;
                    store::remember_name(tx, r.user_id, r.display_name.trim()).await?;
                    Ok(())
                }
                "user.deleted" => {
                    let d: Deleted = event.data_as().map_err(|e| bad(event, e))?;
                    self.content.account_deleted(tx, event).await?;
                    store::forget_account(tx, d.user_id).await?;
                    self.quotas.forget(tx, &d.user_id.to_string()).await?;
                    Ok(())
                }
                _ => Ok(()),
            }
        })
    }
}
