//! PostgreSQL: one pool per service, each in its own schema with its own migrations.
//!
//! Every connection of a service's pool has `search_path = <schema>, public`, so the service's
//! SQL names its tables without a schema and cannot reach another service's by accident. The
//! kernel's own tables (outbox, processed events, dead letters) are created in each service's
//! schema by the kernel's migrations, kept in a separate history table so that the two sets of
//! migrations never trip over each other.

use crate::Secret;
use serde::Deserialize;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

static KERNEL_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://user:password@host:port/database`
    pub url: Secret<String>,
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
    #[serde(default = "default_acquire_timeout")]
    pub acquire_timeout_secs: u64,
    /// Run migrations when a service starts (single machine). In Kubernetes a Job runs
    /// `protostar migrate` before the new version starts, and this is off.
    #[serde(default = "yes")]
    pub migrate_on_start: bool,
}

fn default_max_connections() -> u32 {
    10
}
fn default_acquire_timeout() -> u64 {
    5
}
fn yes() -> bool {
    true
}

impl DatabaseConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: Secret::new(url.into()),
            max_connections: default_max_connections(),
            acquire_timeout_secs: default_acquire_timeout(),
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("`{0}` is not a valid schema name (lowercase letters, digits and _, at most 63)")]
    BadSchema(String),
    #[error("database.url is not a valid PostgreSQL URL: {0}")]
    BadUrl(sqlx::Error),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("migrating schema {schema}: {source}")]
    Migrate {
        schema: String,
        #[source]
        source: MigrateError,
    },
}

/// A service's handle on its schema.
#[derive(Clone)]
pub struct Database {
    pool: PgPool,
    schema: Arc<str>,
    migrated: Arc<AtomicBool>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("schema", &self.schema)
            .finish()
    }
}

pub fn valid_schema(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// A pgvector `vector` parameter, sent in pgvector's binary form (a 16-bit dimension count, a
/// 16-bit zero, then each component as a big-endian `float4`). Bind it wherever a vector is a
/// parameter: its text form costs a float formatting per component here and a float parse per
/// component in PostgreSQL (384 of each for every question asked). The type is looked up by
/// name (`public` is on every pool's search path).
#[derive(Debug, Clone, Copy)]
pub struct Vector<'a>(pub &'a [f32]);

impl sqlx::Type<Postgres> for Vector<'_> {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_name("vector")
    }
}

impl sqlx::Encode<'_, Postgres> for Vector<'_> {
    fn encode_by_ref(
        &self,
        buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        // pgvector allows 16,000 dimensions; a count beyond 16 bits is refused here.
        let dimensions = u16::try_from(self.0.len())?;
        buf.reserve(4 + 4 * self.0.len());
        buf.extend_from_slice(&dimensions.to_be_bytes());
        buf.extend_from_slice(&0u16.to_be_bytes());
        for x in self.0 {
            buf.extend_from_slice(&x.to_be_bytes());
        }
        Ok(sqlx::encode::IsNull::No)
    }
}

/// pgvector's text form, `[0.1,0.2,...]`, for SQL built as text (ai's benchmark inlines its
/// vectors in the raw pgvector query); a parameter is better bound as [`Vector`].
pub fn vector_literal(v: &[f32]) -> String {
    let mut s = String::with_capacity(v.len() * 12 + 2);
    s.push('[');
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&x.to_string());
    }
    s.push(']');
    s
}

/// Starts a transaction on `pool`. Use this, never `Pool::begin` (clippy.toml forbids it):
/// sqlx 0.9's `begin` is not cancel-safe on PostgreSQL. It sends `BEGIN` and counts the
/// transaction only once the answer is read, so a future dropped in between (a client that
/// hangs up mid-request, a timeout) leaves the session inside a transaction that nothing rolls
/// back, and the pool hands it to the next borrower: their statements then run inside it, hold
/// its row locks and are lost or committed by whoever next commits (PostgreSQL says "there is
/// already a transaction in progress"). Upstream: transact-rs/sqlx#4393.
///
/// Here the `BEGIN` runs on a task of its own, which finishes whether or not the caller still
/// waits; a transaction nobody takes is dropped there and rolled back like any other. (The
/// task also waits for the connection: a request abandoned while the pool is exhausted still
/// costs a BEGIN and a ROLLBACK once a connection frees up. sqlx has no stable way to begin on
/// a connection acquired beforehand, which would avoid that.)
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    #[allow(clippy::disallowed_methods)] // the one place that may
    let task = tokio::spawn(async move { pool.begin().await });
    match task.await {
        Ok(begun) => begun,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down.
        Err(e) => Err(sqlx::Error::Io(std::io::Error::other(format!(
            "starting a transaction: {e}"
        )))),
    }
}

