//! Signing keys: Ed25519, named by a thumbprint `kid`, published as a JWKS.
//!
//! Two sources. With `auth.signing_keys` (a PEM file of PKCS#8 keys, newest first, which the
//! operator generates as a Kubernetes Secret), the first key signs and all verify; rotating is
//! adding a key on top. Otherwise the keys live in this service's schema, the private half
//! encrypted with ChaCha20-Poly1305 under the key encryption key, and the service rotates them
//! itself: a new key is published `key_publish_ahead_secs` before it signs (so every verifier's
//! cache has it by then), and a retired key stays published until the last token it signed
//! has expired.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, Duration as Span, Utc};
use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyPairParameters, OctetKeyPairType, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kernel::db::Database;
use kernel::tokens::{AuthConfig, Claims};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::RwLock;

const NONCE_LEN: usize = 12;
/// Retired keys are deleted this long after their last token expired.
const KEEP_AFTER_EXPIRY: Span = Span::days(1);

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{key}: {message}")]
    Config { key: &'static str, message: String },
    #[error("signing key {0} cannot be decrypted (wrong key encryption key?)")]
    Decrypt(String),
    #[error("no signing key is active yet")]
    NoSigner,
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
    #[error("database: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("key encryption key file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

struct LoadedKey {
    kid: String,
    signs_from: DateTime<Utc>,
    encoding: EncodingKey,
    public: [u8; 32],
}

enum Source {
    /// From the secret file; never changes while the process runs.
    File,
    Database {
        db: Database,
        cipher: Box<ChaCha20Poly1305>,
    },
}

pub struct KeyRing {
    source: Source,
    /// Sorted by `signs_from`, oldest first.
    keys: RwLock<Vec<LoadedKey>>,
    /// How long a token lives plus the verifiers' clock leeway: how long a key must stay
    /// published after it stopped signing.
    token_lifetime: Span,
    rotation: Span,
    publish_ahead: Span,
    /// The process's in-memory key set, when verifiers read keys from it (`--target all`).
    publish_to: Option<Arc<RwLock<JwkSet>>>,
}

/// The `kid` of a public key: the start of its SHA-256, so every process names a key alike.
pub fn kid_of(public: &[u8; 32]) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(public)[..12])
}

fn loaded(seed: &[u8; 32], signs_from: DateTime<Utc>) -> Result<LoadedKey, KeyError> {
    let signing = SigningKey::from_bytes(seed);
    let der = signing.to_pkcs8_der().map_err(|e| KeyError::Config {
        key: "auth.signing_keys",
        message: e.to_string(),
    })?;
    let public = signing.verifying_key().to_bytes();
    Ok(LoadedKey {
        kid: kid_of(&public),
        signs_from,
        encoding: EncodingKey::from_ed_der(der.as_bytes()),
        public,
    })
}

/// Reads a PEM bundle of PKCS#8 Ed25519 keys, newest first.
fn parse_pem_bundle(text: &str) -> Result<Vec<[u8; 32]>, KeyError> {
    let bad = |message: String| KeyError::Config {
        key: "auth.signing_keys",
        message,
    };
    let mut seeds = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN PRIVATE KEY-----") {
        let body_start = start + "-----BEGIN PRIVATE KEY-----".len();
        let Some(len) = rest[body_start..].find("-----END PRIVATE KEY-----") else {
            return Err(bad("a PEM block has no END line".into()));
        };
        let b64: String = rest[body_start..body_start + len]
            .split_whitespace()
            .collect();
        let der = STANDARD
            .decode(b64)
            .map_err(|e| bad(format!("key {} is not base64: {e}", seeds.len() + 1)))?;
        let key = SigningKey::from_pkcs8_der(&der).map_err(|e| {
            bad(format!(
                "key {} is not a PKCS#8 Ed25519 key: {e}",
                seeds.len() + 1
            ))
        })?;
        seeds.push(key.to_bytes());
        rest = &rest[body_start + len..];
    }
    if seeds.is_empty() {
        return Err(bad("holds no `BEGIN PRIVATE KEY` block".into()));
    }
    Ok(seeds)
}

