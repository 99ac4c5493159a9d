//! Rate limits per client address and per token subject, by GCRA (the generic cell rate
//! algorithm): one stored number per key, the "theoretical arrival time" of the next request.
//!
//! With Redis configured, every gateway process checks the same keys in one atomic script, so
//! two gateways together allow the configured rate, not twice it. The script reads Redis's own
//! clock, so gateways with skewed clocks still agree. Without Redis (one machine), or while
//! Redis does not answer, the same algorithm runs in process: Redis holds counters only, and
//! losing it must not take the front door down.

use crate::config::Rate;
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny {
        scope: &'static str,
        retry_after: Duration,
    },
}

/// All limits pass, or none is charged: checking the first and refusing on the second must not
/// spend the first one's allowance. Times are microseconds; they are stored with `%d` because
/// Lua turns a number into a string with 14 significant digits, and microseconds since 1970
/// have 16.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_tats = {}
for i = 1, #KEYS do
  local emission = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  if tat - now > tolerance then
    return {0, i, tat - now - tolerance}
  end
  next_tats[i] = tat + emission
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', next_tats[i]), 'PX',
    string.format('%d', math.ceil((next_tats[i] - now) / 1000) + 1000))
end
return {1, 0, 0}
"#;

/// How long a Redis answer may take before the in-process limiter decides instead.
const REDIS_DEADLINE: Duration = Duration::from_millis(250);

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
            redis: redis_url
                .and_then(|u| RedisGcra::start(u, stop, metrics.redis_connected.clone())),
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
                    self.local.check(limits, self.local.now_us())
                }
            },
            None => self.local.check(limits, self.local.now_us()),
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

/// The in-process limiter: the same algorithm over a map.
pub struct LocalGcra {
    epoch: Instant,
    tats: Mutex<HashMap<String, u64>>,
}

impl Default for LocalGcra {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            tats: Mutex::new(HashMap::new()),
        }
    }
}

/// Past this many keys, the ones whose allowance is full again are dropped.
const LOCAL_KEYS_SOFT_CAP: usize = 100_000;

impl LocalGcra {
    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub fn check(&self, limits: &[Limit], now: u64) -> Decision {
        let mut tats = self.tats.lock().unwrap_or_else(|p| p.into_inner());
        if tats.len() > LOCAL_KEYS_SOFT_CAP {
            tats.retain(|_, tat| *tat > now);
        }
        let mut next = Vec::with_capacity(limits.len());
        for limit in limits {
            let tat = tats.get(&limit.key).copied().unwrap_or(now).max(now);
            if tat - now > limit.tolerance_us {
                return Decision::Deny {
                    scope: limit.scope,
                    retry_after: Duration::from_micros(tat - now - limit.tolerance_us),
                };
            }
            next.push(tat + limit.emission_us);
        }
        for (limit, tat) in limits.iter().zip(next) {
            // A known key is updated in place: no copy of it per request.
            match tats.get_mut(&limit.key) {
                Some(slot) => *slot = tat,
                None => {
                    tats.insert(limit.key.clone(), tat);
                }
            }
        }
        Decision::Allow
    }
}

struct RedisGcra {
    conn: Arc<RwLock<Option<ConnectionManager>>>,
    script: redis::Script,
    last_warning: Mutex<Option<Instant>>,
}

