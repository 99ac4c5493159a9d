//! What the binary hands every service at start, and what a service hands back.
//!
//! A service crate exposes one `init(&Platform) -> Result<Routes, ServiceError>`: it opens its
//! schema, migrates when configured to, starts its consumers and relay on the shared bus, adds its
//! readiness checks, and returns its routers. The binary composes them: in one process under
//! `--target all`, or one per process.

use crate::blob::{BlobConfig, SharedBlobStore};
use crate::config::{ConfigError, ConfigSource};
use crate::db::{Database, DatabaseConfig, DbError};
use crate::events::{BrokerConfig, Bus, dead_letter, relay};
use crate::http::{Json, Path};
use crate::internal::{InternalClient, LocalRoutes};
use crate::problem::Problem;
use crate::telemetry::{Metrics, Readiness};
use crate::tokens::{AuthConfig, Caller, HttpKeySource, Role, StaticKeySource, TokenVerifier};
use axum::Router;
use axum::extract::{FromRef, State};
use axum::routing::{get, post};
use jsonwebtoken::jwk::JwkSet;
use sqlx::migrate::Migrator;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("{0}")]
    Other(String),
}

/// The shared parts of a running process.
#[derive(Clone)]
pub struct Platform {
    pub config: ConfigSource,
    pub database: Option<DatabaseConfig>,
    pub bus: Bus,
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub verifier: Arc<TokenVerifier>,
    /// The public signing keys, when the auth service runs in this process: it publishes them
    /// here and every verifier of the process reads them without an HTTP round trip.
    pub local_keys: Arc<tokio::sync::RwLock<JwkSet>>,
    pub auth: AuthConfig,
    pub blob: BlobConfig,
    /// Where single-machine state lives (the local blob store's default folder).
    pub data_dir: PathBuf,
    pub stop: CancellationToken,
    /// The targets this process runs (set by the binary before any starts), so that a call to
    /// another target's internal API stays in process when it can (see [`crate::internal`]).
    pub local_targets: Vec<String>,
    /// Their admin routers, set once every target has started.
    pub local_admin: LocalRoutes,
}

impl Platform {
    /// Reads the kernel's own sections (database, broker, auth, blob), reporting every bad key
    /// at once.
    pub fn from_config(config: ConfigSource, stop: CancellationToken) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let database = optional_section::<DatabaseConfig>(&config, "database", &mut errors);
        let broker = optional_section::<BrokerConfig>(&config, "broker", &mut errors);
        let auth = config.section::<AuthConfig>("auth").unwrap_or_else(|e| {
            errors.push(e);
            AuthConfig::default()
        });
        let blob = config.section::<BlobConfig>("blob").unwrap_or_else(|e| {
            errors.push(e);
            BlobConfig::default()
        });
        let data_dir = config
            .section::<DataDir>("")
            .map(|d| d.data_dir)
            .unwrap_or_else(|_| PathBuf::from(".protostar"));
        ConfigError::collect(errors)?;

