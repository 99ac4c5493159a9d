//! The platform binary's contract, in one place: targets, commands, ports, probe paths and
//! configuration keys of the `protostar` image. Everything the operator renders takes these
//! names from here, so a test can cross-check them against `services/` when both have landed.

/// The binary inside the one image.
pub const BINARY: &str = "protostar";

/// Every service target `protostar serve --target <name>` accepts, gateway first.
pub const TARGETS: [&str; 8] = [
    "gateway", "auth", "user", "chat", "ai", "noti", "audit", "psych",
];

/// The target that faces the outside and holds the admin listener.
pub const GATEWAY: &str = "gateway";
/// The target that writes the audit trail: one writer, on a persistent volume.
pub const AUDIT: &str = "audit";
/// The target that issues tokens and serves the JWKS.
pub const AUTH: &str = "auth";

/// Port of every target's API, `/healthz`, `/readyz` and `/metrics`.
pub const PUBLIC_PORT: i32 = 8080;
/// Every target's admin listener: the gateway's faces the admin hostname; the others' carry
/// their admin API to the gateway only.
pub const ADMIN_PORT: i32 = 8081;
pub const HEALTHZ: &str = "/healthz";
pub const READYZ: &str = "/readyz";
pub const METRICS: &str = "/metrics";
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// `protostar serve --target NAME`.
pub fn serve_args(target: &str) -> Vec<String> {
    vec!["serve".into(), "--target".into(), target.into()]
}

/// `protostar migrate` (every target's schema, the binary's default): applies the migrations of
/// this release, then exits.
pub fn migrate_args() -> Vec<String> {
    vec!["migrate".into()]
}

/// `protostar job NAME`: runs one periodic job, then exits.
pub fn job_args(name: &str) -> Vec<String> {
    vec!["job".into(), name.into()]
}

/// Top-level configuration keys the binary accepts; it refuses to start on any other
/// `PROTOSTAR_*` key (a misspelling guard). Mirrors `KNOWN_KEYS` in
/// `services/protostar/src/serve.rs`, which a test compares with this list. Keys below them are
/// checked by their section (`chat.*`, `ai.*`, ... refuse unknown fields too); a test reads
/// those sections' fields from `services/` and checks every nested key the operator renders.
pub const KNOWN_TOP_LEVEL_KEYS: [&str; 17] = [
    "public_addr",
    "admin_addr",
    "body_limit_bytes",
    "drain_secs",
    "data_dir",
    "database",
    "broker",
    "redis",
    "blob",
    "auth",
    "log",
    "upstreams",
    "ai",
    "audit",
    "noti",
    "chat",
    "gateway",
];

/// The top-level key of a `PROTOSTAR_*` variable: `PROTOSTAR_DATABASE__URL_FILE` → `database`.
pub fn top_level_key(var: &str) -> Option<String> {
    let rest = var.strip_prefix("PROTOSTAR_")?;
    let rest = rest.strip_suffix("_FILE").unwrap_or(rest);
    let first = rest.split("__").next()?;
    (!first.is_empty()).then(|| first.to_ascii_lowercase())
}

/// Whether the binary accepts a variable (see `KNOWN_TOP_LEVEL_KEYS`).
pub fn accepts(var: &str) -> bool {
    top_level_key(var).is_some_and(|k| KNOWN_TOP_LEVEL_KEYS.contains(&k.as_str()))
}

/// Where the binary keeps per-process state (`data_dir`); an emptyDir in Kubernetes.
pub const DATA_DIR: &str = "/var/lib/protostar";

