//! Password reset: a single-use, expiring token goes out through `user.password_reset_requested`
//! (the notification service mails it). The request is answered alike whether or not the
//! account exists, so it cannot be used to find out who has one.

use super::{Context, hash_failed};
use crate::AppState;
use crate::audit::{self, Audit};
use crate::domain::{Email, Password};
use crate::store::{accounts, failures, refresh, resets};
use axum::extract::State;
use axum::http::StatusCode;
use kernel::http::Json;
use kernel::{FieldError, Problem};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct RequestBody {
    #[serde(default)]
    email: String,
}

pub async fn request(
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<RequestBody>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let email = Email::parse(&body.email)
        .map_err(|m| Problem::invalid_fields(vec![FieldError::new("email", m)]))?;
    let mut tx = s.db.begin().await?;
    if let Some(account) = accounts::by_email(&mut tx, email.as_str()).await? {
        let ttl = crate::keys::span_secs(s.config.password_reset_ttl_secs);
        let (token, expires_at) = resets::create(&mut tx, account.id, ttl).await?;
        audit::publish(
            &mut tx,
            "user.password_reset_requested",
            &account.id.to_string(),
            json!({"userId": account.id, "email": account.email, "token": token, "expiresAt": expires_at}),
            ctx.get(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "If an account has this e-mail, a reset link is on its way."})),
    ))
}

#[derive(Deserialize)]
pub struct ConfirmBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub async fn confirm(
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<ConfirmBody>,
) -> Result<StatusCode, Problem> {
    let invalid_token = || {
        Problem::invalid_fields(vec![FieldError::new(
            "token",
            "is invalid, used or expired",
        )])
    };
    if body.token.is_empty() {
        return Err(invalid_token());
    }
    let mut tx = s.db.begin().await?;
    let Some(account_id) = resets::find_usable(&mut tx, &body.token).await? else {
        return Err(invalid_token());
    };
    let Some(account) = accounts::by_id(&mut tx, account_id).await? else {
        return Err(invalid_token());
    };
    let email = Email::parse(&account.email).ok();
    let password =
        Password::parse(&body.password, email.as_ref().map(Email::local_part)).map_err(|ms| {
            Problem::invalid_fields(
                ms.into_iter()
                    .map(|m| FieldError::new("password", m))
                    .collect(),
            )
        })?;
    let hash = s
        .hasher
        .hash(password.expose())
        .await
        .map_err(hash_failed)?;
    accounts::set_password(&mut tx, account_id, &hash).await?;
    resets::use_all(&mut tx, account_id).await?;
    // Whoever knew the old password may hold sessions: they end here. And the owner, who has
    // just proved control of the mailbox, need not wait out a lock the guessing caused.
    refresh::revoke_account(&mut tx, account_id).await?;
    failures::clear(&mut tx, &failures::account_key(&account.email)).await?;
    Audit {
        action: "password_reset",
        actor: Some(account_id.to_string()),
        target: Some(account_id.to_string()),
        outcome: "success",
        context: Some(&ctx),
        details: json!({}),
    }
    .enqueue(&mut tx)
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