/// The key encryption key: configured, or kept in the data dir on a single machine.
fn key_encryption_key(config: &AuthConfig, data_dir: &Path) -> Result<[u8; 32], KeyError> {
    let decode = |text: &str| -> Result<[u8; 32], KeyError> {
        STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .ok_or_else(|| KeyError::Config {
                key: "auth.key_encryption_key",
                message: "must be 32 bytes in base64".into(),
            })
    };
    if let Some(k) = &config.key_encryption_key {
        return decode(k.expose());
    }
    let path = data_dir.join("auth").join("key-encryption-key");
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => decode(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let key: [u8; 32] = rand::random();
            write_private(&path, &STANDARD.encode(key)).map_err(io)?;
            tracing::warn!(path = %path.display(), "no auth.key_encryption_key configured; made one in the data dir");
            Ok(key)
        }
        Err(e) => Err(io(e)),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

/// A configured number of seconds as a duration, capped at a century so that sums and
/// timestamps built from it cannot overflow.
pub(crate) fn span_secs(secs: u64) -> Span {
    const CENTURY: u64 = 100 * 366 * 24 * 3600;
    Span::seconds(secs.min(CENTURY) as i64)
}

impl KeyRing {
    pub fn new(
        config: &AuthConfig,
        data_dir: &Path,
        db: Database,
        publish_to: Option<Arc<RwLock<JwkSet>>>,
    ) -> Result<Self, KeyError> {
        let (source, keys) = match &config.signing_keys {
            Some(pem) => {
                let seeds = parse_pem_bundle(pem.expose())?;
                // Newest first in the file: the first one signs. Older keys get older starts.
                let now = Utc::now();
                let keys = seeds
                    .iter()
                    .enumerate()
                    .rev()
                    .map(|(i, seed)| loaded(seed, now - Span::seconds(i as i64 + 1)))
                    .collect::<Result<Vec<_>, _>>()?;
                (Source::File, keys)
            }
            None => {
                let kek = key_encryption_key(config, data_dir)?;
                let cipher = Box::new(ChaCha20Poly1305::new(&Key::from(kek)));
                (Source::Database { db, cipher }, Vec::new())
            }
        };
        Ok(Self {
            source,
            keys: RwLock::new(keys),
            token_lifetime: span_secs(config.access_ttl_secs) + span_secs(config.leeway_secs),
            rotation: span_secs(config.key_rotation_secs),
            publish_ahead: span_secs(config.key_publish_ahead_secs),
            publish_to,
        })
    }

    /// Rotates when due, reloads the keys and republishes them. The background task calls it
    /// periodically; several auth processes may run it at once (an advisory lock orders them).
    pub async fn refresh(&self) -> Result<(), KeyError> {
        if let Source::Database { db, .. } = &self.source {
            let mut tx = db.begin().await?;
            lock(&mut tx).await?;
            let newest: Option<DateTime<Utc>> =
                sqlx::query_scalar("SELECT max(signs_from) FROM signing_keys")
                    .fetch_one(&mut *tx)
                    .await?;
            let now = Utc::now();
            match newest {
                None => self.insert_key(&mut tx, now).await?,
                Some(t) if t + self.rotation <= now => {
                    self.insert_key(&mut tx, now + self.publish_ahead).await?
                }
                Some(_) => {}
            }
            tx.commit().await?;
            self.load().await?;
        }
        self.publish().await;
        Ok(())
    }

    /// Makes a new key now (an admin who suspects a leak, or a test), publishing it ahead as
    /// usual. Returns its kid and when it starts signing.
    pub async fn rotate_now(&self) -> Result<Option<(String, DateTime<Utc>)>, KeyError> {
        let Source::Database { db, .. } = &self.source else {
            return Ok(None);
        };
        let mut tx = db.begin().await?;
        lock(&mut tx).await?;
        let signs_from = Utc::now() + self.publish_ahead;
        let kid = self.insert_key_returning(&mut tx, signs_from).await?;
        tx.commit().await?;
        self.load().await?;
        self.publish().await;
        Ok(Some((kid, signs_from)))
    }

    async fn insert_key(
        &self,
        tx: &mut sqlx::PgConnection,
        signs_from: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        self.insert_key_returning(tx, signs_from).await.map(|_| ())
    }

    async fn insert_key_returning(
        &self,
        tx: &mut sqlx::PgConnection,
        signs_from: DateTime<Utc>,
    ) -> Result<String, KeyError> {
        let Source::Database { cipher, .. } = &self.source else {
            return Err(KeyError::NoSigner);
        };
        let seed: [u8; 32] = rand::random();
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let kid = kid_of(&public);
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &seed,
                    aad: kid.as_bytes(),
                },
            )
            .map_err(|_| KeyError::Decrypt(kid.clone()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        sqlx::query("INSERT INTO signing_keys (kid, signs_from, private_key, public_key) VALUES ($1, $2, $3, $4)")
            .bind(&kid)
            .bind(signs_from)
            .bind(stored)
            .bind(public.to_vec())
            .execute(&mut *tx)
            .await?;
        tracing::info!(kid = %kid, signs_from = %signs_from, "new signing key");
        Ok(kid)
    }

    async fn load(&self) -> Result<(), KeyError> {
        let Source::Database { db, cipher } = &self.source else {
            return Ok(());
        };
        let rows: Vec<(String, DateTime<Utc>, Vec<u8>)> = sqlx::query_as(
            "SELECT kid, signs_from, private_key FROM signing_keys ORDER BY signs_from",
        )
        .fetch_all(db.pool())
        .await?;
        let mut keys = Vec::with_capacity(rows.len());
        for (kid, signs_from, stored) in rows {
            if stored.len() <= NONCE_LEN {
                return Err(KeyError::Decrypt(kid));
            }
            let (nonce, sealed) = stored.split_at(NONCE_LEN);
            let nonce: [u8; NONCE_LEN] = nonce
                .try_into()
                .map_err(|_| KeyError::Decrypt(kid.clone()))?;
            let seed = cipher
                .decrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: sealed,
                        aad: kid.as_bytes(),
                    },
                )
                .ok()
                .and_then(|s| <[u8; 32]>::try_from(s.as_slice()).ok())
                .ok_or_else(|| KeyError::Decrypt(kid.clone()))?;
            keys.push(loaded(&seed, signs_from)?);
        }
        // Keys whose last token expired long ago go for good.
        let now = Utc::now();
        let dead: Vec<String> = keys
            .windows(2)
            .filter(|w| w[1].signs_from + self.token_lifetime + KEEP_AFTER_EXPIRY < now)
            .map(|w| w[0].kid.clone())
            .collect();
        if !dead.is_empty() {
            sqlx::query("DELETE FROM signing_keys WHERE kid = ANY($1)")
                .bind(&dead)
                .execute(db.pool())
                .await?;
        }
        *self.keys.write().await = keys;
        Ok(())
    }

    /// Hands the current public keys to this process's verifiers (when it publishes in process).
    pub async fn publish(&self) {
        if let Some(target) = &self.publish_to {
            let set = self.jwks().await;
            *target.write().await = set;
        }
    }

    /// Whether a key is ready to sign.
    pub async fn has_signer(&self) -> bool {
        let now = Utc::now();
        self.keys.read().await.iter().any(|k| k.signs_from <= now)
    }

    /// Signs with the newest key whose time has come.
    pub async fn sign(&self, claims: &Claims) -> Result<String, KeyError> {
        let now = Utc::now();
        let keys = self.keys.read().await;
        let key = keys
            .iter()
            .rev()
            .find(|k| k.signs_from <= now)
            .ok_or(KeyError::NoSigner)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The published keys: the signer, the ones waiting to sign, and the retired ones whose
    /// tokens may still be alive.
    pub async fn jwks(&self) -> JwkSet {
        let now = Utc::now();
        let keys = self.keys.read().await;
        let file = matches!(self.source, Source::File);
        let published = keys.iter().enumerate().filter(|(i, _)| {
            file || match keys.get(i + 1) {
                None => true,
                Some(next) => next.signs_from > now || next.signs_from + self.token_lifetime > now,
            }
        });
        JwkSet {
            keys: published.map(|(_, k)| jwk(k)).collect(),
        }
    }
}

