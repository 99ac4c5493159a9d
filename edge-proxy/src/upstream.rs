//! Upstream groups: which address to try next (round robin or first healthy) and active TCP
//! health checks. Health state is keyed by address and outlives reloads, so a reload neither
//! forgets a dead backend nor marks a live one down.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::config::{Balance, HealthConfig, UpstreamConfig};
use crate::metrics::Metrics;

/// Health of one address. New addresses start healthy: traffic flows before the first check.
#[derive(Debug)]
pub struct Health {
    healthy: AtomicBool,
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct HealthRegistry {
    map: Mutex<HashMap<SocketAddr, Arc<Health>>>,
}

impl HealthRegistry {
    pub fn get(&self, addr: SocketAddr) -> Arc<Health> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(map.entry(addr).or_insert_with(|| {
            Arc::new(Health {
                healthy: AtomicBool::new(true),
            })
        }))
    }
}

#[derive(Debug)]
pub struct Group {
    pub name: String,
    members: Vec<(SocketAddr, Arc<Health>)>,
    balance: Balance,
    health: HealthConfig,
    next: AtomicUsize,
}

impl Group {
    pub fn new(cfg: &UpstreamConfig, registry: &HealthRegistry) -> Self {
        Self {
            name: cfg.name.clone(),
            members: cfg
                .addresses
                .iter()
                .map(|&a| (a, registry.get(a)))
                .collect(),
            balance: cfg.balance,
            health: cfg.health.clone(),
            next: AtomicUsize::new(0),
        }
    }

    /// Addresses in the order to try them: healthy ones by policy, then the unhealthy ones as
    /// a last resort (a health check can be wrong; refusing outright would make it always so).
    pub fn candidates(&self) -> Vec<SocketAddr> {
        let n = self.members.len();
        let start = match self.balance {
            Balance::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n.max(1),
            Balance::FirstHealthy => 0,
        };
        let rotated = self.members.iter().cycle().skip(start).take(n);
        let (mut up, down): (Vec<_>, Vec<_>) = rotated.partition(|(_, h)| h.is_healthy());
        up.extend(down);
        up.into_iter().map(|(a, _)| *a).collect()
    }

    /// Runs the active checks of every member until `stop` fires.
    pub fn spawn_checks(&self, stop: &CancellationToken, metrics: &Metrics) {
        if self.health.interval_ms == 0 {
            return;
        }
        for (addr, health) in &self.members {
            let (addr, health, cfg, stop, metrics) = (
                *addr,
                Arc::clone(health),
                self.health.clone(),
                stop.clone(),
                metrics.clone(),
            );
            let group = self.name.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = check_loop(&group, addr, &health, &cfg, &metrics) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    }
}

async fn check_loop(
    group: &str,
    addr: SocketAddr,
    health: &Health,
    cfg: &HealthConfig,
    metrics: &Metrics,
) {
    let (mut ups, mut downs) = (0u32, 0u32);
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let ok = matches!(
            tokio::time::timeout(timeout, TcpStream::connect(addr)).await,
            Ok(Ok(_))
        );
        if ok {
            (ups, downs) = (ups.saturating_add(1), 0);
        } else {
            (ups, downs) = (0, downs.saturating_add(1));
        }
        let was = health.is_healthy();
        let now = if was {
            downs < cfg.fall.max(1)
        } else {
            ups >= cfg.rise.max(1)
        };
        if now != was {
            health.healthy.store(now, Ordering::Relaxed);
            tracing::warn!(upstream = group, %addr, healthy = now, "upstream health changed");
        }
        metrics.set_upstream_health(group, addr, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(balance: Balance, n: u16) -> (Group, HealthRegistry) {
        let reg = HealthRegistry::default();
        let cfg = UpstreamConfig {
            name: "g".into(),
            addresses: (1..=n)
                .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                .collect(),
            balance,
            health: HealthConfig::default(),
        };
        (Group::new(&cfg, &reg), reg)
    }

    #[test]
    fn round_robin_rotates_and_skips_unhealthy() {
        let (g, reg) = group(Balance::RoundRobin, 3);
        let firsts: Vec<u16> = (0..3)
            .filter_map(|_| g.candidates().first().map(SocketAddr::port))
            .collect();
        assert_eq!(firsts, vec![1, 2, 3]);
        reg.get(SocketAddr::from(([127, 0, 0, 1], 2)))
            .healthy
            .store(false, Ordering::Relaxed);
        let order: Vec<u16> = g.candidates().iter().map(SocketAddr::port).collect();
        assert_eq!(order, vec![1, 3, 2], "unhealthy goes last");
    }

    #[test]
    fn first_healthy_prefers_the_first() {
        let (g, reg) = group(Balance::FirstHealthy, 2);
        assert_eq!(g.candidates().first().map(SocketAddr::port), Some(1));
        reg.get(SocketAddr::from(([127, 0, 0, 1], 1)))
            .healthy
            .store(false, Ordering::Relaxed);
        assert_eq!(
            g.candidates()
                .iter()
                .map(SocketAddr::port)
                .collect::<Vec<_>>(),
            vec![2, 1]
        );
    }
}
