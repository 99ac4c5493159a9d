//! The shared limiter: GCRA in Redis, one atomic script for all the limits of a request, with
//! the allowance of hot keys taken ahead in leases (`lease`).

use super::lease::{Leases, Plan, Want};
use super::{Decision, Limit};
use redis::aio::ConnectionManager;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// All limits pass, or none is charged: checking the first and refusing on the second must not
/// spend the first one's allowance. Per key, ARGV holds the emission interval, the burst
/// tolerance and the units wanted; each key grants as many of the wanted
/// units as its allowance holds, at least one or the request is refused. Answers `{1, granted...}`
/// or `{0, index of the refusing key, microseconds until it has room}`. Times are microseconds;
/// they are stored with `%d` because Lua turns a number into a string with 14 significant
/// digits, and microseconds since 1970 have 16.
const SCRIPT: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local next_tats = {}
local granted = {1}
for i = 1, #KEYS do
  local emission = tonumber(ARGV[3 * i - 2])
  local tolerance = tonumber(ARGV[3 * i - 1])
  local wanted = tonumber(ARGV[3 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local room = tolerance - (tat - now)
  if room < 0 then
    return {0, i, -room}
  end
  local units = math.min(wanted, math.floor(room / emission) + 1)
  next_tats[i] = tat + units * emission
  granted[i + 1] = units
end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], string.format('%d', next_tats[i]), 'PX',
    string.format('%d', math.ceil((next_tats[i] - now) / 1000) + 1000))
end
return granted
"#;

/// How long a Redis answer may take before the in-process limiter decides instead.
const REDIS_DEADLINE: Duration = Duration::from_millis(250);

pub(super) struct RedisGcra {
    conn: Arc<RwLock<Option<ConnectionManager>>>,
    script: redis::Script,
    last_warning: Mutex<Option<Instant>>,
    leases: Leases,
    metrics: crate::metrics::GatewayMetrics,
}

impl RedisGcra {
    /// Connects in the background: a gateway whose Redis is not up yet still starts, and
    /// limits in process until it is.
    pub(super) fn start(
        url: &str,
        stop: tokio_util::sync::CancellationToken,
        metrics: crate::metrics::GatewayMetrics,
    ) -> Option<Self> {
        let connected = metrics.redis_connected.clone();
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
            leases: Leases::default(),
            metrics,
        })
    }

    pub(super) fn connected(&self) -> bool {
        self.conn
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// One unit of each limit: from the leases when they hold one, else from Redis.
    pub(super) async fn check(&self, limits: &[Limit]) -> Result<Decision, String> {
        let now = self.leases.clock.now_us();
        let wants = match self.leases.take(limits, now) {
            Plan::Spent => return Ok(Decision::Allow),
            Plan::Ask(wants) => wants,
        };
        let answer = self.ask(limits, &wants).await;
        match &answer {
            Ok(Ok(granted)) => self.leases.granted(limits, &wants, granted, now),
            _ => self.leases.refused(limits, &wants),
        }
        let (index, wait_us) = match answer? {
            Ok(_) => return Ok(Decision::Allow),
            Err(refusal) => refusal,
        };
        let scope = wants
            .get(index)
            .and_then(|w| limits.get(w.index))
            .map(|l| l.scope)
            .unwrap_or("unknown");
        Ok(Decision::Deny {
            scope,
            retry_after: Duration::from_micros(wait_us),
        })
    }

    /// Runs the script for `wants`: the units granted to each, or which one refused (an index
    /// into `wants`) and how long until it has room.
    async fn ask(
        &self,
        limits: &[Limit],
        wants: &[Want],
    ) -> Result<Result<Vec<u64>, (usize, u64)>, String> {
        let Some(mut conn) = self.conn.read().unwrap_or_else(|p| p.into_inner()).clone() else {
            return Err("not connected yet".into());
        };
        let mut invocation = self.script.prepare_invoke();
        for want in wants {
            let limit = &limits[want.index];
            invocation.key(&limit.key);
            invocation
                .arg(limit.emission_us)
                .arg(limit.tolerance_us)
                .arg(want.units);
        }
        self.metrics.rate_limit_redis_calls.inc();
        let answer: Vec<i64> =
            tokio::time::timeout(REDIS_DEADLINE, invocation.invoke_async(&mut conn))
                .await
                .map_err(|_| "no answer in time".to_string())?
                .map_err(|e| e.to_string())?;
        let number = |v: i64| u64::try_from(v).unwrap_or(0);
        match answer.as_slice() {
            [1, granted @ ..] if granted.len() == wants.len() => {
                Ok(Ok(granted.iter().copied().map(number).collect()))
            }
            [0, index, wait_us] => Ok(Err((
                usize::try_from(index - 1).unwrap_or(usize::MAX),
                number(*wait_us),
            ))),
            other => Err(format!("unexpected answer from the script: {other:?}")),
        }
    }

    /// One warning per ten seconds: a Redis outage must not flood the logs.
    pub(super) fn warn(&self, error: &str) {
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
