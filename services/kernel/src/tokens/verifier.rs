//! Verifying access tokens: EdDSA (Ed25519) JWTs checked against the auth service's JWKS.
//!
//! Keys are cached by `kid`. A token with an unknown `kid` triggers one refresh (a new signing
//! key after rotation), but at most once per `refresh_floor`, so a flood of made-up `kid`s
//! cannot turn into a flood of JWKS fetches. Only EdDSA is accepted: `alg: none`, HMAC with the
//! public key as secret and every other algorithm fail before any key is looked at.

use super::claims::Claims;
use crate::Secret;
use futures::future::BoxFuture;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, RwLock};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Where the auth service publishes its keys; unset under `--target all`, where the auth
    /// service hands them over in-process.
    #[serde(default)]
    pub jwks_url: Option<String>,
    #[serde(default = "default_name")]
    pub issuer: String,
    #[serde(default = "default_name")]
    pub audience: String,
    /// Allowed clock difference between machines, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The auth service's signing keys (its own concern; listed so that config validation knows
    /// the key).
    #[serde(default)]
    pub signing_keys: Option<Secret<String>>,
    /// Lifetime of an access token (the contract caps it at 15 minutes).
    #[serde(default = "default_access_ttl")]
    pub access_ttl_secs: u64,
    /// Lifetime of a refresh token (and of its family's newest member).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_ttl_secs: u64,
    /// Lifetime of a password-reset token.
    #[serde(default = "default_reset_ttl")]
    pub password_reset_ttl_secs: u64,
    /// 32 bytes, base64: encrypts the signing keys the auth service stores in its schema. Unset
    /// on a single machine, where the auth service keeps one in its data dir.
    #[serde(default)]
    pub key_encryption_key: Option<Secret<String>>,
    /// How old the signing key may get before the auth service makes a new one.
    #[serde(default = "default_rotation")]
    pub key_rotation_secs: u64,
    /// A new key is published this long before it signs, so every verifier's cache has it.
    #[serde(default = "default_publish_ahead")]
    pub key_publish_ahead_secs: u64,
    /// argon2id cost: memory in KiB and passes (OWASP's 19 MiB, 2 passes by default).
    #[serde(default = "default_argon2_memory")]
    pub argon2_memory_kib: u32,
    #[serde(default = "default_argon2_iterations")]
    pub argon2_iterations: u32,
    /// Proxies (addresses or CIDR networks, comma-separated) whose `X-Forwarded-For` names the
    /// client for login backoff and audit; unset, the socket's peer is the client.
    #[serde(default)]
    pub trusted_proxies: Option<String>,
}

fn default_name() -> String {
    "protostar".into()
}
fn default_leeway() -> u64 {
    30
}
fn default_access_ttl() -> u64 {
    900
}
fn default_refresh_ttl() -> u64 {
    30 * 24 * 3600
}
fn default_reset_ttl() -> u64 {
    3600
}
fn default_rotation() -> u64 {
    7 * 24 * 3600
}
fn default_publish_ahead() -> u64 {
    120
}
fn default_argon2_memory() -> u32 {
    19 * 1024
}
fn default_argon2_iterations() -> u32 {
    2
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_url: None,
            issuer: default_name(),
            audience: default_name(),
            leeway_secs: default_leeway(),
            signing_keys: None,
            access_ttl_secs: default_access_ttl(),
            refresh_ttl_secs: default_refresh_ttl(),
            password_reset_ttl_secs: default_reset_ttl(),
            key_encryption_key: None,
            key_rotation_secs: default_rotation(),
            key_publish_ahead_secs: default_publish_ahead(),
            argon2_memory_kib: default_argon2_memory(),
            argon2_iterations: default_argon2_iterations(),
            trusted_proxies: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("only EdDSA-signed tokens are accepted")]
    WrongAlgorithm,
    #[error("the token names no key")]
    MissingKid,
    #[error("the token's key is unknown")]
    UnknownKid,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by someone else or for someone else")]
    WrongIssuerOrAudience,
    #[error("the token's signature or claims are invalid")]
    Invalid,
    #[error("the signing keys cannot be fetched: {0}")]
    KeysUnavailable(String),
}

/// Where keys come from.
pub trait KeySource: Send + Sync + 'static {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, TokenError>>;

    /// Whether a fetch costs nothing worth throttling (keys handed over in-process): then an
    /// unknown kid always looks again, so a key published a moment ago is never refused.
    fn is_local(&self) -> bool {
        false
    }
}

/// The JWKS document over HTTP.
pub struct HttpKeySource {
    client: reqwest::Client,
    url: String,
}

impl HttpKeySource {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            client: crate::http::client(Duration::from_secs(5)),
            url: url.into(),
        }
    }
}

impl KeySource for HttpKeySource {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, TokenError>> {
        Box::pin(async move {
            let res = self
                .client
                .get(&self.url)
                .send()
                .await
                .map_err(|e| TokenError::KeysUnavailable(e.to_string()))?;
            if !res.status().is_success() {
                return Err(TokenError::KeysUnavailable(format!(
                    "{} answered {}",
                    self.url,
                    res.status()
                )));
            }
            res.json::<JwkSet>()
                .await
                .map_err(|e| TokenError::KeysUnavailable(e.to_string()))
        })
    }
}

/// Keys handed over in-process (by the auth service under `--target all`, or a test).
pub struct StaticKeySource(pub Arc<RwLock<JwkSet>>);

