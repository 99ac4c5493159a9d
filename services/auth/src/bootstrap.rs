//! `protostar admin create-admin`: the first admin of an install. Works on the auth schema
//! directly (migrating it first); the `user.registered` event waits in the outbox until a
//! running auth target relays it, so the profile appears once the platform runs.

use crate::audit::{self, Audit};
use crate::domain::{Email, Password};
use crate::hashing::Hasher;
use crate::store::accounts;
use kernel::db::Database;
use kernel::service::{Platform, ServiceError};
use kernel::tokens::Role;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("--email: {0}")]
    Email(&'static str),
    #[error("the password {}", .0.join("; "))]
    Password(Vec<String>),
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("{0}")]
    Other(String),
}

pub struct CreatedAdmin {
    pub id: uuid::Uuid,
    /// The e-mail as stored (normalised).
    pub email: String,
    /// Whether the account existed and was promoted (its password then changes only if given).
    pub existed: bool,
}

/// Creates the account with role admin, or makes the existing account an admin.
pub async fn create_admin(
    p: &Platform,
    email: &str,
    password: &str,
) -> Result<CreatedAdmin, BootstrapError> {
    let email = Email::parse(email).map_err(BootstrapError::Email)?;
    let password =
        Password::parse(password, Some(email.local_part())).map_err(BootstrapError::Password)?;
    p.migrate_now(crate::SCHEMA, Some(&crate::MIGRATOR)).await?;
    let config = p
        .database
        .as_ref()
        .ok_or_else(|| BootstrapError::Other("database.url is required".into()))?;
    let db = Database::connect_lazy(config, crate::SCHEMA).map_err(ServiceError::from)?;
    let hasher = Hasher::new(p.auth.argon2_memory_kib, p.auth.argon2_iterations)
        .map_err(|e| BootstrapError::Other(e.to_string()))?;
    let hash = hasher
        .hash(password.expose())
        .await
        .map_err(|e| BootstrapError::Other(e.to_string()))?;

    let mut tx = db.begin().await?;
    let fail = |e: kernel::Problem| BootstrapError::Other(e.to_string());
    let (id, existed, from) = match accounts::by_email(&mut tx, email.as_str()).await? {
        Some(a) => {
            accounts::set_role(&mut tx, a.id, Role::Admin).await?;
            accounts::set_password(&mut tx, a.id, &hash).await?;
            (a.id, true, a.role)
        }
        None => {
            let id = accounts::insert(&mut tx, email.as_str(), &hash, Role::Admin)
                .await?
                .ok_or_else(|| {
                    BootstrapError::Other("the account appeared meanwhile; run again".into())
                })?;
            audit::publish(
                &mut tx,
                "user.registered",
                &id.to_string(),
                json!({"userId": id, "email": email.as_str(), "displayName": email.local_part(), "role": "admin"}),
                None,
            )
            .await
            .map_err(fail)?;
            (id, false, "none".to_owned())
        }
    };
    Audit {
        action: "role_changed",
        actor: Some("protostar admin create-admin".into()),
        target: Some(id.to_string()),
        outcome: "success",
        context: None,
        details: json!({"from": from, "to": "admin"}),
    }
    .enqueue(&mut tx)
    .await
    .map_err(fail)?;
    tx.commit().await?;
    Ok(CreatedAdmin {
        id,
        email: email.as_str().to_owned(),
        existed,
    })
}
