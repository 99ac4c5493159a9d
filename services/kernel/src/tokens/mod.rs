//! Access tokens: claims, roles, verification against a cached JWKS, and the `Caller`
//! extractor. Signing belongs to the auth service.

pub mod claims;
pub mod extract;
pub mod verifier;

pub use claims::{Claims, Role};
pub use extract::Caller;
pub use verifier::{
    AuthConfig, HttpKeySource, KeySource, StaticKeySource, TokenError, TokenVerifier,
};
