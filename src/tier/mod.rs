//! The shield tier: which parent an edge sends a miss to.
//!
//! [`ring`] places cache keys on parents with nginx-compatible ketama; [`health`] decides when
//! a parent is down and when to probe it again; [`Tier`] puts them together: for a key, the
//! up parents in ring order (the first is the owner, the rest the failover order), or, when
//! every parent is down, what [`AllDown`] says (go to the origin, or fail the request).
//!
//! Pure: the caller passes the time and reports outcomes; the tier never opens a socket. A
//! reload ([`Tier::reload`]) swaps in a new ring and keeps the health of parents that stay.

pub(crate) mod health;
pub(crate) mod ring;

#[cfg(test)]
mod nginx_parity;

use std::time::Instant;

use health::{Health, HealthPolicy, Transition};
use ring::{Candidates, Parent, Ring, RingError};

/// What to do with a miss when no parent is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AllDown {
    /// Fetch from the origin directly (more origin load, no outage).
    Origin,
    /// Answer 502/504: the origin is shielded from the whole edge tier's misses.
    Fail,
}

/// Where a miss goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// Try these parents in order (indexes into [`Tier::parents`]); never empty.
    Parents(Candidates),
    /// No parent is up and the policy is [`AllDown::Origin`].
    Origin,
    /// No parent is up and the policy is [`AllDown::Fail`].
    Fail,
}

/// The parent ring with one health record per parent.
#[derive(Debug)]
pub(crate) struct Tier {
    ring: Ring,
    health: Vec<Health>,
    policy: HealthPolicy,
    all_down: AllDown,
}

impl Tier {
    pub(crate) fn new(
        parents: Vec<Parent>,
        policy: HealthPolicy,
        all_down: AllDown,
        now: Instant,
    ) -> Result<Tier, RingError> {
        let ring = Ring::new(parents)?;
        let health = vec![Health::new(now, &policy); ring.parents().len()];
        Ok(Tier { ring, health, policy, all_down })
    }

    pub(crate) fn parents(&self) -> &[Parent] {
        self.ring.parents()
    }

    pub(crate) fn health(&self, parent: usize) -> &Health {
        &self.health[parent]
    }

    /// Where the miss for `key` goes: the up parents in ring order, else the all-down policy.
    pub(crate) fn route(&self, key: &[u8]) -> Route {
        let mut up = self.ring.candidates(key);
        up.retain(|i| self.health[*i].is_up());
        if !up.is_empty() {
            return Route::Parents(up);
        }
        match self.all_down {
            AllDown::Origin => Route::Origin,
            AllDown::Fail => Route::Fail,
        }
    }

    /// Records the outcome of a request to, or a probe of, `parent`.
    pub(crate) fn report(&mut self, parent: usize, ok: bool, now: Instant) -> Transition {
        let h = &mut self.health[parent];
        if ok {
            h.on_success(now, &self.policy)
        } else {
            h.on_failure(now, &self.policy)
        }
    }

    /// The parents whose active check or probe is due at `now`.
    pub(crate) fn checks_due(&self, now: Instant) -> impl Iterator<Item = usize> + '_ {
        (0..self.health.len()).filter(move |i| self.health[*i].check_due(now))
    }

    /// Swaps in a new parent list. Parents that stay keep their health; new ones start up.
    /// Returns the share of keys that changed owner (see [`Ring::reload`]).
    pub(crate) fn reload(&mut self, parents: Vec<Parent>, now: Instant) -> Result<f64, RingError> {
        let reload = self.ring.reload(parents)?;
        let health = reload
            .ring
            .parents()
            .iter()
            .map(|p| {
                self.ring
                    .parents()
                    .iter()
                    .position(|old| old.addr == p.addr)
                    .map_or_else(|| Health::new(now, &self.policy), |i| self.health[i])
            })
            .collect();
        let moved = reload.moved_share;
        self.ring = reload.ring;
        self.health = health;
        Ok(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn parents(n: u8) -> Vec<Parent> {
        (0..n).map(|i| Parent::new(SocketAddr::from(([127, 0, 0, 2 + i], 8080)), 1)).collect()
    }

    fn fail_fully(tier: &mut Tier, parent: usize, now: Instant) {
        for _ in 0..tier.policy.fall {
            tier.report(parent, false, now);
        }
        assert!(!tier.health(parent).is_up());
    }

    #[test]
    fn down_parents_are_skipped_in_ring_order() {
        let now = Instant::now();
        let mut tier = Tier::new(parents(3), HealthPolicy::default(), AllDown::Fail, now).unwrap();
        let key = b"/video/a.mp4";
        let Route::Parents(all) = tier.route(key) else { panic!("all up") };
        assert_eq!(all.len(), 3);
        fail_fully(&mut tier, all[0], now);
        assert_eq!(tier.route(key), Route::Parents(all[1..].into()));
        fail_fully(&mut tier, all[1], now);
        assert_eq!(tier.route(key), Route::Parents(all[2..].into()));
    }

    #[test]
    fn all_down_follows_the_policy() {
        let now = Instant::now();
        for (policy, want) in [(AllDown::Origin, Route::Origin), (AllDown::Fail, Route::Fail)] {
            let mut tier = Tier::new(parents(2), HealthPolicy::default(), policy, now).unwrap();
            fail_fully(&mut tier, 0, now);
            fail_fully(&mut tier, 1, now);
            assert_eq!(tier.route(b"/x"), want);
            // Down parents are the ones due for a probe once the first interval passes.
            let later = now + HealthPolicy::default().probe_interval_min;
            assert_eq!(tier.checks_due(later).collect::<Vec<_>>(), vec![0, 1]);
        }
    }

    #[test]
    fn reload_keeps_health_of_staying_parents() {
        let now = Instant::now();
        let mut tier = Tier::new(parents(3), HealthPolicy::default(), AllDown::Fail, now).unwrap();
        fail_fully(&mut tier, 1, now);
        let down = tier.parents()[1].addr;
        // Drop the first, keep the down one, add a new one.
        let mut next = parents(4);
        next.remove(0);
        let moved = tier.reload(next, now).unwrap();
        assert!(moved > 0.0 && moved < 1.0, "{moved}");
        for (i, p) in tier.parents().iter().enumerate() {
            assert_eq!(tier.health(i).is_up(), p.addr != down, "{}", p.addr);
        }
    }
}
