//! Per-source limits: concurrent connections and a token bucket for new ones. IPv6 clients
//! are keyed by their /64, the smallest block one subscriber normally gets (RFC 6177), so
//! rotating addresses inside it buys nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::Rejection;

#[derive(Debug, Clone, Copy)]
pub struct IpLimits {
    pub max_connections: usize,
    pub rate: f64,
    pub burst: f64,
}

#[derive(Debug)]
struct Entry {
    active: usize,
    tokens: f64,
    refreshed: Instant,
}

#[derive(Debug, Default)]
pub struct PerIp {
    table: Mutex<HashMap<IpAddr, Entry>>,
}

/// Holds one concurrent-connection slot of a source.
#[derive(Debug)]
pub struct IpGuard {
    table: Arc<PerIp>,
    key: IpAddr,
}

impl PerIp {
    /// Admits a new connection from `ip` at `now` (time is passed in so tests control it).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
        limits: IpLimits,
    ) -> Result<IpGuard, Rejection> {
        let key = key_of(ip);
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = table.entry(key).or_insert(Entry {
            active: 0,
            tokens: limits.burst,
            refreshed: now,
        });
        let elapsed = now.saturating_duration_since(entry.refreshed).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * limits.rate).min(limits.burst);
        entry.refreshed = now;
        if entry.active >= limits.max_connections {
            return Err(Rejection::PerIpConcurrency);
        }
        if entry.tokens < 1.0 {
            return Err(Rejection::PerIpRate);
        }
        entry.tokens -= 1.0;
        entry.active += 1;
        Ok(IpGuard {
            table: Arc::clone(self),
            key,
        })
    }

    /// Drops entries with no connections whose bucket has refilled: they hold no state
    /// worth keeping. Called periodically so the table tracks live sources only.
    pub fn sweep(&self, now: Instant, limits: IpLimits) {
        let refill = if limits.rate > 0.0 {
            Duration::from_secs_f64((limits.burst / limits.rate).min(3600.0))
        } else {
            Duration::from_secs(3600)
        };
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.retain(|_, e| e.active > 0 || now.saturating_duration_since(e.refreshed) < refill);
    }

    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut table = self
            .table
            .table
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = table.get_mut(&self.key) {
            e.active = e.active.saturating_sub(1);
        }
    }
}

fn key_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: IpLimits = IpLimits {
        max_connections: 3,
        rate: 10.0,
        burst: 5.0,
    };

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    #[test]
    fn concurrency_is_capped_and_released() {
        let t = Arc::new(PerIp::default());
        let now = Instant::now();
        let held: Vec<_> = (0..3)
            .map(|_| t.admit(ip("10.0.0.1"), now, LIMITS).expect("under cap"))
            .collect();
        assert_eq!(
            t.admit(ip("10.0.0.1"), now, LIMITS).err(),
            Some(Rejection::PerIpConcurrency)
        );
        assert!(
            t.admit(ip("10.0.0.2"), now, LIMITS).is_ok(),
            "other sources unaffected"
        );
        drop(held);
        assert!(t.admit(ip("10.0.0.1"), now, LIMITS).is_ok());
    }

    #[test]
    fn rate_refills_over_time() {
        let t = Arc::new(PerIp::default());
        let start = Instant::now();
        for _ in 0..5 {
            drop(t.admit(ip("10.0.0.1"), start, LIMITS).expect("burst"));
        }
        assert_eq!(
            t.admit(ip("10.0.0.1"), start, LIMITS).err(),
            Some(Rejection::PerIpRate)
        );
        let later = start + Duration::from_millis(250);
        for _ in 0..2 {
            drop(
                t.admit(ip("10.0.0.1"), later, LIMITS)
                    .expect("refilled 2.5 tokens"),
            );
        }
        assert_eq!(
            t.admit(ip("10.0.0.1"), later, LIMITS).err(),
            Some(Rejection::PerIpRate)
        );
    }

    #[test]
    fn ipv6_counts_per_slash_64() {
        let t = Arc::new(PerIp::default());
        let now = Instant::now();
        let _a: Vec<_> = ["2001:db8::1", "2001:db8::2", "2001:db8::ffff:1"]
            .iter()
            .map(|a| t.admit(ip(a), now, LIMITS).expect("cap 3"))
            .collect();
        assert_eq!(
            t.admit(ip("2001:db8::9"), now, LIMITS).err(),
            Some(Rejection::PerIpConcurrency)
        );
        assert!(t.admit(ip("2001:db8:0:1::1"), now, LIMITS).is_ok());
    }

    #[test]
    fn sweep_forgets_idle_sources_only() {
        let t = Arc::new(PerIp::default());
        let now = Instant::now();
        let held = t.admit(ip("10.0.0.1"), now, LIMITS).expect("ok");
        drop(t.admit(ip("10.0.0.2"), now, LIMITS).expect("ok"));
        t.sweep(now + Duration::from_secs(10), LIMITS);
        assert_eq!(t.tracked(), 1);
        drop(held);
        t.sweep(now + Duration::from_secs(10), LIMITS);
        assert_eq!(t.tracked(), 0);
    }
}