        let local_keys = Arc::new(tokio::sync::RwLock::new(JwkSet { keys: vec![] }));
        // With no JWKS URL the keys come from the auth service in this same process; if there
        // is none, the set stays empty and every token is refused, which is the safe answer.
        let verifier = match &auth.jwks_url {
            Some(url) => TokenVerifier::new(HttpKeySource::new(url.clone()), &auth),
            None => TokenVerifier::new(StaticKeySource(local_keys.clone()), &auth),
        };
        let bus = Bus::from_config(broker.as_ref());
        let readiness = Readiness::default();
        if let Bus::Rabbit(_) = bus {
            let check = bus.clone();
            readiness.add("broker", move || {
                let bus = check.clone();
                async move { bus.check().await }
            });
        }
        Ok(Self {
            config,
            database,
            bus,
            metrics: Metrics::new(),
            readiness,
            verifier: Arc::new(verifier),
            local_keys,
            auth,
            blob,
            data_dir,
            stop,
            local_targets: Vec::new(),
            local_admin: LocalRoutes::default(),
        })
    }

    /// A client for `target`'s internal API: in process when it runs here, otherwise at
    /// `upstreams.<target>.admin`.
    pub fn internal_client(
        &self,
        target: &'static str,
        timeout: std::time::Duration,
    ) -> Result<InternalClient, ConfigError> {
        InternalClient::new(
            target,
            &self.local_targets,
            &self.local_admin,
            &self.config,
            timeout,
        )
    }

    /// The service's schema: migrated now when `database.migrate_on_start`, otherwise checked
    /// against what the migration Job applied. Its readiness check and outbox relay start here.
    pub async fn open_database(
        &self,
        schema: &str,
        migrations: Option<&'static Migrator>,
    ) -> Result<Database, ServiceError> {
        let config = self
            .database
            .as_ref()
            .ok_or_else(|| ConfigError::key("database.url", "is required by this target"))?;
        let db = Database::connect_lazy(config, schema)?;
        let name = format!("database:{schema}");
        let check_db = db.clone();
        self.readiness.add(name, move || {
            let db = check_db.clone();
            async move { db.check().await }
        });
        // Migrating (or finding the Job's migrations) goes on in the background until the
        // database answers; meanwhile `/readyz` says what is missing.
        let bg = db.clone();
        let migrate = config.migrate_on_start;
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut delay = std::time::Duration::from_millis(200);
            loop {
                let outcome = if migrate {
                    bg.migrate(migrations).await.map(|_| true)
                } else {
                    bg.verify_migrated(migrations).await
                };
                match outcome {
                    Ok(true) => {
                        tracing::info!(schema = bg.schema(), "schema ready");
                        return;
                    }
                    Ok(false) => {
                        tracing::warn!(schema = bg.schema(), "waiting for the migration job")
                    }
                    Err(e) => tracing::warn!(schema = bg.schema(), error = %e, "schema not ready"),
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(std::time::Duration::from_secs(10));
            }
        });
        let lanes = match self.bus {
            Bus::Local(_) => 4,
            _ => 1,
        };
        relay::spawn(
            db.clone(),
            self.bus.clone(),
            relay::RelayConfig {
                lanes,
                ..relay::RelayConfig::default()
            },
            self.stop.clone(),
        );
        Ok(db)
    }

    /// The blob store the configuration names (a folder under the data dir by default).
    pub async fn open_blob_store(&self) -> Result<SharedBlobStore, ConfigError> {
        let store = self
            .blob
            .open(Some(self.data_dir.join("originals")))
            .await?;
        let check = store.clone();
        self.readiness.add("blob-store", move || {
            let s = check.clone();
            async move { s.check().await }
        });
        Ok(store)
    }

    /// Migrates a schema now, for `protostar migrate` (the Kubernetes Job).
    pub async fn migrate_now(
        &self,
        schema: &str,
        migrations: Option<&'static Migrator>,
    ) -> Result<(), ServiceError> {
        let config = self
            .database
            .as_ref()
            .ok_or_else(|| ConfigError::key("database.url", "is required to migrate"))?;
        Database::connect_lazy(config, schema)?
            .migrate(migrations)
            .await?;
        Ok(())
    }
}

/// A section that may be absent altogether (no broker: in-process events), but not malformed.
fn optional_section<T: serde::de::DeserializeOwned>(
    config: &ConfigSource,
    key: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    if !config.contains(key) {
        return None;
    }
    config.section::<T>(key).map_err(|e| errors.push(e)).ok()
}

#[derive(serde::Deserialize)]
struct DataDir {
    #[serde(default = "default_data_dir")]
    data_dir: PathBuf,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(".protostar")
}

/// What a service serves: its public API (behind the gateway's public listener) and its admin
/// API (behind the admin listener).
#[derive(Default)]
pub struct Routes {
    pub public: Router,
    pub admin: Router,
}

#[derive(Clone)]
struct OpsState {
    db: Database,
    bus: Bus,
    verifier: Arc<TokenVerifier>,
}

impl FromRef<OpsState> for Arc<TokenVerifier> {
    fn from_ref(s: &OpsState) -> Self {
        s.verifier.clone()
    }
}

/// Every service's dead letters, for the admin pages: `GET /admin/api/dead-letters/{schema}`
/// and `POST /admin/api/dead-letters/{schema}/{id}/retry`. Admins only.
pub fn dead_letter_routes(platform: &Platform, db: &Database) -> Router {
    let schema = db.schema().to_owned();
    Router::new()
        .route(
            &format!("/admin/api/dead-letters/{schema}"),
            get(list_dead_letters),
        )
        .route(
            &format!("/admin/api/dead-letters/{schema}/{{id}}/retry"),
            post(retry_dead_letter),
        )
        .with_state(OpsState {
            db: db.clone(),
            bus: platform.bus.clone(),
            verifier: platform.verifier.clone(),
        })
}

async fn list_dead_letters(
    caller: Caller,
    State(s): State<OpsState>,
) -> Result<Json<Vec<dead_letter::DeadLetter>>, Problem> {
    caller.require(Role::Admin)?;
    Ok(Json(dead_letter::list(&s.db, false).await?))
}

async fn retry_dead_letter(
    caller: Caller,
    State(s): State<OpsState>,
    Path(id): Path<uuid::Uuid>,
) -> Result<axum::http::StatusCode, Problem> {
    caller.require(Role::Admin)?;
    match dead_letter::retry(&s.db, &s.bus, id).await {
        Ok(true) => Ok(axum::http::StatusCode::ACCEPTED),
        Ok(false) => Err(Problem::NotFound(
            "No parked delivery with this id is waiting.".into(),
        )),
        Err(dead_letter::DeadLetterError::Bus(e)) => {
            Err(Problem::UpstreamUnavailable(e.to_string()))
        }
        Err(dead_letter::DeadLetterError::Sql(e)) => Err(e.into()),
    }
}