impl RedisGcra {
    /// Connects in the background: a gateway whose Redis is not up yet still starts, and
    /// limits in process until it is.
    fn start(
        url: &str,
        stop: tokio_util::sync::CancellationToken,
        connected: prometheus_client::metrics::gauge::Gauge,
    ) -> Option<Self> {
        let client = redis::Client::open(url).ok()?;
        let conn = Arc::new(RwLock::new(None));
        let slot = conn.clone();
        tokio::spawn(async move {
            let config = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(Duration::from_secs(2)))
                .set_response_timeout(Some(REDIS_DEADLINE));
            let mut delay = Duration::from_millis(200);
            loop {
                match ConnectionManager::new_with_config(client.clone(), config.clone()).await {
                    Ok(c) => {
                        *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(c);
                        connected.set(1);
                        tracing::info!("rate limits shared through Redis");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "Redis not reachable yet; limiting in process")
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        });
        Some(Self {
            conn,
            script: redis::Script::new(SCRIPT),
            last_warning: Mutex::new(None),
        })
    }

    fn connected(&self) -> bool {
        self.conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    async fn check(&self, limits: &[Limit]) -> Result<Decision, String> {
        let Some(mut conn) = self.conn.read().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err("not connected yet".into());
        };
        let mut invocation = self.script.prepare_invoke();
        for limit in limits {
            invocation.key(&limit.key);
            invocation.arg(limit.emission_us).arg(limit.tolerance_us);
        }
        let answer: (i64, i64, i64) =
            tokio::time::timeout(REDIS_DEADLINE, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| e.to_string())?;
        Ok(match answer {
            (1, _, _) => Decision::Allow,
            (_, index, wait_us) => {
                let scope = usize::try_from(index - 1)
                    .ok()
                    .and_then(|i| limits.get(i))
                    .map(|l| l.scope)
                    .unwrap_or("unknown");
                Decision::Deny {
                    scope,
                    retry_after: Duration::from_micros(u64::try_from(wait_us).unwrap_or(0)),
                }
            }
        })
    }

    /// One warning per ten seconds: a Redis outage must not flood the logs.
    fn warn(&self, error: &str) {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            *last = Some(Instant::now());
            tracing::warn!(
                error,
                "Redis rate limit failed; limiting in process meanwhile"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(key: &str, per_minute: u32, burst: u32) -> Limit {
        Limit::new("ip", key.into(), Rate { per_minute, burst })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let g = LocalGcra::default();
        let l = [limit("a", 60, 5)];
        for i in 0..5 {
            assert_eq!(g.check(&l, 1_000_000), Decision::Allow, "request {i}");
        }
        match g.check(&l, 1_000_000) {
            Decision::Deny { retry_after, .. } => assert_eq!(retry_after.as_millis(), 1000),
            d => panic!("{d:?}"),
        }
        // One emission interval later, one more.
        assert_eq!(g.check(&l, 2_000_000), Decision::Allow);
        assert!(matches!(g.check(&l, 2_000_000), Decision::Deny { .. }));
        // Keys are independent.
        assert_eq!(g.check(&[limit("b", 60, 5)], 2_000_000), Decision::Allow);
    }

    #[test]
    fn rates_above_one_a_millisecond_hold() {
        // 6,000,000 a minute is one every 10 µs; milliseconds could not tell it from 60,000.
        let g = LocalGcra::default();
        let l = [limit("fast", 6_000_000, 1)];
        assert_eq!(g.check(&l, 0), Decision::Allow);
        match g.check(&l, 5) {
            Decision::Deny { retry_after, .. } => assert_eq!(retry_after.as_micros(), 5),
            d => panic!("{d:?}"),
        }
        assert_eq!(g.check(&l, 10), Decision::Allow);
        assert_eq!(g.check(&l, 20), Decision::Allow);
    }

    #[test]
    fn a_refusal_on_one_limit_charges_none() {
        let g = LocalGcra::default();
        let ip = limit("ip", 60, 10);
        let sub = Limit::new(
            "subject",
            "sub".into(),
            Rate {
                per_minute: 60,
                burst: 1,
            },
        );
        assert_eq!(g.check(&[ip.clone(), sub.clone()], 0), Decision::Allow);
        assert!(matches!(
            g.check(&[ip.clone(), sub.clone()], 0),
            Decision::Deny {
                scope: "subject",
                ..
            }
        ));
        // The address spent one unit, not two: nine more fit in its burst.
        for _ in 0..9 {
            assert_eq!(g.check(std::slice::from_ref(&ip), 0), Decision::Allow);
        }
        assert!(matches!(
            g.check(std::slice::from_ref(&ip), 0),
            Decision::Deny { .. }
        ));
    }
}
