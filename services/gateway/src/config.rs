//! The gateway's settings: the `gateway` section, the `upstreams` table and `redis.url`.

use kernel::client_address::TrustedProxies;
use kernel::config::{ConfigError, ConfigSource};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Proxies in front of the gateway (the cluster's Gateway data plane, the edge proxy's
    /// PROXY-protocol terminator) whose `X-Forwarded-For` names the client.
    #[serde(default)]
    pub trusted_proxies: Option<String>,
    /// Time an upstream has to send its response headers; a streamed body may take longer.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    /// Extra attempts for idempotent requests whose connection failed before anything was sent.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The largest request body the gateway forwards, except on upload routes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    /// The largest upload (`POST /api/documents`) the gateway forwards; the content service
    /// applies its own, usually smaller, limit.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    #[serde(default)]
    pub rate_limit: RateLimitConfig,
    #[serde(default)]
    pub breaker: BreakerConfig,
    #[serde(default)]
    pub cors: CorsConfig,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: None,
            request_timeout_secs: default_request_timeout(),
            connect_timeout_ms: default_connect_timeout(),
            retries: default_retries(),
            max_body_bytes: default_max_body(),
            max_upload_bytes: default_max_upload(),
            rate_limit: RateLimitConfig::default(),
            breaker: BreakerConfig::default(),
            cors: CorsConfig::default(),
        }
    }
}

fn default_request_timeout() -> u64 {
    30
}
fn default_connect_timeout() -> u64 {
    1000
}
fn default_retries() -> u32 {
    2
}
fn default_max_body() -> u64 {
    1024 * 1024
}
fn default_max_upload() -> u64 {
    25 * 1024 * 1024
}

/// A sustained rate and a burst, for one kind of key.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub per_minute: u32,
    pub burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Every request, keyed by the client's address. Generous: offices share an address.
    #[serde(default = "default_ip_rate")]
    pub ip: Rate,
    /// Requests with a valid token, keyed by the token's subject.
    #[serde(default = "default_subject_rate")]
    pub subject: Rate,
    /// Prefix of the Redis keys, so that two installations can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            ip: default_ip_rate(),
            subject: default_subject_rate(),
            key_prefix: default_key_prefix(),
        }
    }
}

fn default_ip_rate() -> Rate {
    Rate {
        per_minute: 1200,
        burst: 200,
    }
}
fn default_subject_rate() -> Rate {
    Rate {
        per_minute: 600,
        burst: 100,
    }
}
fn default_key_prefix() -> String {
    "protostar:rl:".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// The window over which the failure rate is measured.
    #[serde(default = "default_window")]
    pub window_secs: u64,
    /// Fewer requests than this in the window never open the breaker.
    #[serde(default = "default_min_requests")]
    pub min_requests: u32,
    /// The share of failures (0–1) that opens it.
    #[serde(default = "default_failure_ratio")]
    pub failure_ratio: f64,
    /// How long it stays open before one probe is let through.
    #[serde(default = "default_open")]
    pub open_secs: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window_secs: default_window(),
            min_requests: default_min_requests(),
            failure_ratio: default_failure_ratio(),
            open_secs: default_open(),
        }
    }
}

fn default_window() -> u64 {
    10
}
fn default_min_requests() -> u32 {
    5
}
fn default_failure_ratio() -> f64 {
    0.5
}
fn default_open() -> u64 {
    5
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins allowed everywhere on the public API besides each chatbot's own widget
    /// origins (a dashboard served from another host, say). A list, or comma-separated text
    /// (how it arrives from an environment variable).
    #[serde(default, deserialize_with = "kernel::config::list_or_commas")]
    pub allowed_origins: Vec<String>,
    /// How often the chatbots' widget origins are re-read from the chat service.
    #[serde(default = "default_origins_ttl")]
    pub origins_refresh_secs: u64,
}

impl Default for CorsConfig {
    fn default() -> Self {
        Self {
            allowed_origins: Vec::new(),
            origins_refresh_secs: default_origins_ttl(),
        }
    }
}

fn default_origins_ttl() -> u64 {
    30
}

pub use kernel::upstreams::UpstreamUrls;

#[derive(Debug, Clone, Deserialize)]
struct RedisSection {
    #[serde(default)]
    url: Option<String>,
}

/// Everything the gateway reads, checked at once.
pub struct Settings {
    pub gateway: GatewayConfig,
    pub upstreams: BTreeMap<String, UpstreamUrls>,
    pub redis_url: Option<String>,
    pub trusted_proxies: TrustedProxies,
}