impl Database {
    /// A pool for `schema`. Connections are opened on first use, so a process whose database is
    /// down still starts and `/readyz` says why.
    pub fn connect_lazy(config: &DatabaseConfig, schema: &str) -> Result<Self, DbError> {
        if !valid_schema(schema) {
            return Err(DbError::BadSchema(schema.to_owned()));
        }
        let url = config.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(DbError::BadUrl(sqlx::Error::Configuration(
                "the URL must start with postgres:// or postgresql://".into(),
            )));
        }
        let options = PgConnectOptions::from_str(url).map_err(DbError::BadUrl)?;
        let search_path: Arc<str> = format!("SET search_path TO {schema}, public").into();
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(Duration::from_secs(config.acquire_timeout_secs))
            .after_connect(move |conn, _meta| {
                // The schema name was checked by `valid_schema`, so the SQL is not injectable.
                let sql = AssertSqlSafe(search_path.clone());
                Box::pin(async move {
                    sqlx::raw_sql(sql).execute(conn).await?;
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Self {
            pool,
            schema: schema.into(),
            migrated: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction on this pool, cancel-safely: see [`begin`].
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        begin(&self.pool).await
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Creates the schema and applies the kernel's migrations and then the service's.
    pub async fn migrate(&self, service: Option<&Migrator>) -> Result<(), DbError> {
        let schema = self.schema.to_string();
        let err = |source| DbError::Migrate {
            schema: schema.clone(),
            source,
        };
        self.scoped(&KERNEL_MIGRATIONS, "_kernel_migrations")
            .run(&self.pool)
            .await
            .map_err(err)?;
        if let Some(m) = service {
            self.scoped(m, "_sqlx_migrations")
                .run(&self.pool)
                .await
                .map_err(err)?;
        }
        self.migrated.store(true, Ordering::Release);
        Ok(())
    }

    fn scoped(&self, migrator: &Migrator, table: &str) -> Migrator {
        let mut m = Migrator::with_migrations(migrator.iter().cloned().collect());
        m.dangerous_set_table_name(format!("{}.{table}", self.schema));
        m.create_schema(self.schema.to_string());
        m
    }

    pub fn is_migrated(&self) -> bool {
        self.migrated.load(Ordering::Acquire)
    }

    /// Checks the server answers and that this process's migrations ran: `/readyz` material.
    pub async fn check(&self) -> Result<(), String> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| format!("database unreachable: {e}"))?;
        if !self.is_migrated() {
            return Err(format!(
                "migrations of schema {} not applied yet",
                self.schema
            ));
        }
        Ok(())
    }

    /// Marks migrations as applied elsewhere (by the migration Job), after verifying it.
    pub async fn verify_migrated(&self, service: Option<&Migrator>) -> Result<bool, DbError> {
        let mut latest = KERNEL_MIGRATIONS.iter().map(|m| m.version).max();
        let mut tables = vec![("_kernel_migrations", latest)];
        if let Some(m) = service {
            latest = m.iter().map(|m| m.version).max();
            tables.push(("_sqlx_migrations", latest));
        }
        for (table, version) in tables {
            let Some(version) = version else { continue };
            let applied: Option<bool> = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT bool_and(success) FROM {}.{table} WHERE version = $1",
                self.schema
            )))
            .bind(version)
            .fetch_one(&self.pool)
            .await
            .or_else(|e| match e {
                // No history table yet: nothing has been migrated.
                sqlx::Error::Database(d) if d.code().as_deref() == Some("42P01") => Ok(None),
                e => Err(e),
            })?;
            if applied != Some(true) {
                return Ok(false);
            }
        }
        self.migrated.store(true, Ordering::Release);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn vector_text_form() {
        assert_eq!(super::vector_literal(&[0.5, -1.0, 0.25]), "[0.5,-1,0.25]");
    }
}
