//! Admission control. Each gate hands out a guard that gives its slot back on drop, so no
//! code path (error, timeout, drain) can leak capacity.
//!
//! - [`per_ip`]: per-source concurrency and new-connection rate, checked at accept.
//! - [`handshake`]: bounded set of connections still sending their hello; oldest evicted.
//! - [`routes`]: per-route concurrency with reserved slots outside the shared pool.

pub mod handshake;
pub mod per_ip;
pub mod routes;

/// Why a connection was turned away; each is a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rejection {
    PerIpConcurrency,
    PerIpRate,
    HandshakeEvicted,
    HandshakeTimeout,
    RouteFull,
    NoRoute,
    UpstreamUnavailable,
    Draining,
}

impl Rejection {
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::PerIpConcurrency => "per_ip_concurrency",
            Rejection::PerIpRate => "per_ip_rate",
            Rejection::HandshakeEvicted => "handshake_evicted",
            Rejection::HandshakeTimeout => "handshake_timeout",
            Rejection::RouteFull => "route_full",
            Rejection::NoRoute => "no_route",
            Rejection::UpstreamUnavailable => "upstream_unavailable",
            Rejection::Draining => "draining",
        }
    }
}
