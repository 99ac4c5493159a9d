//! HTTP routes; module paths mirror the URLs.

mod invites;
mod me;

use crate::AppState;
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use kernel::Problem;
use kernel::events::audit::AuditRecord;
use kernel::events::outbox;
use kernel::http::RequestContext;
use kernel::tokens::{Caller, Role};
use serde_json::Value;
use sqlx::PgConnection;
use std::convert::Infallible;
use uuid::Uuid;

pub fn public(state: AppState) -> Router {
    Router::new()
        .route(
            "/api/users/me",
            get(me::show).patch(me::update).delete(me::delete),
        )
        .route("/api/users/me/export", get(me::export))
        .route("/api/invites/redeem", post(invites::redeem))
        .with_state(state)
}

pub fn admin(state: AppState) -> Router {
    Router::new()
        .route(
            "/admin/api/invites",
            post(invites::create).get(invites::list),
        )
        .route("/admin/api/invites/{id}", delete(invites::revoke))
        .with_state(state)
}

/// The account behind the caller: signed-up roles only (a guest has no profile).
pub(crate) fn account_of(caller: &Caller) -> Result<Uuid, Problem> {
    caller.require(Role::Stargazer)?;
    Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))
}

/// Where the request came from, when it came through the standard layers.
pub(crate) struct Context(pub Option<RequestContext>);

impl<S: Send + Sync> FromRequestParts<S> for Context {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(parts.extensions.get::<RequestContext>().cloned()))
    }
}

/// Writes an event to the outbox inside the transaction `tx` of the change it describes.
pub(crate) async fn publish(
    tx: &mut PgConnection,
    event_type: &str,
    subject: Uuid,
    data: Value,
    ctx: &Context,
) -> Result<(), Problem> {
    let trace = ctx.0.as_ref().map(|c| &c.trace);
    let event = outbox::event(
        crate::SERVICE,
        event_type,
        &subject.to_string(),
        data,
        trace,
    )?;
    outbox::enqueue(tx, &event).await?;
    Ok(())
}

/// An `audit.*` event: who did what to whom, with what outcome, from where.
pub(crate) async fn audit(
    tx: &mut PgConnection,
    action: &str,
    actor: Uuid,
    target: Uuid,
    details: Value,
    ctx: &Context,
) -> Result<(), Problem> {
    let event = AuditRecord {
        action,
        actor: Some(actor.to_string()),
        target: Some(target.to_string()),
        outcome: "success",
        client: ctx.0.as_ref().and_then(|c| c.client).map(|a| a.ip()),
        request_id: ctx.0.as_ref().map(|c| c.request_id.clone()),
        trace: ctx.0.as_ref().map(|c| c.trace),
        details,
    }
    .event(crate::SERVICE)
    .map_err(Problem::internal)?;
    outbox::enqueue(tx, &event).await?;
    Ok(())
}
