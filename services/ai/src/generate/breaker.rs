//! A circuit breaker for one model: after too many failures in a window it opens and the model
//! is skipped at once (no connection attempt, no timeout to wait out) until, after a while, one
//! request may probe it again.
//!
//! Closed: outcomes are counted over `window`; when at least `min_requests` were seen and at
//! least `failure_ratio` of them failed, it opens. Open: every request is refused for `open_for`.
//! Half-open: one probe is let through; its success closes the breaker, its failure opens it
//! again. A probe whose outcome never comes (its caller went away) does not block the breaker
//! for ever: after another `open_for` a new probe is let through.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Outcomes remembered at most, whatever the window: a burst cannot grow the breaker.
const MAX_SAMPLES: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerSettings {
    pub window: Duration,
    pub min_requests: usize,
    pub failure_ratio: f64,
    pub open_for: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
enum State {
    Closed,
    Open { since: Instant },
    HalfOpen { probe_since: Instant },
}

#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: State,
    /// (when, failed) of recent outcomes, oldest first.
    samples: VecDeque<(Instant, bool)>,
}

impl Breaker {
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner {
                state: State::Closed,
                samples: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The state is a few plain values, consistent after any panic elsewhere.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn state(&self) -> BreakerState {
        match self.lock().state {
            State::Closed => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Whether a request may go to the model now. Every admitted request must be followed by
    /// [`Breaker::record`].
    pub fn admit(&self) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.state {
            State::Closed => true,
            State::Open { since } | State::HalfOpen { probe_since: since }
                if now.duration_since(since) >= self.settings.open_for =>
            {
                inner.state = State::HalfOpen { probe_since: now };
                true
            }
            State::Open { .. } | State::HalfOpen { .. } => false,
        }
    }

    /// The outcome of an admitted request: `failed` when the model was unreachable, too slow or
    /// broke off; a refusal of the request as such says nothing about the model's health.
    pub fn record(&self, failed: bool) {
        let now = Instant::now();
        let mut inner = self.lock();
        match inner.state {
            State::HalfOpen { .. } => {
                inner.samples.clear();
                inner.state = if failed {
                    State::Open { since: now }
                } else {
                    State::Closed
                };
            }
            // A request admitted before the breaker opened: its outcome changes nothing.
            State::Open { .. } => {}
            State::Closed => {
                let window = self.settings.window;
                while inner
                    .samples
                    .front()
                    .is_some_and(|(t, _)| now.duration_since(*t) > window)
                {
                    inner.samples.pop_front();
                }
                if inner.samples.len() >= MAX_SAMPLES {
                    inner.samples.pop_front();
                }
                inner.samples.push_back((now, failed));
                let total = inner.samples.len();
                let failures = inner.samples.iter().filter(|(_, f)| *f).count();
                if failed
                    && total >= self.settings.min_requests.max(1)
                    && failures as f64 >= self.settings.failure_ratio * total as f64
                {
                    inner.samples.clear();
                    inner.state = State::Open { since: now };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(open_ms: u64) -> BreakerSettings {
        BreakerSettings {
            window: Duration::from_secs(10),
            min_requests: 3,
            failure_ratio: 0.5,
            open_for: Duration::from_millis(open_ms),
        }
    }

    #[test]
    fn opens_after_enough_failures_and_probes_once() {
        let b = Breaker::new(settings(30));
        for _ in 0..2 {
            assert!(b.admit());
            b.record(true);
        }
        assert_eq!(b.state(), BreakerState::Closed, "fewer than min_requests");
        assert!(b.admit());
        b.record(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.admit());
        std::thread::sleep(Duration::from_millis(40));
        assert!(b.admit(), "the probe");
        assert!(!b.admit(), "only one probe at a time");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        b.record(false);
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.admit());
    }

    #[test]
    fn a_failed_probe_opens_again() {
        let b = Breaker::new(settings(20));
        for _ in 0..3 {
            b.admit();
            b.record(true);
        }
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.admit());
        b.record(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.admit());
    }

    #[test]
    fn successes_keep_it_closed() {
        let b = Breaker::new(settings(20));
        for i in 0..20 {
            assert!(b.admit());
            // One failure in four stays under the ratio.
            b.record(i % 4 == 3);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn a_lost_probe_does_not_block_it_for_ever() {
        let b = Breaker::new(settings(20));
        for _ in 0..3 {
            b.admit();
            b.record(true);
        }
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.admit()); // never recorded
        assert!(!b.admit());
        std::thread::sleep(Duration::from_millis(30));
        assert!(b.admit());
    }
}
