//! argon2id password hashes in PHC strings (the parameters travel with each hash, so raising
//! the cost later leaves old hashes verifiable). Hashing is CPU-bound for tens of milliseconds,
//! so it runs on the blocking pool, never on the request's worker thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2 parameters: {0}")]
    Params(argon2::Error),
    #[error("hashing: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the hashing task stopped")]
    Join,
    #[error("the hasher is shut down")]
    Closed,
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    /// A hash of a random password, verified against when the account does not exist, so that
    /// an unknown e-mail takes as long to refuse as a wrong password.
    decoy: Arc<str>,
    /// Each hash holds `memory_kib` of memory and a core for its duration: a burst of logins
    /// waits here instead of exhausting the machine's memory.
    slots: Arc<Semaphore>,
}

impl Hasher {
    pub fn new(memory_kib: u32, iterations: u32) -> Result<Self, HashError> {
        let params = Params::new(memory_kib, iterations, 1, None).map_err(HashError::Params)?;
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let mut hasher = Self {
            params,
            decoy: Arc::from(""),
            slots: Arc::new(Semaphore::new(cores * 2)),
        };
        let random: [u8; 24] = rand::random();
        hasher.decoy = hasher.hash_now(&hex(&random))?.into();
        Ok(hasher)
    }

    fn argon(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    fn hash_now(&self, password: &str) -> Result<String, HashError> {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(HashError::Hash)?;
        self.argon()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(HashError::Hash)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        // The permit moves into the blocking task: a dropped request does not free it early.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Closed)?;
        let me = self.clone();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            me.hash_now(&password)
        })
        .await
        .map_err(|_| HashError::Join)?
    }

    /// Whether `password` matches `phc`; with no stored hash, checks the decoy and says no.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool, HashError> {
        // The permit moves into the blocking task: a dropped request does not free it early.
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Closed)?;
        let me = self.clone();
        let password = password.to_owned();
        let known = phc.is_some();
        let phc = phc
            .map(str::to_owned)
            .unwrap_or_else(|| me.decoy.to_string());
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let parsed = PasswordHash::new(&phc).map_err(HashError::Hash)?;
            Ok(me
                .argon()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
                && known)
        })
        .await
        .map_err(|_| HashError::Join)?
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::Hasher;

    #[tokio::test]
    async fn verifies_its_own_hashes_only() {
        let h = Hasher::new(1024, 1).unwrap();
        let phc = h.hash("correct horse battery").await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("correct horse battery", Some(&phc)).await.unwrap());
        assert!(!h.verify("correct horse batterY", Some(&phc)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
        // Salted: the same password never hashes the same twice.
        assert_ne!(phc, h.hash("correct horse battery").await.unwrap());
    }
}