impl Settings {
    pub fn read(config: &ConfigSource) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let gateway = if config.contains("gateway") {
            config
                .section::<GatewayConfig>("gateway")
                .unwrap_or_else(|e| {
                    errors.push(e);
                    GatewayConfig::default()
                })
        } else {
            GatewayConfig::default()
        };
        let trusted_proxies = TrustedProxies::parse(
            gateway.trusted_proxies.as_deref().unwrap_or(""),
        )
        .unwrap_or_else(|m| {
            errors.push(ConfigError::key("gateway.trusted_proxies", m));
            TrustedProxies::default()
        });
        check_breaker(&gateway.breaker, &mut errors);
        check_rate("gateway.rate_limit.ip", gateway.rate_limit.ip, &mut errors);
        check_rate(
            "gateway.rate_limit.subject",
            gateway.rate_limit.subject,
            &mut errors,
        );
        for origin in &gateway.cors.allowed_origins {
            if crate::cors::normalise_origin(origin).is_none() {
                errors.push(ConfigError::key(
                    "gateway.cors.allowed_origins",
                    format!("`{origin}` is not an origin like https://blog.example.com"),
                ));
            }
        }
        let upstreams = kernel::upstreams::read(config).unwrap_or_else(|e| {
            errors.extend(e);
            BTreeMap::new()
        });
        let redis_url = if config.contains("redis") {
            match config.section::<RedisSection>("redis") {
                Ok(r) => r.url.filter(|u| !u.trim().is_empty()),
                Err(e) => {
                    errors.push(e);
                    None
                }
            }
        } else {
            None
        };
        if let Some(url) = &redis_url
            && redis::Client::open(url.as_str()).is_err()
        {
            errors.push(ConfigError::key(
                "redis.url",
                "is not a Redis URL like redis://host:6379",
            ));
        }
        ConfigError::collect(errors)?;
        Ok(Self {
            gateway,
            upstreams,
            redis_url,
            trusted_proxies,
        })
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.gateway.request_timeout_secs)
    }
}

fn check_breaker(b: &BreakerConfig, errors: &mut Vec<ConfigError>) {
    if !(b.failure_ratio > 0.0 && b.failure_ratio <= 1.0) {
        errors.push(ConfigError::key(
            "gateway.breaker.failure_ratio",
            "must be above 0 and at most 1",
        ));
    }
    if b.window_secs == 0 {
        errors.push(ConfigError::key(
            "gateway.breaker.window_secs",
            "must be at least 1",
        ));
    }
}

fn check_rate(key: &str, rate: Rate, errors: &mut Vec<ConfigError>) {
    if rate.per_minute == 0 {
        errors.push(ConfigError::key(
            &format!("{key}.per_minute"),
            "must be at least 1",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(pairs: &[(&str, &str)]) -> ConfigSource {
        ConfigSource::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn upstreams_take_a_url_or_both_listeners() {
        let s = Settings::read(&source(&[
            ("PROTOSTAR_UPSTREAMS__CHAT", "http://chat:8080"),
            ("PROTOSTAR_UPSTREAMS__USER__PUBLIC", "http://user:8080"),
            ("PROTOSTAR_UPSTREAMS__USER__ADMIN", "http://user:8081"),
        ]))
        .unwrap();
        assert_eq!(
            s.upstreams["chat"].public.as_ref().unwrap().to_string(),
            "http://chat:8080/"
        );
        assert!(s.upstreams["chat"].admin.is_none());
        assert_eq!(
            s.upstreams["user"].admin.as_ref().unwrap().to_string(),
            "http://user:8081/"
        );
    }

    #[test]
    fn bad_settings_name_their_keys() {
        let err = Settings::read(&source(&[
            ("PROTOSTAR_UPSTREAMS__CHAT", "ftp://chat"),
            ("PROTOSTAR_GATEWAY__BREAKER__FAILURE_RATIO", "2"),
            ("PROTOSTAR_GATEWAY__TRUSTED_PROXIES", "nonsense"),
            (
                "PROTOSTAR_GATEWAY__CORS__ALLOWED_ORIGINS",
                "https://ok.example, blog.example.com/x",
            ),
            ("PROTOSTAR_REDIS__URL", "nope://"),
        ]))
        .err()
        .unwrap()
        .to_string();
        for key in [
            "upstreams.chat",
            "gateway.breaker.failure_ratio",
            "gateway.trusted_proxies",
            "gateway.cors.allowed_origins",
            "redis.url",
        ] {
            assert!(err.contains(key), "{key} missing from: {err}");
        }
    }
}
