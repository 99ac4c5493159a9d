//! The shared, non-secret configuration (a ConfigMap read with `envFrom`) and the Secret files
//! each process mounts (`PROTOSTAR_*_FILE` pointing into read-only Secret volumes).

use std::collections::BTreeMap;

use protostar_crds::{BrokerMode, RedisMode, StoreMode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{Ctx, Object, secrets};
use crate::contract::{self, Needs, env};
use crate::kind::Kind;

/// Where Secret volumes are mounted; each volume gets a directory of its own.
pub const SECRETS_DIR: &str = "/var/run/secrets/protostar";

pub fn name(ctx: &Ctx<'_>) -> String {
    ctx.child("config")
}

pub fn redis_url(ctx: &Ctx<'_>) -> String {
    format!(
        "redis://{}.{}.svc:6379",
        super::redis::name(ctx),
        ctx.namespace
    )
}

/// Issuer of tokens: the spec's, else the first public host.
pub fn issuer(ctx: &Ctx<'_>) -> String {
    ctx.spec.auth.issuer.clone().unwrap_or_else(|| {
        let host = ctx
            .spec
            .hostnames
            .public
            .first()
            .map(String::as_str)
            .unwrap_or("localhost");
        format!("https://{host}")
    })
}

/// The configuration every process shares, as environment variables. Only keys the binary
/// accepts are rendered (it refuses to start on unknown ones).
pub fn data(ctx: &Ctx<'_>) -> BTreeMap<String, String> {
    let spec = ctx.spec;
    let mut d = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        d.insert(k.to_owned(), v);
    };
    put(env::PUBLIC_ADDR, env::PUBLIC_ADDR_VALUE.into());
    put(env::ADMIN_ADDR, env::ADMIN_ADDR_VALUE.into());
    put(env::LOG_FILTER, spec.log_filter.clone());
    put(env::DATA_DIR, contract::DATA_DIR.into());
    if spec.redis.mode == RedisMode::Managed {
        put(env::REDIS_URL, redis_url(ctx));
    }
    let auth_service = super::service::name(ctx, contract::AUTH);
    put(
        env::AUTH_JWKS_URL,
        format!(
            "http://{auth_service}:{}{}",
            contract::PUBLIC_PORT,
            contract::JWKS_PATH
        ),
    );
    put(env::AUTH_ISSUER, issuer(ctx));
    put(
        env::AUTH_AUDIENCE,
        spec.auth
            .audience
            .clone()
            .unwrap_or_else(|| "protostar".into()),
    );
    let q = &spec.quotas;
    for (key, value) in [
        (
            "QUESTIONS_PER_DAY_PER_CHATBOT",
            q.questions_per_day_per_chatbot,
        ),
        ("GUEST_QUESTIONS_PER_HOUR", q.guest_questions_per_hour),
        ("DOCUMENTS_PER_CHATBOT", q.documents_per_chatbot),
        ("MAX_UPLOAD_MEGABYTES", q.max_upload_megabytes),
        ("CHATBOTS_PER_USER", q.chatbots_per_user),
    ] {
        if let Some(value) = value {
            put(&format!("{}{key}", env::QUOTAS_PREFIX), value.to_string());
        }
    }
    for p in &spec.models.providers {
        let prefix = format!("{}{}__", env::MODELS_PREFIX, p.name.to_ascii_uppercase());
        put(&format!("{prefix}KIND"), p.kind.as_str().into());
        if let Some(v) = &p.endpoint {
            put(&format!("{prefix}ENDPOINT"), v.clone());
        }
        if let Some(v) = &p.chat_model {
            put(&format!("{prefix}CHAT_MODEL"), v.clone());
        }
        if let Some(v) = &p.embedding_model {
            put(&format!("{prefix}EMBEDDING_MODEL"), v.clone());
        }
    }
    if let Some(smtp) = &spec.notifications.smtp {
        put(env::SMTP_HOST, smtp.host.clone());
        put(env::SMTP_PORT, smtp.port.to_string());
        put(env::SMTP_FROM, smtp.from.clone());
    }
    d.retain(|k, _| contract::accepts(k));
    d
}

pub fn render(ctx: &Ctx<'_>) -> Object {
    Object::new(
        Kind::ConfigMap,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": ctx.meta(&name(ctx), "config", true),
            "data": data(ctx),
        }),
    )
}

