//! The admin API of accounts: list them, change roles, rotate the signing key.

use super::Context;
use crate::AppState;
use crate::audit::{self, Audit};
use crate::store::accounts;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use kernel::http::{Json, Path, Query};
use kernel::tokens::{Caller, Role};
use kernel::{FieldError, Problem};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

#[derive(Deserialize)]
pub struct Page {
    after: Option<Uuid>,
    limit: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    id: Uuid,
    email: String,
    role: Role,
    created_at: DateTime<Utc>,
}

impl From<accounts::Account> for AccountView {
    fn from(a: accounts::Account) -> Self {
        Self {
            id: a.id,
            role: a.role(),
            email: a.email,
            created_at: a.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    users: Vec<AccountView>,
    /// Pass as `after` for the next page; absent on the last one.
    next: Option<Uuid>,
}

pub async fn list_users(
    caller: Caller,
    State(s): State<AppState>,
    Query(page): Query<Page>,
) -> Result<Json<AccountPage>, Problem> {
    caller.require(Role::Admin)?;
    let limit = page.limit.unwrap_or(50).clamp(1, 200);
    let mut conn = s.db.pool().acquire().await?;
    let rows = accounts::page(&mut conn, page.after, limit).await?;
    let next = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|a| a.id))
        .flatten();
    Ok(Json(AccountPage {
        users: rows.into_iter().map(AccountView::from).collect(),
        next,
    }))
}

#[derive(Deserialize)]
pub struct RoleChange {
    role: String,
}

pub async fn change_role(
    caller: Caller,
    State(s): State<AppState>,
    ctx: Context,
    Path(id): Path<Uuid>,
    Json(body): Json<RoleChange>,
) -> Result<Json<AccountView>, Problem> {
    caller.require(Role::Admin)?;
    let Some(role) = accounts::parse_role(&body.role) else {
        return Err(Problem::invalid_fields(vec![FieldError::new(
            "role",
            "must be stargazer, protostar or admin",
        )]));
    };
    if caller.subject() == id.to_string() {
        // An admin demoting themselves could leave the install without any admin.
        return Err(Problem::Conflict(
            "Admins cannot change their own role.".into(),
        ));
    }
    let mut tx = s.db.begin().await?;
    let Some(from) = accounts::set_role(&mut tx, id, role).await? else {
        return Err(Problem::NotFound("No account has this id.".into()));
    };
    Audit {
        action: "role_changed",
        actor: Some(caller.subject().to_owned()),
        target: Some(id.to_string()),
        outcome: "success",
        context: Some(&ctx),
        details: json!({"from": from, "to": role}),
    }
    .enqueue(&mut tx)
    .await?;
    audit::publish(
        &mut tx,
        "user.role_changed",
        &id.to_string(),
        json!({"userId": id, "role": role}),
        ctx.get(),
    )
    .await?;
    let account = accounts::by_id(&mut tx, id)
        .await?
        .ok_or_else(|| Problem::NotFound("No account has this id.".into()))?;
    tx.commit().await?;
    Ok(Json(account.into()))
}

pub async fn rotate_keys(
    caller: Caller,
    State(s): State<AppState>,
) -> Result<(StatusCode, Json<serde_json::Value>), Problem> {
    caller.require(Role::Admin)?;
    match s.keys.rotate_now().await.map_err(Problem::internal)? {
        Some((kid, signs_from)) => Ok((
            StatusCode::CREATED,
            Json(json!({"kid": kid, "signsFrom": signs_from})),
        )),
        None => Err(Problem::Conflict(
            "Keys come from auth.signing_keys; rotate by adding a key to that file.".into(),
        )),
    }
}
