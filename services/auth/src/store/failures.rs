//! Failed logins, counted per account and per client address. Past a threshold each further
//! failure locks the key for twice as long as the last (1 s, 2 s, 4 s, ... up to 15 minutes);
//! a quiet window resets the count. Counting by address too slows down one client trying many
//! accounts, which per-account counting alone does not see.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

pub struct Policy {
    pub threshold: i32,
}

pub const ACCOUNT: Policy = Policy { threshold: 5 };
pub const ADDRESS: Policy = Policy { threshold: 20 };
/// Failures older than this are forgotten.
const WINDOW_SECS: f64 = 15.0 * 60.0;
const MAX_LOCK_SECS: i64 = 15 * 60;

pub fn account_key(email: &str) -> String {
    format!("account:{email}")
}

pub fn address_key(ip: &str) -> String {
    format!("ip:{ip}")
}

/// The latest time until which any of `keys` is locked, if in the future.
pub async fn locked_until(
    c: &mut PgConnection,
    keys: &[String],
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT max(locked_until) FROM login_failures WHERE key = ANY($1) AND locked_until > now()",
    )
    .bind(keys)
    .fetch_one(c)
    .await
}

/// How long a key is locked after its `failures`-th failure in a row.
pub fn lock_secs(failures: i32, policy: &Policy) -> Option<i64> {
    let over = failures.checked_sub(policy.threshold)?;
    let over = u32::try_from(over).ok()?;
    Some(2i64.saturating_pow(over.min(20)).min(MAX_LOCK_SECS))
}

pub async fn record(c: &mut PgConnection, key: &str, policy: &Policy) -> Result<(), sqlx::Error> {
    let failures: i32 = sqlx::query_scalar(
        "INSERT INTO login_failures (key, failures, last_failure_at) VALUES ($1, 1, now())
         ON CONFLICT (key) DO UPDATE SET
           failures = CASE WHEN login_failures.last_failure_at < now() - make_interval(secs => $2)
                           THEN 1 ELSE login_failures.failures + 1 END,
           last_failure_at = now()
         RETURNING failures",
    )
    .bind(key)
    .bind(WINDOW_SECS)
    .fetch_one(&mut *c)
    .await?;
    if let Some(secs) = lock_secs(failures, policy) {
        sqlx::query("UPDATE login_failures SET locked_until = now() + make_interval(secs => $2) WHERE key = $1")
            .bind(key)
            .bind(secs as f64)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

pub async fn clear(c: &mut PgConnection, key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(c)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_grow_from_the_threshold_and_stop_at_the_cap() {
        assert_eq!(lock_secs(4, &ACCOUNT), None);
        assert_eq!(lock_secs(5, &ACCOUNT), Some(1));
        assert_eq!(lock_secs(6, &ACCOUNT), Some(2));
        assert_eq!(lock_secs(9, &ACCOUNT), Some(16));
        assert_eq!(lock_secs(100, &ACCOUNT), Some(MAX_LOCK_SECS));
        assert_eq!(lock_secs(i32::MAX, &ACCOUNT), Some(MAX_LOCK_SECS));
        assert_eq!(lock_secs(19, &ADDRESS), None);
    }
}
