//! Invite codes: admins create, list and revoke them; a stargazer redeems one to become a
//! protostar.

use super::{Context, account_of, audit, publish};
use crate::AppState;
use crate::domain::InviteCode;
use crate::store;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Duration, Utc};
use kernel::http::{Json, Path, Query};
use kernel::tokens::{Caller, Role};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

const MAX_COUNT: u32 = 100;
const MAX_USES: u32 = 1000;
const DEFAULT_DAYS: i64 = 14;
const MAX_DAYS: i64 = 365;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInvites {
    #[serde(default = "one")]
    count: u32,
    #[serde(default = "one")]
    uses: u32,
    /// Either an instant or a number of days from now (14 by default).
    expires_at: Option<DateTime<Utc>>,
    expires_in_days: Option<i64>,
}

fn one() -> u32 {
    1
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedInvite {
    id: Uuid,
    /// Shown this once; only its hash is kept.
    code: String,
    uses: u32,
    expires_at: DateTime<Utc>,
}

pub async fn create(
    caller: Caller,
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<CreateInvites>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    caller.require(Role::Admin)?;
    let admin = Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))?;
    let now = Utc::now();
    let mut errors = Vec::new();
    if body.count == 0 || body.count > MAX_COUNT {
        errors.push(FieldError::new(
            "count",
            format!("must be between 1 and {MAX_COUNT}"),
        ));
    }
    if body.uses == 0 || body.uses > MAX_USES {
        errors.push(FieldError::new(
            "uses",
            format!("must be between 1 and {MAX_USES}"),
        ));
    }
    let expires_at = match (body.expires_at, body.expires_in_days) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "expiresAt",
                "give expiresAt or expiresInDays, not both",
            ));
            now
        }
        (Some(at), None) => at,
        (None, days) => {
            let days = days.unwrap_or(DEFAULT_DAYS);
            if !(1..=MAX_DAYS).contains(&days) {
                errors.push(FieldError::new(
                    "expiresInDays",
                    format!("must be between 1 and {MAX_DAYS}"),
                ));
            }
            now + Duration::days(days.clamp(1, MAX_DAYS))
        }
    };
    if expires_at <= now || expires_at > now + Duration::days(MAX_DAYS) {
        errors.push(FieldError::new(
            "expiresAt",
            "must be in the future, at most a year ahead",
        ));
    }
    if !errors.is_empty() {
        return Err(Problem::invalid_fields(errors));
    }

    let mut tx = s.db.begin().await?;
    let mut created = Vec::with_capacity(body.count as usize);
    for _ in 0..body.count {
        let code = InviteCode::generate();
        let id = store::create_invite(&mut tx, &code.hash(), admin, expires_at, body.uses as i32)
            .await?;
        created.push(CreatedInvite {
            id,
            code: code.to_string(),
            uses: body.uses,
            expires_at,
        });
    }
    let ids: Vec<Uuid> = created.iter().map(|c| c.id).collect();
    audit(
        &mut tx,
        "invite_created",
        admin,
        admin,
        json!({"invites": ids, "uses": body.uses, "expiresAt": expires_at}),
        &ctx,
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!({ "invites": created }))))
}

#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<i64>,
}

pub async fn list(
    caller: Caller,
    State(s): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.require(Role::Admin)?;
    let mut conn = s.db.pool().acquire().await?;
    let invites = store::invites(&mut conn, q.limit.unwrap_or(100).clamp(1, 500)).await?;
    Ok(Json(json!({ "invites": invites })))
}

/// `DELETE /admin/api/invites/{id}`: the code can no longer be redeemed; the invite stays listed
/// with `revokedAt`. Revoking a revoked invite answers the same (the first revocation's time).
pub async fn revoke(
    caller: Caller,
    State(s): State<AppState>,
    ctx: Context,
    Path(id): Path<Uuid>,
) -> Result<Json<store::Invite>, Problem> {
    caller.require(Role::Admin)?;
    let admin = Uuid::parse_str(caller.subject())
        .map_err(|_| Problem::Forbidden("This needs an account.".into()))?;
    let mut tx = s.db.begin().await?;
    let Some((invite, now_revoked)) = store::revoke_invite(&mut tx, id).await? else {
        return Err(Problem::NotFound("No invite has this id.".into()));
    };
    if now_revoked {
        audit(
            &mut tx,
            "invite_revoked",
            admin,
            id,
            json!({"usesLeft": invite.uses_left, "revokedAt": invite.revoked_at}),
            &ctx,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Json(invite))
}

#[derive(Deserialize)]
pub struct Redeem {
    #[serde(default)]
    code: String,
}

pub async fn redeem(
    caller: Caller,
    State(s): State<AppState>,
    ctx: Context,
    Json(body): Json<Redeem>,
) -> Result<Json<serde_json::Value>, Problem> {
    let id = account_of(&caller)?;
    let code = InviteCode::parse(&body.code)
        .map_err(|m| Problem::invalid_fields(vec![FieldError::new("code", m)]))?;
    if caller.role().includes(Role::Protostar) {
        return Err(Problem::Conflict(
            "This account is a protostar already.".into(),
        ));
    }
    let mut tx = s.db.begin().await?;
    // The profile row is locked first: one account's racing redemptions (of one code or of
    // several) are ordered, and only the first takes a use.
    let profile = store::profile_for_update(&mut tx, id)
        .await?
        .ok_or_else(|| Problem::NotFound("This account has been deleted.".into()))?;
    if profile.invite_redeemed_at.is_some() {
        return Err(Problem::Conflict(
            "This account has redeemed an invite already.".into(),
        ));
    }
    let Some(invite_id) = store::take_invite_use(&mut tx, &code.hash()).await? else {
        // One answer for unknown, expired, used-up and revoked codes: no hints for guessing.
        return Err(Problem::NotFound("No usable invite has this code.".into()));
    };
    store::record_redemption(&mut tx, invite_id, id).await?;
    publish(
        &mut tx,
        "invite.redeemed",
        id,
        json!({"userId": id, "inviteId": invite_id}),
        &ctx,
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!({
        "role": "protostar",
        "effective": "from the next token refresh",
    })))
}
