//! Originals in a folder, for a single machine. Writes go to a temporary file that is synced and
//! then renamed, so a crash leaves either the old object or the new one, never half of one.

use super::{Blob, BlobError, BlobStore, check_key};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::io::Write;
use std::path::{Path, PathBuf};

pub struct LocalStore {
    data: PathBuf,
    meta: PathBuf,
}

fn io(e: std::io::Error) -> BlobError {
    BlobError::Backend(e.to_string())
}

impl LocalStore {
    pub fn open(root: PathBuf) -> std::io::Result<Self> {
        let data = root.join("objects");
        let meta = root.join("content-types");
        std::fs::create_dir_all(&data)?;
        std::fs::create_dir_all(&meta)?;
        Ok(Self { data, meta })
    }

    fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
        let dir = path
            .parent()
            .ok_or_else(|| std::io::Error::other("key without a folder"))?;
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the folder is synced.
        std::fs::File::open(dir)?.sync_all()
    }
}

impl BlobStore for LocalStore {
    fn put<'a>(
        &'a self,
        key: &'a str,
        bytes: Bytes,
        content_type: &'a str,
    ) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            let (data, meta) = (self.data.join(key), self.meta.join(key));
            let ct = content_type.to_owned();
            tokio::task::spawn_blocking(move || {
                LocalStore::write_atomically(&meta, ct.as_bytes())?;
                LocalStore::write_atomically(&data, &bytes)
            })
            .await
            .map_err(|e| BlobError::Backend(e.to_string()))?
            .map_err(io)
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Blob, BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            let bytes = match tokio::fs::read(self.data.join(key)).await {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(BlobError::NotFound(key.to_owned()));
                }
                Err(e) => return Err(io(e)),
            };
            let content_type = tokio::fs::read_to_string(self.meta.join(key))
                .await
                .unwrap_or_else(|_| "application/octet-stream".into());
            Ok(Blob {
                bytes: bytes.into(),
                content_type,
            })
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            check_key(key)?;
            for p in [self.data.join(key), self.meta.join(key)] {
                match tokio::fs::remove_file(p).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
            Ok(())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        Box::pin(async move {
            let root = self.data.clone();
            let prefix = prefix.to_owned();
            tokio::task::spawn_blocking(move || {
                let mut out = Vec::new();
                let mut stack = vec![root.clone()];
                while let Some(dir) = stack.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(io(e)),
                    };
                    for entry in entries {
                        let path = entry.map_err(io)?.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if let Ok(rel) = path.strip_prefix(&root) {
                            let key = rel.to_string_lossy().into_owned();
                            if key.starts_with(&prefix)
                                && !key.rsplit('/').next().unwrap_or("").starts_with(".tmp-")
                            {
                                out.push(key);
                            }
                        }
                    }
                }
                out.sort();
                Ok(out)
            })
            .await
            .map_err(|e| BlobError::Backend(e.to_string()))?
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            tokio::fs::metadata(&self.data)
                .await
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", self.data.display()))
        })
    }
}
