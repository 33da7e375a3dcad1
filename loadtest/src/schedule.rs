//! Open-loop request schedule: when each request was meant to be sent.
//!
//! With `--rate R` over `L` lanes (one per worker thread), the run's requests
//! are evenly spaced `1/R` apart, dealt round robin to the lanes: request `j`
//! of lane `k` is global slot `s = j·L + k`, intended at `start + s/R`. A
//! request sent after its slot (no connection was free) carries the lateness
//! in its latency (coordinated-omission correction); the service time, from
//! the actual send, is recorded beside it. Pure arithmetic, no clock: the
//! caller supplies times.

#![forbid(unsafe_code)]

/// One lane.s share of an open-loop schedule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoop {
    /// Time of slot 0, ns.
    pub start_ns: u64,
    /// Requests per second over all lanes.
    pub rate: f64,
    /// Connections sharing the schedule.
    pub lanes: u64,
    /// This lane.s index.
    pub index: u64,
}

impl OpenLoop {
    /// Global slot of this lane.s request `j`.
    pub fn slot(&self, j: u64) -> u64 {
        j * self.lanes + self.index
    }

    /// Intended send time of this lane.s request `j`, ns.
    pub fn intended_ns(&self, j: u64) -> u64 {
        // f64 is exact to 2^53 ns (104 days) of schedule; the product is rounded down.
        let offset = self.slot(j) as f64 * 1e9 / self.rate;
        // `as` saturates; the offset is non-negative and far below u64::MAX for any real run.
        #[allow(clippy::cast_possible_truncation)]
        let offset = offset as u64;
        self.start_ns + offset
    }

    /// How many of this lane.s requests `j_from..limit` are intended before `end_ns`.
    pub fn due_before(&self, j_from: u64, end_ns: u64, limit: Option<u64>) -> u64 {
        let mut n = 0;
        let mut j = j_from;
        // Bounded: stops at the first request at or after end_ns.
        while !matches!(limit, Some(l) if j >= l) && self.intended_ns(j) < end_ns {
            n += 1;
            j += 1;
        }
        n
    }
}

/// Connection `index`'s share of `total` requests split over `connections` (differs by at most one).
pub fn request_share(total: u64, connections: u64, index: u64) -> u64 {
    total / connections + u64::from(index < total % connections)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_interleave_evenly() {
        // 1000 req/s over 4 connections: the run's requests are 1 ms apart.
        let conns: Vec<OpenLoop> = (0..4)
            .map(|index| OpenLoop { start_ns: 5_000, rate: 1000.0, lanes: 4, index })
            .collect();
        let mut times: Vec<u64> =
            conns.iter().flat_map(|c| (0..3).map(|j| c.intended_ns(j))).collect();
        times.sort_unstable();
        let want: Vec<u64> = (0..12).map(|s| 5_000 + s * 1_000_000).collect();
        assert_eq!(times, want);
    }

    #[test]
    fn due_before_counts_the_remaining_slots() {
        let c = OpenLoop { start_ns: 0, rate: 100.0, lanes: 2, index: 1 };
        // Slots 1, 3, 5, 7, 9 are at 10, 30, 50, 70, 90 ms: five before 100 ms.
        let cases: &[(u64, u64, Option<u64>, u64)] = &[
            (0, 100_000_000, None, 5),
            (2, 100_000_000, None, 3),
            (0, 100_000_000, Some(4), 4),
            (0, 10_000_000, None, 0),
            (5, 100_000_000, None, 0),
        ];
        for &(from, end, limit, want) in cases {
            assert_eq!(c.due_before(from, end, limit), want, "{from} {end} {limit:?}");
        }
    }

    #[test]
    fn shares_add_up() {
        for (total, conns) in [(10u64, 3u64), (2, 5), (100, 10), (7, 1)] {
            let shares: Vec<u64> = (0..conns).map(|k| request_share(total, conns, k)).collect();
            assert_eq!(shares.iter().sum::<u64>(), total);
            assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
        }
    }
}
