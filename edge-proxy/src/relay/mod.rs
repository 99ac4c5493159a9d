//! Moving bytes for established connections: both directions at once, half-close passed
//! through (EOF on one side becomes a write shutdown on the other, the opposite direction
//! keeps flowing), and one idle timeout covering both directions.
//!
//! The async runtime does everything up to here (hello, routing, admission, connect); then
//! the two sockets are handed to the relay of the same worker thread ([`engine`]), which
//! keeps each connection as one small slab entry in its own epoll set. Most connections of
//! an edge proxy spend most of their life idle, and an idle connection as an async task cost
//! about 2.2 KiB (a task, a timer and two readiness records); here it costs a few hundred
//! bytes.
//!
//! Two ways to move bytes, chosen by config and measured in `docs/benchmarks.md`:
//! - userspace: one per-thread scratch buffer; a connection holds heap memory only while its
//!   receiver is slower than its sender, so idle connections cost no buffers.
//! - splice(2): socket → pipe → socket inside the kernel. Pipes come from a per-thread pool
//!   and go back as soon as a direction goes quiet, so idle connections hold no pipes (and
//!   no extra descriptors) either.

mod engine;
mod half;

pub use engine::{RelayError, hand_off, run};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::task_tracker::TaskTrackerToken;

use crate::config::CopyMode;
use crate::limits::per_ip::IpGuard;
use crate::limits::routes::RoutePermit;
use crate::metrics::RouteMeters;
use crate::runtime::Route;

/// A connection ready to relay: the hello is forwarded, nothing is buffered.
pub struct Established {
    pub client: std::net::TcpStream,
    pub upstream: std::net::TcpStream,
    pub peer: SocketAddr,
    pub mode: CopyMode,
    pub idle: Duration,
    pub route: Arc<Route>,
    pub meters: RouteMeters,
    pub held: Held,
}

/// What a connection holds until it ends; dropping it gives each back.
pub struct Held {
    /// The connection's slot on its route.
    pub route: Option<RoutePermit>,
    /// The connection's slot among its source address's connections.
    pub source: Option<IpGuard>,
    /// Keeps the drain waiting for this connection.
    pub drain: TaskTrackerToken,
}

#[cfg(test)]
mod tests;
