//! Sign-up, login, refresh, logout and guest tokens.

use super::{Context, TokenResponse, access_token, hash_failed};
use crate::AppState;
use crate::audit::{self, Audit};
use crate::domain::{DisplayName, Email, Password};
use crate::store::{accounts, failures, refresh as tokens};
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use kernel::http::Json;
use kernel::tokens::Role;
use kernel::{FieldError, Problem};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignupBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    display_name: Option<String>,
}

fn refresh_ttl(s: &AppState) -> chrono::Duration {
    crate::keys::span_secs(s.config.refresh_ttl_secs)
}

pub async fn signup(
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<SignupBody>,
) -> Result<(StatusCode, Json<TokenResponse>), Problem> {
    let mut errors = Vec::new();
    let email = Email::parse(&body.email)
        .map_err(|m| errors.push(FieldError::new("email", m)))
        .ok();
    let password = Password::parse(&body.password, email.as_ref().map(Email::local_part))
        .map_err(|ms| errors.extend(ms.into_iter().map(|m| FieldError::new("password", m))))
        .ok();
    let display_name = match body.display_name.as_deref() {
        None => None,
        Some(raw) => DisplayName::parse(raw)
            .map_err(|m| errors.push(FieldError::new("displayName", m)))
            .ok(),
    };
    let (Some(email), Some(password), true) = (email, password, errors.is_empty()) else {
        return Err(Problem::invalid_fields(errors));
    };
    let display_name = display_name
        .map(|d| d.as_str().to_owned())
        .unwrap_or_else(|| email.local_part().to_owned());

    let hash = s
        .hasher
        .hash(password.expose())
        .await
        .map_err(hash_failed)?;
    let mut tx = s.db.begin().await?;
    let Some(id) = accounts::insert(&mut tx, email.as_str(), &hash, Role::Stargazer).await? else {
        return Err(Problem::Conflict(
            "An account with this e-mail exists; log in instead.".into(),
        ));
    };
    let issued = tokens::issue(&mut tx, id, None, refresh_ttl(&s)).await?;
    audit::publish(
        &mut tx,
        "user.registered",
        &id.to_string(),
        json!({"userId": id, "email": email.as_str(), "displayName": display_name, "role": "stargazer"}),
        ctx.get(),
    )
    .await?;
    let mut response = access_token(&s, &id.to_string(), Role::Stargazer).await?;
    tx.commit().await?;
    response.refresh_token = Some(issued.token);
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Deserialize)]
pub struct LoginBody {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn login(
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<LoginBody>,
) -> Result<Json<TokenResponse>, Problem> {
    let email = Email::parse(&body.email)
        .map_err(|m| Problem::invalid_fields(vec![FieldError::new("email", m)]))?;
    let account_key = failures::account_key(email.as_str());
    let address_key = failures::address_key(&ctx.client_ip());
    let mut conn = s.db.pool().acquire().await?;
    // A locked account or address is refused before the password is even looked at, so the
    // lock also stops a guess that happens to be right.
    if let Some(until) =
        failures::locked_until(&mut conn, &[account_key.clone(), address_key.clone()]).await?
    {
        let wait = (until - Utc::now()).to_std().unwrap_or_default();
        return Err(Problem::RateLimited {
            retry_after: wait.max(std::time::Duration::from_secs(1)),
        });
    }
    let account = accounts::by_email(&mut conn, email.as_str()).await?;
    drop(conn);
    let ok = s
        .hasher
        .verify(
            &body.password,
            account.as_ref().map(|a| a.password_hash.as_str()),
        )
        .await
        .map_err(hash_failed)?;

    let mut tx = s.db.begin().await?;
    let Some(account) = account.filter(|_| ok) else {
        failures::record(&mut tx, &account_key, &failures::ACCOUNT).await?;
        failures::record(&mut tx, &address_key, &failures::ADDRESS).await?;
        Audit {
            action: "sign_in_failed",
            actor: None,
            target: Some(email.as_str().to_owned()),
            outcome: "failure",
            context: Some(&ctx),
            details: json!({}),
        }
        .enqueue(&mut tx)
        .await?;
        tx.commit().await?;
        return Err(Problem::Unauthenticated(
            "The e-mail or the password is wrong.".into(),
        ));
    };
    failures::clear(&mut tx, &account_key).await?;
    let issued = tokens::issue(&mut tx, account.id, None, refresh_ttl(&s))
        .await
        .map_err(|e| deleted_meanwhile(e, "The e-mail or the password is wrong."))?;
    Audit {
        action: "sign_in_succeeded",
        actor: Some(account.id.to_string()),
        target: Some(account.id.to_string()),
        outcome: "success",
        context: Some(&ctx),
        details: json!({"family": issued.family_id}),
    }
    .enqueue(&mut tx)
    .await?;
    let mut response = access_token(&s, &account.id.to_string(), account.role()).await?;
    tx.commit().await?;
    response.refresh_token = Some(issued.token);
    Ok(Json(response))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshBody {
    #[serde(default)]
    refresh_token: String,
}

/// The account was deleted between reading it and writing its new token family: the same
/// answer as for an account that does not exist, not a 500.
fn deleted_meanwhile(e: sqlx::Error, detail: &str) -> Problem {
    match &e {
        sqlx::Error::Database(d) if d.is_foreign_key_violation() => {
            Problem::Unauthenticated(detail.into())
        }
        _ => e.into(),
    }
}

fn dead_token() -> Problem {
    Problem::Unauthenticated("The refresh token is not valid; log in again.".into())
}

pub async fn refresh(
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<RefreshBody>,
) -> Result<Json<TokenResponse>, Problem> {
    if body.refresh_token.is_empty() {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "refreshToken",
            "is required",
        )]));
    }
    let mut tx = s.db.begin().await?;
    match tokens::take(&mut tx, &body.refresh_token).await? {
        tokens::Presented::Unknown | tokens::Presented::Dead => Err(dead_token()),
        tokens::Presented::Reused {
            account_id,
            family_id,
        } => {
            tracing::warn!(account = %account_id, family = %family_id, "refresh token reused; family revoked");
            Audit {
                action: "refresh_token_reused",
                actor: None,
                target: Some(account_id.to_string()),
                outcome: "family_revoked",
                context: Some(&ctx),
                details: json!({"family": family_id}),
            }
            .enqueue(&mut tx)
            .await?;
            tx.commit().await?;
            Err(dead_token())
        }
        tokens::Presented::Live {
            account_id,
            family_id,
        } => {
            // The role is read now, so a promotion or demotion shows from the next refresh on.
            let Some(account) = accounts::by_id(&mut tx, account_id).await? else {
                return Err(dead_token());
            };
            let issued =
                tokens::issue(&mut tx, account_id, Some(family_id), refresh_ttl(&s)).await?;
            let mut response = access_token(&s, &account_id.to_string(), account.role()).await?;
            tx.commit().await?;
            response.refresh_token = Some(issued.token);
            Ok(Json(response))
        }
    }
}

pub async fn logout(
    State(s): State<AppState>,
    Json(body): Json<RefreshBody>,
) -> Result<StatusCode, Problem> {
    if body.refresh_token.is_empty() {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "refreshToken",
            "is required",
        )]));
    }
    // The same answer whether or not the token was live: logging out twice is not an error.
    let mut conn = s.db.pool().acquire().await?;
    tokens::revoke_family_of(&mut conn, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A guest gets a subject of its own and no refresh token: when the access token expires, the
/// widget asks for a new guest.
pub async fn guest(
    State(s): State<AppState>,
) -> Result<(StatusCode, Json<TokenResponse>), Problem> {
    let sub = format!("guest-{}", uuid::Uuid::now_v7());
    Ok((
        StatusCode::CREATED,
        Json(access_token(&s, &sub, Role::Guest).await?),
    ))
}
