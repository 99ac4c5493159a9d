//! The auth service: accounts' credentials and roles, access tokens (Ed25519 JWTs), rotating
//! refresh tokens, guest tokens, password resets, login backoff and the signing keys (JWKS).
//!
//! Ownership between `auth` and `user`. An access token states a role, so whoever signs tokens
//! must know the role at the moment of signing, synchronously, in every deployment. Auth
//! therefore owns the *account* (e-mail, password hash, role) and `user` owns the *profile*
//! (display name, invite redemptions) and the invite codes. They share no tables:
//! - sign-up here publishes `user.registered` (id, e-mail, display name); `user` makes the profile;
//! - redeeming an invite in `user` publishes `invite.redeemed`; auth promotes the stargazer to
//!   protostar when it consumes it, and the next refresh carries the new role;
//! - `DELETE /api/users/me` in `user` publishes `user.deleted`; auth deletes the account, its
//!   refresh and reset tokens when it consumes it;
//! - admins change roles here (`PATCH /admin/api/users/{id}`), which publishes `user.role_changed`.
//!
//! No synchronous call between the two is needed, so `--target all` (in-process bus) and
//! separate processes (RabbitMQ, JWKS over HTTP) behave alike. The price is that a redeemed
//! invite shows in tokens only after the event is applied (milliseconds on a healthy bus).

mod audit;
pub mod bootstrap;
pub mod domain;
mod events;
pub mod hashing;
pub mod keys;
mod routes;
mod store;

use futures::future::BoxFuture;
use kernel::db::Database;
use kernel::service::{Platform, Routes, ServiceError};
use kernel::tokens::{AuthConfig, TokenVerifier};
use kernel::{ConfigError, events::Subscription};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use keys::KeyRing;

pub const SCHEMA: &str = "auth";
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Access tokens live at most this long (the contract's 15 minutes).
pub const MAX_ACCESS_TTL_SECS: u64 = 15 * 60;
const KEY_CHECK_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct AppState {
    pub(crate) db: Database,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) hasher: hashing::Hasher,
    pub(crate) verifier: Arc<TokenVerifier>,
    pub(crate) config: Arc<AuthConfig>,
    pub(crate) trusted_proxies: Arc<kernel::client_address::TrustedProxies>,
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

/// Bounds for every duration and cost setting: a value from outside must never overflow a
/// timestamp or allocate the machine away later, so it is refused at start, naming its key.
fn check_config(c: &AuthConfig) -> Result<(), ConfigError> {
    const DAY: u64 = 24 * 3600;
    let bounds: [(&str, u64, u64, u64); 7] = [
        (
            "auth.access_ttl_secs",
            c.access_ttl_secs,
            1,
            MAX_ACCESS_TTL_SECS,
        ),
        ("auth.refresh_ttl_secs", c.refresh_ttl_secs, 60, 365 * DAY),
        (
            "auth.password_reset_ttl_secs",
            c.password_reset_ttl_secs,
            60,
            7 * DAY,
        ),
        (
            "auth.key_rotation_secs",
            c.key_rotation_secs,
            2,
            5 * 365 * DAY,
        ),
        (
            "auth.key_publish_ahead_secs",
            c.key_publish_ahead_secs,
            0,
            DAY,
        ),
        (
            "auth.argon2_memory_kib",
            c.argon2_memory_kib.into(),
            8,
            1024 * 1024,
        ),
        ("auth.argon2_iterations", c.argon2_iterations.into(), 1, 100),
    ];
    let mut errors: Vec<ConfigError> = bounds
        .iter()
        .filter(|(_, value, min, max)| value < min || value > max)
        .map(|(key, _, min, max)| ConfigError::key(key, format!("must be between {min} and {max}")))
        .collect();
    if c.key_rotation_secs <= c.access_ttl_secs {
        errors.push(ConfigError::key(
            "auth.key_rotation_secs",
            "must be longer than auth.access_ttl_secs",
        ));
    }
    ConfigError::collect(errors)
}

fn key_error(e: keys::KeyError) -> ServiceError {
    match e {
        keys::KeyError::Config { key, message } => ConfigError::key(key, message).into(),
        other => ServiceError::Other(other.to_string()),
    }
}

async fn start(p: &Platform) -> Result<Routes, ServiceError> {
    let config = p.auth.clone();
    check_config(&config)?;
    let db = p.open_database(SCHEMA, Some(&MIGRATOR)).await?;
    // Under `--target all` with no JWKS URL, every verifier of the process reads our keys
    // from the platform's in-memory set.
    let publish_to = config.jwks_url.is_none().then(|| p.local_keys.clone());
    let keys =
        Arc::new(KeyRing::new(&config, &p.data_dir, db.clone(), publish_to).map_err(key_error)?);
    // Keys from a file sign as soon as the schema is there; publish them now rather than at the
    // maintenance task's first pass, which waits for the schema too and could come after a token
    // it signed was first checked ("the token's key is unknown").
    keys.publish().await;
    let hasher = hashing::Hasher::new(config.argon2_memory_kib, config.argon2_iterations)
        .map_err(|e| ConfigError::key("auth.argon2_memory_kib", e.to_string()))?;

    let check = keys.clone();
    p.readiness.add("auth:signing-key", move || {
        let keys = check.clone();
        async move {
            if keys.has_signer().await {
                Ok(())
            } else {
                Err("no signing key loaded yet".to_owned())
            }
        }
    });
    spawn_key_maintenance(keys.clone(), db.clone(), p.stop.clone());

    p.bus.start_consumer(
        Subscription::new("auth", events::PATTERNS, db.clone(), events::Consumer),
        p.stop.clone(),
    );

    let trusted_proxies = kernel::client_address::TrustedProxies::parse(
        config.trusted_proxies.as_deref().unwrap_or(""),
    )
    .map_err(|m| ConfigError::key("auth.trusted_proxies", m))?;
    let state = AppState {
        trusted_proxies: Arc::new(trusted_proxies),
        db: db.clone(),
        keys,
        hasher,
        verifier: p.verifier.clone(),
        config: Arc::new(config),
    };
    Ok(Routes {
        public: routes::public(state.clone()),
        admin: routes::admin(state).merge(kernel::service::dead_letter_routes(p, &db)),
    })
}

/// Loads (and when due rotates) the signing keys once the schema is migrated, then checks
/// again every half minute.
fn spawn_key_maintenance(keys: Arc<KeyRing>, db: Database, stop: CancellationToken) {
    tokio::spawn(async move {
        let mut ready = false;
        loop {
            if db.is_migrated() {
                match keys.refresh().await {
                    Ok(()) => ready = true,
                    Err(e) => tracing::warn!(error = %e, "signing keys not refreshed"),
                }
            }
            let wait = if ready {
                KEY_CHECK_EVERY
            } else {
                Duration::from_millis(100)
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_bounds_are_refused_by_name() {
        assert!(check_config(&AuthConfig::default()).is_ok());
        let c = AuthConfig {
            access_ttl_secs: 3600,
            refresh_ttl_secs: u64::MAX,
            argon2_memory_kib: u32::MAX,
            ..AuthConfig::default()
        };
        let err = check_config(&c).unwrap_err().to_string();
        for key in [
            "auth.access_ttl_secs",
            "auth.refresh_ttl_secs",
            "auth.argon2_memory_kib",
        ] {
            assert!(err.contains(key), "{err}");
        }
        assert!(!err.contains("auth.password_reset_ttl_secs"), "{err}");
    }
}
