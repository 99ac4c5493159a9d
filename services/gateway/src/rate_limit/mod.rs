//! Rate limits per client address and per token subject, by GCRA (the generic cell rate
//! algorithm): one stored number per key, the "theoretical arrival time" of the next request.
//!
//! With Redis configured, every gateway process checks the same keys in one atomic script, so
//! two gateways together allow the configured rate, not twice it. The script reads Redis's own
//! clock, so gateways with skewed clocks still agree. Without Redis (one machine), or while
//! Redis does not answer, the same algorithm runs in process: Redis holds counters only, and
//! losing it must not take the front door down.
//!
//! A Redis round trip per request would cost more than the rest of the gateway's work, so a
//! key that is hot (a busy address or subject) takes its allowance from Redis a few units at a
//! time, a lease spent in process (`lease`): Redis still hands out every unit, so the rate
//! across gateways holds; a lease covers at most a tenth of a second of the key's rate and a
//! quarter of its burst, which bounds what it changes (see `lease`).

mod lease;
mod local;
mod shared;

use crate::config::Rate;
use local::LocalGcra;
use shared::RedisGcra;
use std::time::Duration;

/// One limit to check: a key and its rate, as GCRA's emission interval and burst tolerance,
/// in microseconds (in milliseconds, any rate above 60,000 a minute became exactly that).
#[derive(Debug, Clone)]
pub struct Limit {
    pub scope: &'static str,
    pub key: String,
    emission_us: u64,
    tolerance_us: u64,
}

impl Limit {
    pub fn new(scope: &'static str, key: String, rate: Rate) -> Self {
        let emission_us = (60_000_000 / u64::from(rate.per_minute.max(1))).max(1);
        Self {
            scope,
            key,
            emission_us,
            // `burst` requests may arrive at once: the first fills no tolerance.
            tolerance_us: emission_us * u64::from(rate.burst.max(1) - 1),
        }
    }

    /// An address limit, for the tests of this module's parts.
    #[cfg(test)]
    fn ip(key: &str, per_minute: u32, burst: u32) -> Self {
        Self::new("ip", key.into(), Rate { per_minute, burst })
    }

    /// The requests allowed at once.
    fn burst(&self) -> u64 {
        self.tolerance_us / self.emission_us + 1
    }
}

/// Microseconds since the limiter started: the time of in-process state (Redis keeps its own).
pub struct Clock(std::time::Instant);

impl Default for Clock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Clock {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        scope: &'static str,
        retry_after: Duration,
    },
}

pub struct RateLimiter {
    local: LocalGcra,
    redis: Option<RedisGcra>,
    metrics: crate::metrics::GatewayMetrics,
}

impl RateLimiter {
    pub fn new(
        redis_url: Option<&str>,
        metrics: crate::metrics::GatewayMetrics,
        stop: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            local: LocalGcra::default(),
            redis: redis_url.and_then(|u| RedisGcra::start(u, stop, metrics.clone())),
            metrics,
        }
    }

    /// `redis`, `redis-connecting` (limiting in process until it answers) or `in-process`.
    pub fn backend(&self) -> &'static str {
        match &self.redis {
            Some(r) if r.connected() => "redis",
            Some(_) => "redis-connecting",
            None => "in-process",
        }
    }

    pub async fn check(&self, limits: &[Limit]) -> Decision {
        if limits.is_empty() {
            return Decision::Allow;
        }
        let decision = match &self.redis {
            Some(redis) => match redis.check(limits).await {
                Ok(d) => d,
                Err(e) => {
                    self.metrics.rate_limit_fallbacks.inc();
                    redis.warn(&e);
                    self.local.check(limits, self.local.clock.now_us())
                }
            },
            None => self.local.check(limits, self.local.clock.now_us()),
        };
        if let Decision::Deny { scope, .. } = &decision {
            self.metrics
                .rate_limited
                .get_or_create(&crate::metrics::ScopeLabel {
                    scope: (*scope).to_owned(),
                })
                .inc();
        }
        decision
    }
}
