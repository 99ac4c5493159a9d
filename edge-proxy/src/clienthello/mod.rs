//! Sans-io TLS ClientHello inspection: finds the SNI (and ALPN) of a connection's first flight
//! without decrypting anything.
//!
//! The parser owns no socket, clock or randomness. The I/O side appends bytes as they arrive
//! and asks [`HelloReader::advance`] what it now knows; deadlines are the caller's business.
//! Work is linear in the input: each record header is read once and each handshake byte is
//! copied once, so a peer dribbling one byte per segment cannot make us quadratic.

mod cursor;
mod hello;
mod record;
pub mod synth;

pub use hello::{ClientHello, parse_client_hello};
pub use record::{DEFAULT_MAX_HELLO_BYTES, HelloReader};

/// What the reader knows after the bytes seen so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The hello is not complete yet; read more and call again.
    NeedMore,
    /// A complete, well-formed ClientHello with a server name.
    Done(ClientHello),
    /// Stop reading: the connection cannot be routed by name. One variant per signal an
    /// operator would act on differently.
    Reject(Reason),
}

/// Why a first flight was rejected. Each reason is a separate metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reason {
    /// The first bytes are not a TLS handshake record (plain HTTP, SSH, SSLv2, noise).
    #[error("not TLS")]
    NotTls,
    /// A complete, well-formed ClientHello without a server_name extension. The proxy may
    /// still route it through its default action.
    #[error("no SNI")]
    NoSni,
    /// The hello (or the bytes buffered for it) exceeds the configured cap.
    #[error("ClientHello too large")]
    TooLarge,
    /// Looks like TLS but breaks the grammar of RFC 8446 / RFC 6066 / RFC 7301.
    #[error("malformed ClientHello")]
    Malformed,
}

impl Reason {
    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotTls => "not_tls",
            Reason::NoSni => "no_sni",
            Reason::TooLarge => "too_large",
            Reason::Malformed => "malformed",
        }
    }
}
