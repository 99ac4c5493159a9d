//! The TOML configuration as written by the operator. Parsing only; [`crate::runtime`] turns
//! it into lookup tables and rejects what cannot work.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::clienthello::DEFAULT_MAX_HELLO_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing config: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("invalid config: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default)]
    pub admin: Option<AdminConfig>,
    #[serde(default)]
    pub limits: Limits,
    /// What to do with a hello whose SNI matches no route, or that has none.
    #[serde(default)]
    pub default: DefaultAction,
    #[serde(rename = "route", default)]
    pub routes: Vec<RouteConfig>,
    #[serde(rename = "upstream", default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// How bytes are relayed once a connection is established.
    #[serde(default)]
    pub copy: CopyMode,
    /// How long SIGTERM waits for established connections before closing them.
    #[serde(default = "defaults::drain_timeout_ms")]
    pub drain_timeout_ms: u64,
    /// Worker threads, each accepting, handshaking and relaying its own connections; 0 means
    /// one per CPU. Read at start only (a reload cannot change it).
    #[serde(default)]
    pub threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub bind: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Must be a loopback address: metrics are for the operator's scraper only.
    pub bind: SocketAddr,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum DefaultAction {
    #[default]
    Reject,
    Route {
        route: String,
    },
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum CopyMode {
    /// Userspace copy through one per-thread buffer: no per-connection buffers at rest. The
    /// default: over four benchmark runs it tied splice on bulk throughput and added less
    /// latency in three (docs/benchmarks.md, "Edge proxy").
    #[default]
    Userspace,
    /// splice(2) through pooled pipes: bytes never enter userspace.
    Splice,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Exact names (`admin.example.com`) or single-label wildcards (`*.example.com`).
    pub sni: Vec<String>,
    pub upstream: String,
    #[serde(default)]
    pub proxy_protocol: bool,
    /// Concurrent connections this route may hold, reserved slots included.
    #[serde(default = "defaults::route_max_connections")]
    pub max_connections: usize,
    /// Slots only this route can use, outside the shared pool: the admin's guarantee.
    #[serde(default)]
    pub reserved: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    /// Literal socket addresses: the edge resolves nothing at run time.
    pub addresses: Vec<SocketAddr>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default)]
    pub health: HealthConfig,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    #[default]
    RoundRobin,
    FirstHealthy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// 0 disables active checks (every address then counts as healthy).
    #[serde(default = "defaults::health_interval_ms")]
    pub interval_ms: u64,
    #[serde(default = "defaults::health_timeout_ms")]
    pub timeout_ms: u64,
    /// Consecutive failures before an address is marked down.
    #[serde(default = "defaults::health_fall")]
    pub fall: u32,
    /// Consecutive successes before it is marked up again.
    #[serde(default = "defaults::health_rise")]
    pub rise: u32,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval_ms: defaults::health_interval_ms(),
            timeout_ms: defaults::health_timeout_ms(),
            fall: defaults::health_fall(),
            rise: defaults::health_rise(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Shared pool of established connections across routes (reserved slots come on top).
    pub max_connections: usize,
    /// Connections still sending their hello; past this the oldest is evicted, so a
    /// slow-loris crowd cannot keep a fresh, fast client out.
    pub max_handshakes: usize,
    /// Byte cap for a buffered ClientHello (Envoy's default, 64 KiB).
    pub max_hello_bytes: usize,
    pub handshake_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    /// Concurrent connections per client address (IPv6 counted per /64).
    pub per_ip_max_connections: usize,
    /// New connections per second per client address (token bucket refill rate).
    pub per_ip_rate: f64,
    /// Token bucket depth: the burst a client may open at once.
    pub per_ip_burst: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_handshakes: 2_048,
            max_hello_bytes: DEFAULT_MAX_HELLO_BYTES,
            handshake_timeout_ms: 5_000,
            connect_timeout_ms: 3_000,
            idle_timeout_ms: 600_000,
            per_ip_max_connections: 256,
            per_ip_rate: 50.0,
            per_ip_burst: 100.0,
        }
    }
}

impl Limits {
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
}

impl Config {
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Ok(toml::from_str(text)?)
    }

    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }
}

mod defaults {
    pub fn drain_timeout_ms() -> u64 {
        30_000
    }
    pub fn route_max_connections() -> usize {
        10_000
    }
    pub fn health_interval_ms() -> u64 {
        2_000
    }
    pub fn health_timeout_ms() -> u64 {
        1_000
    }
    pub fn health_fall() -> u32 {
        3
    }
    pub fn health_rise() -> u32 {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let c = Config::from_toml(
            r#"
            copy = "splice"
            threads = 1
            [[listener]]
            bind = "0.0.0.0:443"
            [admin]
            bind = "127.0.0.1:9901"
            [limits]
            per_ip_rate = 5.0
            [default]
            action = "route"
            route = "public"
            [[route]]
            name = "admin"
            sni = ["admin.example.com"]
            upstream = "admin"
            proxy_protocol = true
            reserved = 32
            [[upstream]]
            name = "admin"
            addresses = ["10.0.0.2:8443", "10.0.0.3:8443"]
            balance = "first-healthy"
            health = { interval_ms = 500, fall = 2 }
            "#,
        )
        .expect("valid");
        assert_eq!((c.copy, c.threads), (CopyMode::Splice, 1));
        assert_eq!(
            c.default,
            DefaultAction::Route {
                route: "public".into()
            }
        );
        assert_eq!(c.limits.per_ip_rate, 5.0);
        assert_eq!(c.limits.max_hello_bytes, 65536);
        let r = c.routes.first().expect("one route");
        assert_eq!(
            (r.reserved, r.max_connections, r.proxy_protocol),
            (32, 10_000, true)
        );
        let u = c.upstreams.first().expect("one upstream");
        assert_eq!(
            (
                u.balance,
                u.health.interval_ms,
                u.health.fall,
                u.health.rise
            ),
            (Balance::FirstHealthy, 500, 2, 2)
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let err = Config::from_toml("[[listener]]\nbind = \"127.0.0.1:1\"\nbogus = 1\n");
        assert!(matches!(err, Err(ConfigError::Parse(_))), "{err:?}");
    }

    #[test]
    fn default_action_defaults_to_reject() {
        let c = Config::from_toml("[[listener]]\nbind = \"127.0.0.1:1\"\n").expect("valid");
        assert_eq!(c.default, DefaultAction::Reject);
        assert_eq!((c.copy, c.threads), (CopyMode::Userspace, 0));
    }
}
