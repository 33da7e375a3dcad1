//! Health of one parent: when to stop sending it misses, and when to look at it again.
//!
//! A parent is `Up` until `fall` consecutive failures (a refused connection, a timeout, a 5xx
//! from the parent itself; the caller decides what counts) mark it `Down`, like nginx's
//! `max_fails` and HAProxy's `fall`. While down it gets no traffic, only active probes, the
//! first `probe_interval_min` after it went down, then at a doubling interval capped at
//! `probe_interval_max` so a dead parent costs a bounded, small probe rate. `rise`
//! consecutive probe successes bring it back (HAProxy's `rise`). A probe failure resets the
//! success count and backs off further. While up, a success resets the failure count, and an
//! active check is due every `check_interval` (on top of what traffic reports).
//!
//! Pure: the caller passes the time (`Instant`) and the outcome; this module never reads the
//! clock or touches a socket.

use std::time::{Duration, Instant};

/// When a parent goes down and how it is probed; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HealthPolicy {
    /// Consecutive failures that mark an up parent down (>= 1).
    pub(crate) fall: u32,
    /// Consecutive probe successes that bring a down parent back (>= 1).
    pub(crate) rise: u32,
    /// Active check period of an up parent.
    pub(crate) check_interval: Duration,
    /// First probe delay after a parent goes down.
    pub(crate) probe_interval_min: Duration,
    /// Ceiling of the doubling probe delay.
    pub(crate) probe_interval_max: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            fall: 3,
            rise: 2,
            check_interval: Duration::from_secs(10),
            probe_interval_min: Duration::from_secs(1),
            probe_interval_max: Duration::from_secs(30),
        }
    }
}

/// Up or down, with the counters that decide the next change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Up {
        consecutive_failures: u32,
        next_check: Instant,
    },
    Down {
        since: Instant,
        consecutive_successes: u32,
        probe_interval: Duration,
        next_probe: Instant,
    },
}

/// What an outcome changed, for the log line and the per-parent metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    MarkedDown,
    MarkedUp,
}

/// One parent's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Health {
    state: State,
}

