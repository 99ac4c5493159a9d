//! Allowance taken from Redis ahead of need. A hot key (one whose lease ran out within a lease's
//! lifetime of the last) asks Redis for twice as many units as last time, up to a quarter of its
//! burst, a tenth of a second of its rate, and [`MAX_UNITS`]; a key that cools down starts again
//! at one unit a call, which is exactly the unleased check. Units not spent within the lifetime
//! are dropped, not given back: by then the key's count in Redis may have moved past them (it
//! runs behind the clock when the key is quiet), and handing them back would count them twice.
//!
//! What leases change: every unit still comes from Redis, so over any stretch of time the
//! gateways together admit no more than the rate allows (the burst, and one unit per emission
//! interval). Within it, a unit taken at one moment may be spent up to a lifetime later, next to
//! units another gateway takes then, so a burst can exceed the configured one by up to the
//! units one lease holds per gateway (at most a quarter of the burst each). The other way,
//! units leased by one gateway and not spent are missing to the others until the key's count
//! catches up (at most a tenth of a second of its rate).

use super::{Clock, Limit};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long leased units may be spent, in microseconds.
pub(super) const LIFETIME_US: u64 = 100_000;
/// The most units one lease takes.
pub(super) const MAX_UNITS: u64 = 64;
/// Past this many keys, the ones with nothing leased are dropped.
const KEYS_SOFT_CAP: usize = 100_000;

/// The most units a lease of `limit` may take.
fn cap(limit: &Limit) -> u64 {
    (limit.burst() / 4)
        .min(LIFETIME_US / limit.emission_us)
        .clamp(1, MAX_UNITS)
}

#[derive(Debug, Default, Clone, Copy)]
struct Lease {
    /// Units leased and not yet spent.
    spare: u64,
    /// When they may no longer be spent.
    expires_us: u64,
    /// The size of the last lease, and when it was taken.
    size: u64,
    taken_us: u64,
}

/// What Redis is asked for, for one limit of the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Want {
    /// Which of the request's limits.
    pub index: usize,
    /// Units wanted (one for this request, the rest leased).
    pub units: u64,
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    /// Every limit had a leased unit: spent, nothing to ask.
    Spent,
    /// Ask Redis for these; the request's other limits each have a unit set aside meanwhile.
    Ask(Vec<Want>),
}

#[derive(Default)]
pub(super) struct Leases {
    pub clock: Clock,
    keys: Mutex<HashMap<String, Lease>>,
}

impl Leases {
    /// Spends one unit of each limit from its lease when every one has a unit; otherwise sets
    /// aside the units there are and says what to ask Redis for.
    pub fn take(&self, limits: &[Limit], now: u64) -> Plan {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let usable = |l: &Lease| l.spare > 0 && l.expires_us > now;
        let mut wants = Vec::new();
        for (index, limit) in limits.iter().enumerate() {
            let lease = keys.get(&limit.key).copied().unwrap_or_default();
            if usable(&lease) {
                continue;
            }
            let hot = lease.size > 0 && now.saturating_sub(lease.taken_us) < LIFETIME_US;
            let units = if hot {
                (lease.size * 2).min(cap(limit))
            } else {
                1
            };
            wants.push(Want { index, units });
        }
        // Set aside (or spend) the units there are; expired ones are dropped.
        for (index, limit) in limits.iter().enumerate() {
            if let Some(lease) = keys.get_mut(&limit.key) {
                if wants.iter().any(|w| w.index == index) {
                    lease.spare = 0;
                } else {
                    lease.spare = lease.spare.saturating_sub(1);
                }
            }
        }
        if wants.is_empty() {
            Plan::Spent
        } else {
            Plan::Ask(wants)
        }
    }