impl KeySource for StaticKeySource {
    fn fetch(&self) -> BoxFuture<'_, Result<JwkSet, TokenError>> {
        Box::pin(async move { Ok(self.0.read().await.clone()) })
    }

    fn is_local(&self) -> bool {
        true
    }
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// Tokens already verified, by their full text, so that the many requests one widget makes
/// with one token cost a map lookup instead of an Ed25519 verification each. A hit is the same
/// string, signature included, so it proves nothing new is being trusted; expiry is checked on
/// every hit, and the map is emptied whenever the key set changes (a retired key's tokens stop
/// verifying as they would uncached).
struct Verified {
    tokens: std::sync::Mutex<HashMap<Box<str>, Claims>>,
}

/// Past this many tokens the map starts over; an unbounded map would let a client that mints
/// guest tokens in a loop grow our memory.
const VERIFIED_CAP: usize = 20_000;

impl Verified {
    fn get(&self, token: &str) -> Option<Claims> {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }

    fn put(&self, token: &str, claims: &Claims) {
        let mut map = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= VERIFIED_CAP {
            map.clear();
        }
        map.insert(token.into(), claims.clone());
    }

    fn forget(&self, token: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    fn clear(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

pub struct TokenVerifier {
    source: Box<dyn KeySource>,
    verified: Verified,
    cache: RwLock<HashMap<String, DecodingKey>>,
    refresh: Mutex<Cache>,
    validation: Validation,
    refresh_floor: Duration,
    max_age: Duration,
}

impl TokenVerifier {
    pub fn new(source: impl KeySource, config: &AuthConfig) -> Self {
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        Self {
            source: Box::new(source),
            verified: Verified {
                tokens: std::sync::Mutex::new(HashMap::new()),
            },
            cache: RwLock::new(HashMap::new()),
            refresh: Mutex::new(Cache {
                keys: HashMap::new(),
                fetched: None,
            }),
            validation,
            refresh_floor: Duration::from_secs(10),
            max_age: Duration::from_secs(300),
        }
    }

    /// A verifier whose unknown-kid refresh is not throttled; for tests of rotation.
    pub fn with_refresh_floor(mut self, floor: Duration) -> Self {
        self.refresh_floor = floor;
        self
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        if let Some(claims) = self.verified.get(token) {
            let now = chrono::Utc::now().timestamp();
            if claims
                .exp
                .saturating_add(i64::try_from(self.validation.leeway).unwrap_or(0))
                >= now
            {
                return Ok(claims);
            }
            self.verified.forget(token);
            return Err(TokenError::Expired);
        }
        let claims = self.verify_signed(token).await?;
        self.verified.put(token, &claims);
        Ok(claims)
    }

    async fn verify_signed(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::WrongAlgorithm);
        }
        let kid = header.kid.ok_or(TokenError::MissingKid)?;
        let key = self.key(&kid).await?;
        decode::<Claims>(token, &key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                match e.kind() {
                    K::ExpiredSignature => TokenError::Expired,
                    K::ImmatureSignature => TokenError::NotYetValid,
                    K::InvalidAudience | K::InvalidIssuer => TokenError::WrongIssuerOrAudience,
                    K::InvalidAlgorithm => TokenError::WrongAlgorithm,
                    K::InvalidToken | K::Base64(_) | K::Json(_) | K::Utf8(_) => {
                        TokenError::Malformed
                    }
                    _ => TokenError::Invalid,
                }
            })
    }

    /// A key gone from the set takes its tokens' cached verdicts with it.
    fn forget_if_retired(
        &self,
        old: &HashMap<String, DecodingKey>,
        new: &HashMap<String, DecodingKey>,
    ) {
        if old.keys().any(|kid| !new.contains_key(kid)) {
            self.verified.clear();
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(k) = self.cache.read().await.get(kid) {
            return Ok(k.clone());
        }
        let mut state = self.refresh.lock().await;
        // Another request may have refreshed while we waited for the lock.
        if let Some(k) = self.cache.read().await.get(kid) {
            return Ok(k.clone());
        }
        let may_refresh = self.source.is_local()
            || state
                .fetched
                .is_none_or(|t| t.elapsed() >= self.refresh_floor);
        if may_refresh {
            let set = self.source.fetch().await?;
            state.keys = decoding_keys(&set);
            state.fetched = Some(Instant::now());
            let mut cache = self.cache.write().await;
            self.forget_if_retired(&cache, &state.keys);
            *cache = state.keys.clone();
        }
        state.keys.get(kid).cloned().ok_or(TokenError::UnknownKid)
    }

    /// Drops cached keys older than the maximum age, so a retired key stops verifying; call it
    /// periodically (the binary does, every minute).
    pub async fn expire_stale(&self) {
        let state = self.refresh.lock().await;
        if state.fetched.is_some_and(|t| t.elapsed() > self.max_age) {
            drop(state);
            if let Ok(set) = self.source.fetch().await {
                let keys = decoding_keys(&set);
                let mut state = self.refresh.lock().await;
                state.keys = keys.clone();
                state.fetched = Some(Instant::now());
                let mut cache = self.cache.write().await;
                self.forget_if_retired(&cache, &keys);
                *cache = keys;
            }
        }
    }
}

fn decoding_keys(set: &JwkSet) -> HashMap<String, DecodingKey> {
    set.keys
        .iter()
        .filter(|k| matches!(k.algorithm, AlgorithmParameters::OctetKeyPair(_)))
        .filter_map(|k| {
            let kid = k.common.key_id.clone()?;
            DecodingKey::from_jwk(k).ok().map(|d| (kid, d))
        })
        .collect()
}
