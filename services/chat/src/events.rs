//! What this service does with events: one queue (`protostar.chat`), each event handed to the
//! module it concerns.

use crate::content::Content;
use futures::future::BoxFuture;
use kernel::events::{Event, Handler, HandlerError, content};
use sqlx::PgConnection;

pub const PATTERNS: &[&str] = &[content::STATUS_CHANGED, content::DELETED, "user.deleted"];

pub struct Consumer {
    pub content: Content,
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
                "user.deleted" => self.content.account_deleted(tx, event).await,
                _ => Ok(()),
            }
        })
    }
}
