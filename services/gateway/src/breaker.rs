//! A circuit breaker per upstream: closed → open when the failure rate over a sliding window
//! passes the threshold → half-open after a pause, letting one probe through → closed when the
//! probe succeeds, open again when it fails.
//!
//! While open, callers get `503 upstream-unavailable` at once instead of each waiting for a
//! timeout against a service that is down: that keeps the gateway's own connections and memory
//! free for the routes that still work.

use crate::config::BreakerConfig;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Closed,
    Open,
    HalfOpen,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half-open",
        }
    }
}

/// Permission to send one request; hand it back with the outcome.
#[derive(Debug)]
pub struct Ticket {
    generation: u64,
    probe: bool,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// Bumped on every phase change, so that outcomes of requests admitted under an earlier
    /// phase do not count in the new one.
    generation: u64,
    open_until: Instant,
    probe_in_flight: bool,
    /// Two adjacent buckets make a sliding window: the previous bucket is weighted by how
    /// much of it still overlaps the window.
    bucket_start: Instant,
    current: Counts,
    previous: Counts,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    ok: u32,
    failed: u32,
}

#[derive(Debug)]
pub struct Breaker {
    window: Duration,
    min_requests: u32,
    failure_ratio: f64,
    open_for: Duration,
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(cfg: &BreakerConfig) -> Self {
        let now = Instant::now();
        Self {
            window: Duration::from_secs(cfg.window_secs.max(1)),
            min_requests: cfg.min_requests.max(1),
            failure_ratio: cfg.failure_ratio,
            open_for: Duration::from_secs(cfg.open_secs),
            state: Mutex::new(State {
                phase: Phase::Closed,
                generation: 0,
                open_until: now,
                probe_in_flight: false,
                bucket_start: now,
                current: Counts::default(),
                previous: Counts::default(),
            }),
        }
    }

    pub fn phase(&self) -> Phase {
        self.lock().phase
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock only means another request panicked mid-update; the counters are
        // still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A ticket to send, or how long until the breaker will try again.
    pub fn admit(&self, now: Instant) -> Result<Ticket, Duration> {
        let mut s = self.lock();
        match s.phase {
            Phase::Closed => Ok(Ticket {
                generation: s.generation,
                probe: false,
            }),
            Phase::Open if now >= s.open_until => {
                s.phase = Phase::HalfOpen;
                s.generation += 1;
                s.probe_in_flight = true;
                Ok(Ticket {
                    generation: s.generation,
                    probe: true,
                })
            }
            Phase::Open => Err(s.open_until - now),
            Phase::HalfOpen if !s.probe_in_flight => {
                s.probe_in_flight = true;
                Ok(Ticket {
                    generation: s.generation,
                    probe: true,
                })
            }
            // One probe at a time; the others are told to come back shortly.
            Phase::HalfOpen => Err(Duration::from_secs(1)),
        }
    }

    /// The outcome of a request sent with `ticket`. Returns the new phase when it changed.
    pub fn record(&self, ticket: Ticket, ok: bool, now: Instant) -> Option<Phase> {
        let mut s = self.lock();
        if ticket.generation != s.generation {
            return None;
        }
        if ticket.probe {
            s.probe_in_flight = false;
            return Some(if ok {
                self.close(&mut s, now)
            } else {
                self.open(&mut s, now)
            });
        }
        self.roll(&mut s, now);
        if ok {
            s.current.ok += 1;
        } else {
            s.current.failed += 1;
        }
        let (total, failed) = self.window_counts(&s, now);
        if !ok && total >= f64::from(self.min_requests) && failed / total >= self.failure_ratio {
            return Some(self.open(&mut s, now));
        }
        None
    }

    fn open(&self, s: &mut State, now: Instant) -> Phase {
        s.phase = Phase::Open;
        s.generation += 1;
        s.open_until = now + self.open_for;
        s.current = Counts::default();
        s.previous = Counts::default();
        Phase::Open
    }

    fn close(&self, s: &mut State, now: Instant) -> Phase {
        s.phase = Phase::Closed;
        s.generation += 1;
        s.bucket_start = now;
        s.current = Counts::default();
        s.previous = Counts::default();
        Phase::Closed
    }

    fn roll(&self, s: &mut State, now: Instant) {
        let age = now.saturating_duration_since(s.bucket_start);
        if age >= self.window * 2 {
            s.previous = Counts::default();
            s.current = Counts::default();
            s.bucket_start = now;
        } else if age >= self.window {
            s.previous = s.current;
            s.current = Counts::default();
            s.bucket_start += self.window;
        }
    }

    fn window_counts(&self, s: &State, now: Instant) -> (f64, f64) {
        let into_bucket = now.saturating_duration_since(s.bucket_start).as_secs_f64();
        let weight = (1.0 - into_bucket / self.window.as_secs_f64()).clamp(0.0, 1.0);
        let total = f64::from(s.current.ok + s.current.failed)
            + weight * f64::from(s.previous.ok + s.previous.failed);
        let failed = f64::from(s.current.failed) + weight * f64::from(s.previous.failed);
        (total, failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(&BreakerConfig {
            window_secs: 10,
            min_requests: 4,
            failure_ratio: 0.5,
            open_secs: 5,
        })
    }

    fn send(b: &Breaker, now: Instant, ok: bool) -> Option<Phase> {
        let t = b.admit(now).expect("admitted");
        b.record(t, ok, now)
    }

    #[test]
    fn few_failures_do_not_open_it() {
        let b = breaker();
        let t0 = Instant::now();
        assert_eq!(send(&b, t0, false), None);
        assert_eq!(send(&b, t0, false), None);
        assert_eq!(b.phase(), Phase::Closed);
        // Mostly successes: failure rate stays below half.
        for _ in 0..10 {
            send(&b, t0, true);
        }
        assert_eq!(send(&b, t0, false), None);
        assert_eq!(b.phase(), Phase::Closed);
    }

    #[test]
    fn opens_then_probes_then_closes() {
        let b = breaker();
        let t0 = Instant::now();
        send(&b, t0, true);
        send(&b, t0, false);
        send(&b, t0, false);
        assert_eq!(send(&b, t0, false), Some(Phase::Open));
        let wait = b.admit(t0 + Duration::from_secs(1)).unwrap_err();
        assert_eq!(wait, Duration::from_secs(4));

        // After the pause, exactly one probe goes through.
        let later = t0 + Duration::from_secs(5);
        let probe = b.admit(later).unwrap();
        assert!(b.admit(later).is_err(), "a second probe must wait");
        assert_eq!(b.record(probe, false, later), Some(Phase::Open));

        let again = later + Duration::from_secs(5);
        let probe = b.admit(again).unwrap();
        assert_eq!(b.record(probe, true, again), Some(Phase::Closed));
        assert!(b.admit(again).is_ok());
    }

    #[test]
    fn late_outcomes_from_before_the_change_are_ignored() {
        let b = breaker();
        let t0 = Instant::now();
        let stale = b.admit(t0).unwrap();
        for _ in 0..4 {
            send(&b, t0, false);
        }
        assert_eq!(b.phase(), Phase::Open);
        assert_eq!(b.record(stale, true, t0), None);
        assert_eq!(b.phase(), Phase::Open);
    }

    #[test]
    fn old_failures_slide_out_of_the_window() {
        let b = breaker();
        let t0 = Instant::now();
        for _ in 0..3 {
            send(&b, t0, false);
        }
        // Twenty seconds on, the three old failures no longer count.
        let later = t0 + Duration::from_secs(20);
        assert_eq!(send(&b, later, false), None);
        assert_eq!(b.phase(), Phase::Closed);
    }
}