/// Configuration keys: `PROTOSTAR_` + nested keys joined with `__`; a key given as a file path
/// takes the suffix `_FILE` (Secrets are mounted as files, never passed as values).
pub mod env {
    pub const PUBLIC_ADDR: &str = "PROTOSTAR_PUBLIC_ADDR";
    pub const ADMIN_ADDR: &str = "PROTOSTAR_ADMIN_ADDR";
    pub const PUBLIC_ADDR_VALUE: &str = "0.0.0.0:8080";
    pub const ADMIN_ADDR_VALUE: &str = "0.0.0.0:8081";
    pub const DATABASE_URL: &str = "PROTOSTAR_DATABASE__URL";
    pub const BROKER_URL: &str = "PROTOSTAR_BROKER__URL";
    pub const REDIS_URL: &str = "PROTOSTAR_REDIS__URL";
    pub const BLOB_KIND: &str = "PROTOSTAR_BLOB__KIND";
    pub const BLOB_ENDPOINT: &str = "PROTOSTAR_BLOB__ENDPOINT";
    pub const BLOB_BUCKET: &str = "PROTOSTAR_BLOB__BUCKET";
    pub const BLOB_REGION: &str = "PROTOSTAR_BLOB__REGION";
    pub const BLOB_ACCESS_KEY_ID: &str = "PROTOSTAR_BLOB__ACCESS_KEY_ID";
    pub const BLOB_SECRET_ACCESS_KEY: &str = "PROTOSTAR_BLOB__SECRET_ACCESS_KEY";
    pub const AUTH_JWKS_URL: &str = "PROTOSTAR_AUTH__JWKS_URL";
    pub const AUTH_ISSUER: &str = "PROTOSTAR_AUTH__ISSUER";
    pub const AUTH_AUDIENCE: &str = "PROTOSTAR_AUTH__AUDIENCE";
    /// Already a file path: PEM file of the Ed25519 signing keys, newest first.
    pub const AUTH_SIGNING_KEYS_FILE: &str = "PROTOSTAR_AUTH__SIGNING_KEYS_FILE";
    pub const LOG_FILTER: &str = "PROTOSTAR_LOG__FILTER";
    pub const DATA_DIR: &str = "PROTOSTAR_DATA_DIR";
    /// Off in Kubernetes: the migration Job migrates before a release serves.
    pub const DATABASE_MIGRATE_ON_START: &str = "PROTOSTAR_DATABASE__MIGRATE_ON_START";
    /// `PROTOSTAR_UPSTREAMS__<TARGET>` = `http://<service>:8080`, for the gateway in split mode.
    pub const UPSTREAMS_PREFIX: &str = "PROTOSTAR_UPSTREAMS__";
    /// `chat.quotas.*` (read by chat; `serve` checks the `chat` section in every process).
    pub const CHAT_QUOTAS_PREFIX: &str = "PROTOSTAR_CHAT__QUOTAS__";
    pub const CHAT_MAX_UPLOAD_BYTES: &str = "PROTOSTAR_CHAT__CONTENT__MAX_UPLOAD_BYTES";
    /// The gateway's limit on upload bodies, kept above chat's.
    pub const GATEWAY_MAX_UPLOAD_BYTES: &str = "PROTOSTAR_GATEWAY__MAX_UPLOAD_BYTES";
    /// Proxies whose `X-Forwarded-For` names the client, per process.
    pub const CHAT_TRUSTED_PROXIES: &str = "PROTOSTAR_CHAT__TRUSTED_PROXIES";
    pub const AUTH_TRUSTED_PROXIES: &str = "PROTOSTAR_AUTH__TRUSTED_PROXIES";
    pub const GATEWAY_TRUSTED_PROXIES: &str = "PROTOSTAR_GATEWAY__TRUSTED_PROXIES";
    /// `ai.generation.order` (comma-separated) and `ai.generation.<model>.*`.
    pub const AI_GENERATION_ORDER: &str = "PROTOSTAR_AI__GENERATION__ORDER";
    pub const AI_GENERATION_PREFIX: &str = "PROTOSTAR_AI__GENERATION__";
    /// `ai.embedding.*` (`provider` selects the variant).
    pub const AI_EMBEDDING_PREFIX: &str = "PROTOSTAR_AI__EMBEDDING__";
    /// noti reads the instance's Discord webhook as the admins' alert channel
    /// (`noti.discord.admin_webhook_url`); owners set their own webhooks in the app.
    pub const DISCORD_WEBHOOK_URL: &str = "PROTOSTAR_NOTI__DISCORD__ADMIN_WEBHOOK_URL";
    pub const SMTP_HOST: &str = "PROTOSTAR_NOTI__SMTP__HOST";
    pub const SMTP_PORT: &str = "PROTOSTAR_NOTI__SMTP__PORT";
    pub const SMTP_FROM: &str = "PROTOSTAR_NOTI__SMTP__FROM";
    pub const SMTP_USERNAME: &str = "PROTOSTAR_NOTI__SMTP__USERNAME";
    pub const SMTP_PASSWORD: &str = "PROTOSTAR_NOTI__SMTP__PASSWORD";

