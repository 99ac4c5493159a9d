//! The in-process limiter: GCRA over a map, for one machine and while Redis does not answer.

use super::{Clock, Decision, Limit};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct LocalGcra {
    pub clock: Clock,
    tats: Mutex<HashMap<String, u64>>,
}

/// Past this many keys, the ones whose allowance is full again are dropped.
const LOCAL_KEYS_SOFT_CAP: usize = 100_000;

impl LocalGcra {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Rate;

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let g = LocalGcra::default();
        let l = [Limit::ip("a", 60, 5)];
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
        assert_eq!(
            g.check(&[Limit::ip("b", 60, 5)], 2_000_000),
            Decision::Allow
        );
    }

    #[test]
    fn rates_above_one_a_millisecond_hold() {
        // 6,000,000 a minute is one every 10 µs; milliseconds could not tell it from 60,000.
        let g = LocalGcra::default();
        let l = [Limit::ip("fast", 6_000_000, 1)];
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
        let ip = Limit::ip("ip", 60, 10);
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