/// A short digest of the configuration, set on pod templates so that a change rolls them.
pub fn hash(ctx: &Ctx<'_>) -> String {
    let mut h = Sha256::new();
    for (k, v) in data(ctx) {
        h.update(k.as_bytes());
        h.update([0]);
        h.update(v.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Volumes, mounts and `_FILE` variables for the Secrets a process needs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SecretFiles {
    pub env: Vec<Value>,
    pub volumes: Vec<Value>,
    pub mounts: Vec<Value>,
}

impl SecretFiles {
    /// Mount `keys` of Secret `secret` as files in a volume called `volume`, and point each
    /// variable at its file.
    fn add(&mut self, volume: &str, secret: &str, keys: &[(&str, String)]) {
        // A key the binary does not accept yet would stop it from starting: mount nothing.
        let keys: Vec<&(&str, String)> = keys
            .iter()
            .filter(|(_, var)| contract::accepts(var))
            .collect();
        if keys.is_empty() {
            return;
        }
        let dir = format!("{SECRETS_DIR}/{volume}");
        let items: Vec<Value> = keys
            .iter()
            .map(|(key, _)| json!({ "key": key, "path": key }))
            .collect();
        self.volumes.push(json!({
            "name": volume,
            "secret": { "secretName": secret, "items": items, "defaultMode": 0o440 },
        }));
        self.mounts
            .push(json!({ "name": volume, "mountPath": dir, "readOnly": true }));
        for (key, var) in keys {
            self.env
                .push(json!({ "name": var, "value": format!("{dir}/{key}") }));
        }
    }
}

pub fn secret_files(ctx: &Ctx<'_>, needs: Needs) -> SecretFiles {
    let spec = ctx.spec;
    let mut f = SecretFiles::default();
    if needs.database {
        f.env
            .push(json!({ "name": env::DATABASE_MIGRATE_ON_START, "value": "false" }));
        match (&spec.database.mode, &spec.database.external) {
            (StoreMode::External, Some(ext)) => f.add(
                "database",
                &ext.url_secret_ref.name,
                &[(&ext.url_secret_ref.key, env::file(env::DATABASE_URL))],
            ),
            _ => f.add(
                "database",
                &secrets::database_secret(ctx),
                &[(secrets::URL_KEY, env::file(env::DATABASE_URL))],
            ),
        }
    }
    if needs.broker {
        match (&spec.broker.mode, &spec.broker.external) {
            (BrokerMode::Managed, _) => f.add(
                "broker",
                &secrets::broker_secret(ctx),
                &[(secrets::URL_KEY, env::file(env::BROKER_URL))],
            ),
            (BrokerMode::External, Some(ext)) => f.add(
                "broker",
                &ext.url_secret_ref.name,
                &[(&ext.url_secret_ref.key, env::file(env::BROKER_URL))],
            ),
            // No broker: events stay in-process.
            _ => {}
        }
    }
    // Redis is a cache the gateway uses for rate limits, so every process may use it.
    if let (RedisMode::External, Some(ext)) = (&spec.redis.mode, &spec.redis.external) {
        f.add(
            "redis",
            &ext.url_secret_ref.name,
            &[(&ext.url_secret_ref.key, env::file(env::REDIS_URL))],
        );
    }
    if needs.blob {
        // Only where it is used: an S3 store wants credentials, which only these processes get.
        let store = &spec.object_storage;
        for (var, value) in [
            (env::BLOB_KIND, "s3"),
            (env::BLOB_ENDPOINT, store.endpoint.as_str()),
            (env::BLOB_BUCKET, store.bucket.as_str()),
            (env::BLOB_REGION, store.region.as_str()),
        ] {
            f.env.push(json!({ "name": var, "value": value }));
        }
        f.add(
            "blob",
            &spec.object_storage.credentials_secret_ref.name,
            &[
                ("accessKeyId", env::file(env::BLOB_ACCESS_KEY_ID)),
                ("secretAccessKey", env::file(env::BLOB_SECRET_ACCESS_KEY)),
            ],
        );
    }
    if needs.signing_keys {
        f.add(
            "signing-keys",
            &secrets::signing_keys_secret(ctx),
            &[(
                secrets::SIGNING_KEYS_KEY,
                env::AUTH_SIGNING_KEYS_FILE.to_owned(),
            )],
        );
    }
    if needs.models {
        for p in &spec.models.providers {
            if let Some(r) = &p.api_key_secret_ref {
                let var = format!(
                    "{}{}__API_KEY",
                    env::MODELS_PREFIX,
                    p.name.to_ascii_uppercase()
                );
                f.add(
                    &format!("model-{}", p.name.replace('_', "-")),
                    &r.name,
                    &[(&r.key, env::file(&var))],
                );
            }
        }
    }
    if needs.notifications {
        if let Some(r) = &spec.notifications.discord_webhook_secret_ref {
            f.add(
                "discord",
                &r.name,
                &[(&r.key, env::file(env::DISCORD_WEBHOOK_URL))],
            );
        }
        if let Some(smtp) = &spec.notifications.smtp {
            f.add(
                "smtp",
                &smtp.credentials_secret_ref.name,
                &[
                    ("username", env::file(env::SMTP_USERNAME)),
                    ("password", env::file(env::SMTP_PASSWORD)),
                ],
            );
        }
    }
    f
}
