//! protostar-edge: an L4 proxy that routes raw TLS connections by the SNI of their
//! ClientHello, without decrypting, so an overloaded public side cannot lock the admin out.
//!
//! Reading order: [`clienthello`] (sans-io parser), [`routing`] and [`runtime`] (where a name
//! goes), [`limits`] (who gets in), [`upstream`] (where to connect), [`proxy_protocol`],
//! [`relay`] (moving bytes), [`server`] (the I/O that ties them together), [`admin`] and
//! [`metrics`].

pub mod admin;
pub mod clienthello;
pub mod config;
pub mod limits;
pub mod metrics;
pub mod proxy_protocol;
pub mod relay;
pub mod routing;
pub mod runtime;
pub mod server;
pub mod upstream;

pub use config::Config;
pub use server::Proxy;
