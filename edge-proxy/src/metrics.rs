//! Prometheus metrics: connections and bytes per route, rejections by reason, ClientHello
//! errors by reason, upstream health. Served by [`crate::admin`] on loopback only.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    route: String,
    direction: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabels {
    upstream: String,
    address: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// One established connection's handles onto its route's series, so the copy path costs
/// one atomic add per chunk and no map lookup. Three pointers: idle connections carry it.
#[derive(Debug, Clone)]
pub struct RouteMeters {
    pub client_to_upstream: Counter,
    pub upstream_to_client: Counter,
    active: Gauge,
}

impl RouteMeters {
    /// The connection ended: it no longer counts as active.
    pub fn closed(&self) {
        self.active.dec();
    }
}

/// Cheap to clone: every field is a handle onto shared atomics.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    connections: Family<RouteLabel, Counter>,
    active: Family<RouteLabel, Gauge>,
    bytes: Family<BytesLabels, Counter>,
    rejections: Family<ReasonLabel, Counter>,
    hello_errors: Family<ReasonLabel, Counter>,
    upstream_healthy: Family<UpstreamLabels, Gauge>,
    handshakes: Gauge,
    reloads: Family<ResultLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Which way bytes went; a label value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    ClientToUpstream,
    UpstreamToClient,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToUpstream => "client_to_upstream",
            Direction::UpstreamToClient => "upstream_to_client",
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("edge");
        let m = Self {
            registry: Arc::new(Registry::default()),
            connections: Family::default(),
            active: Family::default(),
            bytes: Family::default(),
            rejections: Family::default(),
            hello_errors: Family::default(),
            upstream_healthy: Family::default(),
            handshakes: Gauge::default(),
            reloads: Family::default(),
        };
        registry.register(
            "connections",
            "Connections routed, per route",
            m.connections.clone(),
        );
        registry.register(
            "connections_active",
            "Established connections, per route",
            m.active.clone(),
        );
        registry.register(
            "bytes",
            "Bytes relayed, per route and direction",
            m.bytes.clone(),
        );
        registry.register(
            "rejections",
            "Connections turned away, by reason",
            m.rejections.clone(),
        );
        registry.register(
            "client_hello_errors",
            "ClientHellos that could not be routed, by reason",
            m.hello_errors.clone(),
        );
        registry.register(
            "upstream_healthy",
            "1 if the active health check passes",
            m.upstream_healthy.clone(),
        );
        registry.register(
            "handshakes_pending",
            "Connections still sending their ClientHello",
            m.handshakes.clone(),
        );
        registry.register(
            "reloads",
            "Configuration reloads, by result",
            m.reloads.clone(),
        );
        Self {
            registry: Arc::new(registry),
            ..m
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Counts a connection as established on `route` and returns the handles it updates
    /// while relaying; [`RouteMeters::closed`] ends it.
    pub fn connection_opened(&self, route: &str) -> RouteMeters {
        let l = RouteLabel {
            route: route.to_owned(),
        };
        self.connections.get_or_create(&l).inc();
        let active = self.active.get_or_create(&l).clone();
        active.inc();
        RouteMeters {
            client_to_upstream: self.bytes_counter(route, Direction::ClientToUpstream),
            upstream_to_client: self.bytes_counter(route, Direction::UpstreamToClient),
            active,
        }
    }

    /// A handle for the hot copy path, so each chunk costs one atomic add, not a map lookup.
    fn bytes_counter(&self, route: &str, dir: Direction) -> Counter {
        self.bytes
            .get_or_create(&BytesLabels {
                route: route.to_owned(),
                direction: dir.as_str(),
            })
            .clone()
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejections.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn hello_error(&self, reason: &'static str) {
        self.hello_errors
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn set_upstream_health(&self, upstream: &str, addr: SocketAddr, healthy: bool) {
        let l = UpstreamLabels {
            upstream: upstream.to_owned(),
            address: addr.to_string(),
        };
        self.upstream_healthy
            .get_or_create(&l)
            .set(i64::from(healthy));
    }

    pub fn set_handshakes(&self, n: usize) {
        self.handshakes.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn reloaded(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabel {
                result: if ok { "ok" } else { "error" },
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_labelled_series() {
        let m = Metrics::new();
        let meters = m.connection_opened("admin");
        meters.upstream_to_client.inc_by(42);
        m.connection_opened("admin").closed();
        m.rejected("route_full");
        m.hello_error("not_tls");
        m.set_upstream_health("admin", SocketAddr::from(([127, 0, 0, 1], 9)), true);
        let text = m.encode();
        for want in [
            "edge_connections_total{route=\"admin\"} 2",
            "edge_connections_active{route=\"admin\"} 1",
            "edge_bytes_total{route=\"admin\",direction=\"upstream_to_client\"} 42",
            "edge_rejections_total{reason=\"route_full\"} 1",
            "edge_client_hello_errors_total{reason=\"not_tls\"} 1",
            "edge_upstream_healthy{upstream=\"admin\",address=\"127.0.0.1:9\"} 1",
        ] {
            assert!(text.contains(want), "missing {want} in\n{text}");
        }
    }
}
