//! The user service: profiles, invite codes and account deletion.
//!
//! Ownership between `auth` and `user`. An access token states a role, and auth signs tokens,
//! so auth owns what a token is made of: the account (e-mail, password hash, role). This service
//! owns the profile (display name, the e-mail as last announced, the invite redemption) and the
//! invite codes. Neither reads the other's tables; they talk through events only:
//! - `user.registered` (from auth at sign-up): the profile is created here;
//! - `invite.redeemed` (from here, in the redemption's transaction): auth promotes the
//!   stargazer to protostar, effective at the caller's next token refresh;
//! - `user.deleted` (from here, on `DELETE /api/users/me`): auth deletes the credentials and
//!   tokens, and every other service the data it keeps for the account.
//!
//! Because nothing here calls auth synchronously, `--target all` (in-process bus, keys handed
//! over in memory) and separate processes (RabbitMQ, JWKS over HTTP) work the same way. A
//! request may arrive before `user.registered` does; the profile is then created from the
//! caller's verified token and completed when the event lands.

mod chat;
mod domain;
mod events;
mod routes;
mod store;

use futures::future::BoxFuture;
use kernel::db::Database;
use kernel::events::Subscription;
use kernel::service::{Platform, Routes, ServiceError};
use kernel::tokens::TokenVerifier;
use std::sync::Arc;

pub use domain::{DisplayName, InviteCode};

pub const SCHEMA: &str = "users";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
pub(crate) const SERVICE: &str = "user";

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: Database,
    pub(crate) verifier: Arc<TokenVerifier>,
    /// chat's internal API, for the export.
    pub(crate) chat: chat::Chat,
}

impl axum::extract::FromRef<AppState> for Arc<TokenVerifier> {
    fn from_ref(s: &AppState) -> Self {
        s.verifier.clone()
    }
}

/// The target's init, for the binary's registry.
pub fn init(p: &Platform) -> BoxFuture<'_, Result<Routes, ServiceError>> {
    Box::pin(start(p))
}

async fn start(p: &Platform) -> Result<Routes, ServiceError> {
    let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
    p.bus.start_consumer(
        Subscription::new("user", events::PATTERNS, db.clone(), events::Consumer),
        p.stop.clone(),
    );
    let state = AppState {
        db: db.clone(),
        verifier: p.verifier.clone(),
        chat: chat::Chat::new(p.internal_client("chat", chat::TIMEOUT)?),
    };
    Ok(Routes {
        public: routes::public(state.clone()),
        admin: routes::admin(state).merge(kernel::service::dead_letter_routes(p, &db)),
    })
}
