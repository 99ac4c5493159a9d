//! The caller's own profile: show, change, export, delete.

use super::{Context, account_of, audit, publish};
use crate::AppState;
use crate::domain::DisplayName;
use crate::store;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use kernel::http::Json;
use kernel::tokens::{Caller, Role};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileView {
    id: Uuid,
    email: Option<String>,
    display_name: Option<String>,
    /// The role of the caller's token; after redeeming an invite it changes at the next refresh.
    role: Role,
    invite_redeemed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

fn gone() -> Problem {
    Problem::NotFound("This account has been deleted.".into())
}

fn view(p: store::Profile, role: Role) -> ProfileView {
    ProfileView {
        id: p.id,
        email: p.email,
        display_name: p.display_name,
        role,
        invite_redeemed_at: p.invite_redeemed_at,
        created_at: p.created_at,
    }
}

pub async fn show(caller: Caller, State(s): State<AppState>) -> Result<Json<ProfileView>, Problem> {
    let id = account_of(&caller)?;
    let mut tx = s.db.begin().await?;
    let profile = store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(gone)?;
    tx.commit().await?;
    Ok(Json(view(profile, caller.role())))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileChange {
    display_name: Option<String>,
}

pub async fn update(
    caller: Caller,
    State(s): State<AppState>,
    Json(change): Json<ProfileChange>,
) -> Result<Json<ProfileView>, Problem> {
    let id = account_of(&caller)?;
    let name = match change.display_name.as_deref() {
        Some(raw) => Some(
            DisplayName::parse(raw)
                .map_err(|m| Problem::invalid_fields(vec![FieldError::new("displayName", m)]))?,
        ),
        None => None,
    };
    let mut tx = s.db.begin().await?;
    store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(gone)?;
    if let Some(name) = name {
        store::set_display_name(&mut tx, id, name.as_str()).await?;
    }
    let profile = store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(gone)?;
    tx.commit().await?;
    Ok(Json(view(profile, caller.role())))
}

/// Everything the account owns, as one JSON document to download: what this service keeps, and
/// under `chat` what the chat service keeps (asked with the caller's own token). Without chat
/// the answer is `503`, never a silently partial archive.
pub async fn export(
    caller: Caller,
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, Problem> {
    let id = account_of(&caller)?;
    let bearer = crate::chat::bearer(&headers)
        .ok_or_else(|| Problem::Unauthenticated("This needs an access token.".into()))?;
    let chat = s.chat.export(bearer).await?;
    let mut tx = s.db.begin().await?;
    let profile = store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(gone)?;
    let redemptions = store::redemptions(&mut tx, id).await?;
    tx.commit().await?;
    let body = json!({
        "exportedAt": Utc::now(),
        "profile": view(profile, caller.role()),
        "inviteRedemptions": redemptions,
        "chat": chat,
    });
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"protostar-export.json\"",
        )],
        Json(body),
    ))
}

/// Deletes the profile now and announces `user.deleted`, in the same transaction, so that every
/// other service (auth first of all) deletes what it keeps. 202: the rest happens as they apply it.
pub async fn delete(
    caller: Caller,
    State(s): State<AppState>,
    ctx: Context,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    let id = account_of(&caller)?;
    let mut tx = s.db.begin().await?;
    store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(gone)?;
    store::delete_account(&mut tx, id).await?;
    publish(&mut tx, "user.deleted", id, json!({"userId": id}), &ctx).await?;
    audit(&mut tx, "account_deleted", id, id, json!({}), &ctx).await?;
    tx.commit().await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": "The account and everything it owns are being deleted."})),
    ))
}
