//! Object storage for the untouched originals of uploads, so that an index can always be rebuilt
//! from them. One trait, two stores: S3 (MinIO in production; any S3 API) and a local folder
//! for a single machine.

mod local;
mod s3;

pub use local::LocalStore;
pub use s3::S3Store;

use crate::Secret;
use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("no object at `{0}`")]
    NotFound(String),
    #[error("`{0}` is not a valid object key")]
    InvalidKey(String),
    #[error("object storage: {0}")]
    Backend(String),
}

#[derive(Debug, Clone)]
pub struct Blob {
    pub bytes: Bytes,
    pub content_type: String,
}

pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` at `key`, replacing what was there; durable when it returns.
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>>;
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Blob, BlobError>>;
    /// Deleting what is not there succeeds: callers retry deletions.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>>;
    /// Keys under `prefix`, for cleaning up everything an account owns.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>>;
    /// For `/readyz`.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

pub type SharedBlobStore = Arc<dyn BlobStore>;

/// Keys are paths of plain segments (`owner/document/original`): no empty or dot segments, so
/// a key can never leave the local store's folder, and no characters S3 treats specially.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 1024
        && key.split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.=".contains(&b))
        })
}

pub(crate) fn check_key(key: &str) -> Result<(), BlobError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(BlobError::InvalidKey(key.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BlobKind {
    #[default]
    Local,
    S3,
}

/// `blob.kind = "local"` needs `blob.path`; `"s3"` needs `blob.bucket` and credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobConfig {
    #[serde(default)]
    pub kind: BlobKind,
    #[serde(default)]
    pub path: Option<PathBuf>,
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub bucket: Option<String>,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub access_key_id: Option<Secret<String>>,
    #[serde(default)]
    pub secret_access_key: Option<Secret<String>>,
    /// MinIO and most self-hosted servers want `http://host/bucket/key`.
    #[serde(default = "yes")]
    pub path_style: bool,
    /// Create the bucket at start if it is missing (single machine, tests).
    #[serde(default)]
    pub create_bucket: bool,
}

fn default_region() -> String {
    "us-east-1".into()
}
fn yes() -> bool {
    true
}

impl Default for BlobConfig {
    fn default() -> Self {
        Self {
            kind: BlobKind::Local,
            path: None,
            endpoint: None,
            bucket: None,
            region: default_region(),
            access_key_id: None,
            secret_access_key: None,
            path_style: true,
            create_bucket: false,
        }
    }
}

impl BlobConfig {
    /// The configured store; errors name the missing key.
    pub async fn open(
        &self,
        default_local: Option<PathBuf>,
    ) -> Result<SharedBlobStore, crate::ConfigError> {
        use crate::ConfigError;
        match self.kind {
            BlobKind::Local => {
                let path = self.path.clone().or(default_local).ok_or_else(|| {
                    ConfigError::key("blob.path", "is required when blob.kind is local")
                })?;
                let store = LocalStore::open(path)
                    .map_err(|e| ConfigError::key("blob.path", e.to_string()))?;
                Ok(Arc::new(store))
            }
            BlobKind::S3 => {
                let mut missing = Vec::new();
                let bucket = self.bucket.clone().unwrap_or_else(|| {
                    missing.push(ConfigError::key(
                        "blob.bucket",
                        "is required when blob.kind is s3",
                    ));
                    String::new()
                });
                let ak = self.access_key_id.clone().unwrap_or_else(|| {
                    missing.push(ConfigError::key(
                        "blob.access_key_id",
                        "is required when blob.kind is s3",
                    ));
                    Secret::new(String::new())
                });
                let sk = self.secret_access_key.clone().unwrap_or_else(|| {
                    missing.push(ConfigError::key(
                        "blob.secret_access_key",
                        "is required when blob.kind is s3",
                    ));
                    Secret::new(String::new())
                });
                ConfigError::collect(missing)?;
                let store = S3Store::new(s3::S3Options {
                    endpoint: self.endpoint.clone(),
                    bucket,
                    region: self.region.clone(),
                    access_key_id: ak,
                    secret_access_key: sk,
                    path_style: self.path_style,
                });
                if self.create_bucket {
                    store
                        .ensure_bucket()
                        .await
                        .map_err(|e| ConfigError::key("blob.bucket", e.to_string()))?;
                }
                Ok(Arc::new(store))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_cannot_escape() {
        assert!(valid_key("owner-1/doc-2/original"));
        assert!(valid_key("a/b.c/d_e=f"));
        for bad in [
            "", "/abs", "a//b", "a/../b", "..", "a/./b", "a b", "a\\b", "키",
        ] {
            assert!(!valid_key(bad), "{bad}");
        }
    }
}