    /// The `_FILE` form of a key: its value is a path to a file holding the value.
    pub fn file(key: &str) -> String {
        format!("{key}_FILE")
    }

    /// `PROTOSTAR_UPSTREAMS__CHAT__PUBLIC` for `chat`'s public listener (`listener` is
    /// `public` or `admin`).
    pub fn upstream(target: &str, listener: &str) -> String {
        format!(
            "{UPSTREAMS_PREFIX}{}__{}",
            target.to_ascii_uppercase(),
            listener.to_ascii_uppercase()
        )
    }
}

/// Whose `X-Forwarded-For` a process believes, and the key that says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxies {
    /// Behind the in-cluster gateway: `spec.network.trustedProxies`.
    Gateway(&'static str),
    /// Behind the Gateway API data plane or an edge proxy: `spec.network.gatewayTrustedProxies`.
    Edge(&'static str),
}

/// What each process needs besides the shared configuration, so that a Secret is mounted only
/// where it is used (the gateway never sees the database password, only auth sees signing keys)
/// and a target's own settings reach only that target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Needs {
    pub database: bool,
    pub broker: bool,
    pub blob: bool,
    pub signing_keys: bool,
    /// `spec.models`: `ai.generation`, `ai.embedding` and their API key files.
    pub models: bool,
    pub notifications: bool,
    /// Every target's listeners (the gateway).
    pub upstreams: bool,
    /// Targets whose internal API (`/internal/...` on the admin listener) this one calls:
    /// `upstreams.<t>.admin` is rendered, and the NetworkPolicy lets it reach that port.
    pub calls: &'static [&'static str],
    /// `spec.quotas`: `chat.quotas.*` and `chat.content.max_upload_bytes`.
    pub quotas: bool,
    pub trusted_proxies: Option<Proxies>,
}

/// The needs of a target; unknown names need nothing.
pub fn needs(target: &str) -> Needs {
    let n = Needs::default();
    match target {
        "gateway" => Needs {
            upstreams: true,
            trusted_proxies: Some(Proxies::Edge(env::GATEWAY_TRUSTED_PROXIES)),
            ..n
        },
        "auth" => Needs {
            database: true,
            broker: true,
            signing_keys: true,
            trusted_proxies: Some(Proxies::Gateway(env::AUTH_TRUSTED_PROXIES)),
            ..n
        },
        // user's export asks chat for the account's chat data.
        "user" => Needs {
            database: true,
            broker: true,
            calls: &["chat"],
            ..n
        },
        "psych" => Needs {
            database: true,
            broker: true,
            ..n
        },
        "chat" => Needs {
            database: true,
            broker: true,
            blob: true,
            calls: &["ai"],
            quotas: true,
            trusted_proxies: Some(Proxies::Gateway(env::CHAT_TRUSTED_PROXIES)),
            ..n
        },
        "ai" => Needs {
            database: true,
            broker: true,
            blob: true,
            models: true,
            ..n
        },
        "noti" => Needs {
            database: true,
            broker: true,
            notifications: true,
            ..n
        },
        "audit" => Needs { broker: true, ..n },
        _ => n,
    }
}

/// The migration Job only needs the database.
pub const MIGRATE_NEEDS: Needs = Needs {
    database: true,
    broker: false,
    blob: false,
    signing_keys: false,
    models: false,
    notifications: false,
    upstreams: false,
    calls: &[],
    quotas: false,
    trusted_proxies: None,
};

/// Periodic jobs (`noti-digest`) may touch the data stores and send notifications; model keys
/// stay in the ai Deployment.
pub const JOB_NEEDS: Needs = Needs {
    database: true,
    broker: true,
    blob: true,
    signing_keys: false,
    models: false,
    notifications: true,
    upstreams: false,
    calls: &[],
    quotas: false,
    trusted_proxies: None,
};