    /// Redis granted `granted[i]` units for `wants[i]`: one is this request's, the rest leased.
    pub fn granted(&self, limits: &[Limit], wants: &[Want], granted: &[u64], now: u64) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if keys.len() > KEYS_SOFT_CAP {
            keys.retain(|_, l| l.spare > 0 && l.expires_us > now);
        }
        for (want, &units) in wants.iter().zip(granted) {
            let Some(limit) = limits.get(want.index) else {
                continue;
            };
            let leased = units.saturating_sub(1);
            // Only a key that may lease is kept: a cold key's entry would be all there is of it.
            if want.units == 1 && leased == 0 && !keys.contains_key(&limit.key) {
                if cap(limit) > 1 {
                    keys.insert(
                        limit.key.clone(),
                        Lease {
                            size: 1,
                            taken_us: now,
                            ..Lease::default()
                        },
                    );
                }
                continue;
            }
            let lease = keys.entry(limit.key.clone()).or_default();
            // Concurrent requests may each have leased: add, do not overwrite.
            lease.spare += leased;
            lease.expires_us = now + LIFETIME_US;
            lease.size = want.units;
            lease.taken_us = now;
        }
    }

    /// Redis refused (or did not answer): the units set aside for the request go back.
    pub fn refused(&self, limits: &[Limit], wants: &[Want]) {
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        for (index, limit) in limits.iter().enumerate() {
            if wants.iter().any(|w| w.index == index) {
                continue;
            }
            if let Some(lease) = keys.get_mut(&limit.key) {
                lease.spare += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_key_never_leases() {
        // Ten a minute: a tenth of a second holds no unit of it.
        assert_eq!(cap(&Limit::ip("slow", 10, 100)), 1);
        // A small burst leases little even when fast.
        assert_eq!(cap(&Limit::ip("narrow", 6_000_000, 8)), 2);
        assert_eq!(cap(&Limit::ip("fast", 6_000_000, 1_000_000)), MAX_UNITS);
    }

    #[test]
    fn a_hot_key_doubles_its_lease_and_a_cold_one_starts_again() {
        let leases = Leases::default();
        let l = [Limit::ip("hot", 6_000_000, 1_000_000)];
        let ask = |now| match leases.take(&l, now) {
            Plan::Ask(w) => w[0].units,
            Plan::Spent => 0,
        };
        let mut now = 1_000;
        let mut sizes = Vec::new();
        for _ in 0..8 {
            let units = ask(now);
            sizes.push(units);
            leases.granted(&l, &[Want { index: 0, units }], &[units], now);
            // Spend the lease.
            for _ in 1..units {
                assert_eq!(leases.take(&l, now), Plan::Spent);
            }
            now += 10;
        }
        assert_eq!(sizes, [1, 2, 4, 8, 16, 32, 64, 64]);
        // Cold: a lifetime later, one unit again.
        now += LIFETIME_US;
        assert_eq!(ask(now), 1);
    }

    #[test]
    fn expired_units_are_dropped_and_set_aside_ones_return_on_refusal() {
        let leases = Leases::default();
        let ip = Limit::ip("ip", 6_000_000, 1_000_000);
        let sub = Limit::ip("sub", 6_000_000, 1_000_000);
        let both = [ip.clone(), sub.clone()];
        let w = |index, units| Want { index, units };
        // Both leased four (after a first lease of one, which made them hot).
        leases.granted(&both, &[w(0, 1), w(1, 1)], &[1, 1], 0);
        assert_eq!(leases.take(&both, 5), Plan::Ask(vec![w(0, 2), w(1, 2)]));
        leases.granted(&both, &[w(0, 2), w(1, 2)], &[4, 4], 5);
        // Three spare each; one request spends one of each.
        assert_eq!(leases.take(&both, 6), Plan::Spent);
        // The subject's lease runs out elsewhere (two more requests for it alone).
        for _ in 0..2 {
            assert_eq!(leases.take(std::slice::from_ref(&sub), 7), Plan::Spent);
        }
        // Now the subject asks; the address's unit is set aside...
        let Plan::Ask(wants) = leases.take(&both, 8) else {
            panic!("the subject's lease is spent");
        };
        assert_eq!(wants, [w(1, 4)]);
        // ...and comes back when Redis refuses: two spare, as before.
        leases.refused(&both, &wants);
        assert_eq!(leases.take(std::slice::from_ref(&ip), 9), Plan::Spent);
        assert_eq!(leases.take(std::slice::from_ref(&ip), 9), Plan::Spent);
        let later = 5 + LIFETIME_US + 1;
        assert_eq!(
            leases.take(std::slice::from_ref(&ip), later),
            Plan::Ask(vec![w(0, 1)])
        );
        // A unit left unspent past the lifetime is dropped: the next request asks Redis.
        leases.granted(std::slice::from_ref(&ip), &[w(0, 1)], &[1], later);
        let l = [ip.clone()];
        leases.granted(&l, &[w(0, 2)], &[2], later);
        let expired = later + LIFETIME_US;
        assert_eq!(leases.take(&l, expired), Plan::Ask(vec![w(0, 1)]));
        assert_eq!(leases.take(&l, expired), Plan::Ask(vec![w(0, 1)]));
    }
}
