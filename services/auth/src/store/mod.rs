//! The auth schema's tables, one module each. Functions take a connection so that callers
//! decide the transaction (and put the outbox event in the same one).

pub mod accounts;
pub mod failures;
pub mod refresh;
pub mod resets;

use sha2::{Digest, Sha256};

/// A random opaque token (256 bits, base64url) and the hash we store instead of it.
pub fn new_token() -> (String, Vec<u8>) {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
