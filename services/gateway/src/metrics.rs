//! What the gateway counts, beside the kernel's per-listener request metrics.

use kernel::telemetry::Metrics;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabel {
    pub scope: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    pub target: &'static str,
    /// `ok`, `error-status` (502–504), `connect-failed`, `timeout`, `circuit-open`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabel {
    pub target: String,
}

#[derive(Clone, Default)]
pub struct GatewayMetrics {
    pub rate_limited: Family<ScopeLabel, Counter>,
    pub rate_limit_fallbacks: Counter,
    pub rate_limit_redis_calls: Counter,
    /// 1 once the shared Redis limiter is connected.
    pub redis_connected: Gauge,
    pub upstream: Family<UpstreamLabels, Counter>,
    pub retries: Family<TargetLabel, Counter>,
    /// 0 closed, 1 open, 2 half-open.
    pub breaker: Family<TargetLabel, Gauge>,
}

impl GatewayMetrics {
    pub fn register(metrics: &Metrics) -> Self {
        let m = Self::default();
        metrics.register(
            "gateway_rate_limited",
            "Requests refused with 429 rate-limited, by the limit that refused them",
            m.rate_limited.clone(),
        );
        metrics.register(
            "gateway_rate_limit_fallbacks",
            "Rate-limit checks decided in process because Redis did not answer",
            m.rate_limit_fallbacks.clone(),
        );
        metrics.register(
            "gateway_rate_limit_redis_calls",
            "Rate-limit round trips to Redis (a hot key's leased allowance spares most of them)",
            m.rate_limit_redis_calls.clone(),
        );
        metrics.register(
            "gateway_rate_limit_redis_connected",
            "1 when rate limits are counted in the shared Redis, 0 while in process",
            m.redis_connected.clone(),
        );
        metrics.register(
            "gateway_upstream_requests",
            "Requests forwarded to another process, by target and outcome",
            m.upstream.clone(),
        );
        metrics.register(
            "gateway_upstream_retries",
            "Idempotent requests sent again after a failed connection",
            m.retries.clone(),
        );
        metrics.register(
            "gateway_breaker_state",
            "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open",
            m.breaker.clone(),
        );
        m
    }

    /// Counted on every forwarded request, so the labels are borrowed, not allocated.
    pub fn outcome(&self, target: &'static str, outcome: &'static str) {
        self.upstream
            .get_or_create(&UpstreamLabels { target, outcome })
            .inc();
    }
}
