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
    if let Some(smtp) = &spec.notifications.smtp {
        put(env::SMTP_HOST, smtp.host.clone());
        put(env::SMTP_PORT, smtp.port.to_string());
        put(env::SMTP_FROM, smtp.from.clone());
    }
    // Rendering a key the binary refuses is a bug the tests catch (debug builds); a release
    // build drops it rather than stop every process.
    debug_assert!(
        d.keys().all(|k| contract::accepts(k)),
        "unaccepted key in {d:?}"
    );
    d.retain(|k, _| contract::accepts(k));
    d
}

const MIB: i64 = 1024 * 1024;

/// A target's own, non-secret settings, as `env` entries of its container: the internal APIs
/// it calls, the proxies it believes, and the spec's quotas or models where they are read.
/// These stay out of the shared ConfigMap so that each reaches only the process that reads it
/// (every process checks the `chat` section at start, only ai reads `ai`).
pub fn settings(ctx: &Ctx<'_>, needs: Needs) -> Vec<Value> {
    let spec = ctx.spec;
    let mut out: Vec<(String, String)> = Vec::new();
    for target in needs.calls {
        out.push((
            env::upstream(target, "admin"),
            format!(
                "http://{}:{}",
                super::service::name(ctx, target),
                contract::ADMIN_PORT
            ),
        ));
    }
    let proxies = match needs.trusted_proxies {
        Some(contract::Proxies::Gateway(key)) => Some((key, &spec.network.trusted_proxies)),
        Some(contract::Proxies::Edge(key)) => Some((key, &spec.network.gateway_trusted_proxies)),
        None => None,
    };
    if let Some((key, list)) = proxies.filter(|(_, list)| !list.is_empty()) {
        out.push((key.to_owned(), list.join(",")));
    }
    let q = &spec.quotas;
    if needs.quotas {
        for (key, value) in [
            ("GUEST_TOTAL", q.guest_total),
            ("STARGAZER_PER_DAY", q.stargazer_per_day),
            ("GUEST_IP_PER_DAY", q.guest_ip_per_day),
            ("CHATBOT_PER_DAY", q.chatbot_per_day),
        ] {
            if let Some(value) = value {
                out.push((
                    format!("{}{key}", env::CHAT_QUOTAS_PREFIX),
                    value.to_string(),
                ));
            }
        }
        if let Some(tz) = &q.timezone {
            out.push((format!("{}TIMEZONE", env::CHAT_QUOTAS_PREFIX), tz.clone()));
        }
        if let Some(mb) = q.max_upload_megabytes {
            out.push((
                env::CHAT_MAX_UPLOAD_BYTES.into(),
                (i64::from(mb) * MIB).to_string(),
            ));
        }
    }
    // The gateway forwards uploads to chat: its body limit stays above chat's (a MiB for the
    // multipart framing and the title), or a raised chat limit would never be reached.
    if needs.upstreams
        && let Some(mb) = q.max_upload_megabytes
    {
        out.push((
            env::GATEWAY_MAX_UPLOAD_BYTES.into(),
            ((i64::from(mb) + 1) * MIB).to_string(),
        ));
    }
    if needs.models {
        out.extend(model_settings(spec));
    }
    debug_assert!(
        out.iter().all(|(k, _)| contract::accepts(k)),
        "unaccepted key in {out:?}"
    );
    out.into_iter()
        .filter(|(k, _)| contract::accepts(k))
        .map(|(name, value)| json!({ "name": name, "value": value }))
        .collect()
}

/// `ai.generation.*` and `ai.embedding.*` without their keys (those are files).
fn model_settings(spec: &protostar_crds::ProtostarSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(g) = &spec.models.generation {
        let order: Vec<&str> = g.order.iter().map(|m| m.as_str()).collect();
        out.push((env::AI_GENERATION_ORDER.to_owned(), order.join(",")));
        let mut model = |name: &str, base_url: Option<&String>, model: &String| {
            let prefix = format!(
                "{}{}__",
                env::AI_GENERATION_PREFIX,
                name.to_ascii_uppercase()
            );
            if let Some(url) = base_url {
                out.push((format!("{prefix}BASE_URL"), url.clone()));
            }
            out.push((format!("{prefix}MODEL"), model.clone()));
        };
        if let Some(m) = &g.openai {
            model("openai", Some(&m.base_url), &m.model);
        }
        if let Some(m) = &g.gemini {
            model("gemini", m.base_url.as_ref(), &m.model);
        }
        if let Some(m) = &g.anthropic {
            model("anthropic", m.base_url.as_ref(), &m.model);
        }
    }
    if let Some(e) = &spec.models.embedding {
        let p = env::AI_EMBEDDING_PREFIX;
        out.push((format!("{p}PROVIDER"), e.provider.as_str().into()));
        for (key, value) in [
            ("MODEL_DIR", &e.model_dir),
            ("BASE_URL", &e.base_url),
            ("MODEL", &e.model),
        ] {
            if let Some(v) = value {
                out.push((format!("{p}{key}"), v.clone()));
            }
        }
    }
    out
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
        // A key the binary does not accept would stop it from starting: mount nothing (the
        // tests fail on it first).
        debug_assert!(
            keys.iter().all(|(_, var)| contract::accepts(var)),
            "{keys:?}"
        );
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
        // Each model's API key: `ai.generation.<model>.api_key`, `ai.embedding.api_key`.
        let generation = spec.models.generation.as_ref();
        for (name, secret) in [
            (
                "openai",
                generation
                    .and_then(|g| g.openai.as_ref())
                    .and_then(|m| m.api_key_secret_ref.as_ref()),
            ),
            (
                "gemini",
                generation
                    .and_then(|g| g.gemini.as_ref())
                    .map(|m| &m.api_key_secret_ref),
            ),
            (
                "anthropic",
                generation
                    .and_then(|g| g.anthropic.as_ref())
                    .map(|m| &m.api_key_secret_ref),
            ),
        ] {
            if let Some(r) = secret {
                let var = format!(
                    "{}{}__API_KEY",
                    env::AI_GENERATION_PREFIX,
                    name.to_ascii_uppercase()
                );
                f.add(
                    &format!("model-{name}"),
                    &r.name,
                    &[(&r.key, env::file(&var))],
                );
            }
        }
        if let Some(r) = spec
            .models
            .embedding
            .as_ref()
            .and_then(|e| e.api_key_secret_ref.as_ref())
        {
            let var = format!("{}API_KEY", env::AI_EMBEDDING_PREFIX);
            f.add("model-embedding", &r.name, &[(&r.key, env::file(&var))]);
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
