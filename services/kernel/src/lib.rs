//! The plumbing every Protostar service shares. A service adds its own logic on top of these
//! parts and re-implements none of them.

mod access_log;
pub mod ai_api;
pub mod client_address;
pub mod config;
pub mod http;
pub mod internal;
mod log_lines;
pub mod problem;
pub mod secret;
mod span_fields;
pub mod sse;
pub mod telemetry;
pub mod trace_context;

pub use config::{ConfigError, ConfigSource};
pub use problem::{FieldError, Problem};
pub use secret::Secret;
pub mod blob;
pub mod db;
pub mod domain;
pub mod events;
pub mod service;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod upstreams;