async fn lock(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('protostar.auth.signing_keys'))")
        .execute(&mut *tx)
        .await
        .map(|_| ())
}

fn jwk(k: &LoadedKey) -> Jwk {
    Jwk {
        common: CommonParameters {
            key_id: Some(k.kid.clone()),
            key_algorithm: Some(KeyAlgorithm::EdDSA),
            public_key_use: Some(PublicKeyUse::Signature),
            ..Default::default()
        },
        algorithm: AlgorithmParameters::OctetKeyPair(OctetKeyPairParameters {
            key_type: OctetKeyPairType::OctetKeyPair,
            curve: EllipticCurve::Ed25519,
            x: URL_SAFE_NO_PAD.encode(k.public),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem(seed: &[u8; 32]) -> String {
        let der = SigningKey::from_bytes(seed).to_pkcs8_der().unwrap();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(der.as_bytes())
        )
    }

    #[test]
    fn pem_bundles_keep_their_order() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let seeds = parse_pem_bundle(&format!("{}\n{}", pem(&a), pem(&b))).unwrap();
        assert_eq!(seeds, vec![a, b]);
        assert!(parse_pem_bundle("").is_err());
        assert!(
            parse_pem_bundle("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(parse_pem_bundle("-----BEGIN PRIVATE KEY-----\nAAAA").is_err());
    }

    #[test]
    fn kids_are_stable_thumbprints() {
        let p = SigningKey::from_bytes(&[7u8; 32])
            .verifying_key()
            .to_bytes();
        assert_eq!(kid_of(&p), kid_of(&p));
        let q = SigningKey::from_bytes(&[8u8; 32])
            .verifying_key()
            .to_bytes();
        assert_ne!(kid_of(&p), kid_of(&q));
    }
}