impl Health {
    /// A new parent starts up (as nginx does): the first failures take it down soon enough.
    pub(crate) fn new(now: Instant, policy: &HealthPolicy) -> Health {
        Health {
            state: State::Up { consecutive_failures: 0, next_check: now + policy.check_interval },
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn is_up(&self) -> bool {
        matches!(self.state, State::Up { .. })
    }

    /// A request to, or a probe of, this parent succeeded.
    pub(crate) fn on_success(&mut self, now: Instant, policy: &HealthPolicy) -> Transition {
        match self.state {
            State::Up { .. } => {
                self.state =
                    State::Up { consecutive_failures: 0, next_check: now + policy.check_interval };
                Transition::None
            }
            State::Down { since, consecutive_successes, probe_interval, .. } => {
                let successes = consecutive_successes.saturating_add(1);
                if successes >= policy.rise.max(1) {
                    self.state = State::Up {
                        consecutive_failures: 0,
                        next_check: now + policy.check_interval,
                    };
                    Transition::MarkedUp
                } else {
                    // Confirm soon: the next probe at the smallest interval.
                    self.state = State::Down {
                        since,
                        consecutive_successes: successes,
                        probe_interval,
                        next_probe: now + policy.probe_interval_min,
                    };
                    Transition::None
                }
            }
        }
    }

    /// A request to, or a probe of, this parent failed.
    pub(crate) fn on_failure(&mut self, now: Instant, policy: &HealthPolicy) -> Transition {
        match self.state {
            State::Up { consecutive_failures, next_check } => {
                let failures = consecutive_failures.saturating_add(1);
                if failures >= policy.fall.max(1) {
                    self.state = State::Down {
                        since: now,
                        consecutive_successes: 0,
                        probe_interval: policy.probe_interval_min,
                        next_probe: now + policy.probe_interval_min,
                    };
                    Transition::MarkedDown
                } else {
                    self.state = State::Up { consecutive_failures: failures, next_check };
                    Transition::None
                }
            }
            State::Down { since, probe_interval, .. } => {
                let interval = (probe_interval * 2)
                    .min(policy.probe_interval_max)
                    .max(policy.probe_interval_min);
                self.state = State::Down {
                    since,
                    consecutive_successes: 0,
                    probe_interval: interval,
                    next_probe: now + interval,
                };
                Transition::None
            }
        }
    }

    /// Whether an active check (up) or probe (down) is due at `now`.
    pub(crate) fn check_due(&self, now: Instant) -> bool {
        now >= self.next_check()
    }

    /// When the next active check or probe is due.
    pub(crate) fn next_check(&self) -> Instant {
        match self.state {
            State::Up { next_check, .. } => next_check,
            State::Down { next_probe, .. } => next_probe,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug)]
    enum Ev {
        Ok,
        Fail,
    }

    fn policy() -> HealthPolicy {
        HealthPolicy {
            fall: 3,
            rise: 2,
            check_interval: Duration::from_secs(10),
            probe_interval_min: Duration::from_secs(1),
            probe_interval_max: Duration::from_secs(8),
        }
    }

    /// Runs events one second apart; returns the transitions and the final up/down.
    fn run(events: &[Ev]) -> (Vec<Transition>, bool) {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::new(t0, &p);
        let mut out = Vec::new();
        for (i, ev) in events.iter().enumerate() {
            let now = t0 + Duration::from_secs(i as u64 + 1);
            out.push(match ev {
                Ev::Ok => h.on_success(now, &p),
                Ev::Fail => h.on_failure(now, &p),
            });
        }
        (out, h.is_up())
    }

    #[test]
    fn transitions_table() {
        use Ev::*;
        use Transition::{MarkedDown as D, MarkedUp as U, None as N};
        let cases: &[(&[Ev], &[Transition], bool)] = &[
            (&[Fail, Fail], &[N, N], true),
            (&[Fail, Fail, Fail], &[N, N, D], false),
            // A success between failures resets the count: failures must be consecutive.
            (&[Fail, Fail, Ok, Fail, Fail], &[N, N, N, N, N], true),
            // Down, one good probe is not enough (rise = 2), two are.
            (&[Fail, Fail, Fail, Ok], &[N, N, D, N], false),
            (&[Fail, Fail, Fail, Ok, Ok], &[N, N, D, N, U], true),
            // A failed probe between successes resets the rise count.
            (&[Fail, Fail, Fail, Ok, Fail, Ok], &[N, N, D, N, N, N], false),
            (&[Fail, Fail, Fail, Ok, Ok, Fail, Fail, Fail], &[N, N, D, N, U, N, N, D], false),
        ];
        for (events, want, up) in cases {
            let (got, is_up) = run(events);
            assert_eq!(&got, want, "{events:?}");
            assert_eq!(is_up, *up, "{events:?}");
        }
    }

    /// Probes of a dead parent back off 1, 2, 4, 8, 8, ... seconds: bounded by the ceiling.
    #[test]
    fn probe_interval_doubles_up_to_the_ceiling() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::new(t0, &p);
        for _ in 0..3 {
            h.on_failure(t0, &p);
        }
        assert!(!h.is_up());
        assert_eq!(h.next_check(), t0 + Duration::from_secs(1));
        assert!(!h.check_due(t0));
        let mut now = t0;
        for want in [2u64, 4, 8, 8, 8] {
            now = h.next_check();
            assert!(h.check_due(now));
            h.on_failure(now, &p);
            assert_eq!(h.next_check() - now, Duration::from_secs(want));
        }
        // A good probe asks for confirmation at the smallest interval.
        let now = now + Duration::from_secs(8);
        h.on_success(now, &p);
        assert_eq!(h.next_check() - now, Duration::from_secs(1));
    }

    #[test]
    fn up_parent_is_checked_every_interval() {
        let p = policy();
        let t0 = Instant::now();
        let mut h = Health::new(t0, &p);
        assert_eq!(h.next_check(), t0 + p.check_interval);
        let later = t0 + Duration::from_secs(3);
        h.on_success(later, &p);
        assert_eq!(h.next_check(), later + p.check_interval);
        assert!(!h.check_due(later));
        assert!(h.check_due(later + p.check_interval));
    }
}
