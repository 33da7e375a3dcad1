//! A player's pacing and the definition of a late segment.
//!
//! The model is a player that keeps one segment buffered ahead:
//!
//! - Segment 0 is requested when the session starts; playback starts the
//!   moment it has downloaded (that wait is the start-up time, not a stall).
//! - Segment `i ≥ 1` is requested when segment `i−1` starts playing, and is
//!   needed when segment `i−1` has finished playing: its deadline is
//!   `play_start(i−1) + duration(i−1)`.
//! - Segment `i` is **late** when its download finishes after its deadline.
//!   The player then stalls until it arrives (stall = finish − deadline) and
//!   playback resumes from there, so one slow segment is one stall rather
//!   than every later segment counting as late too.
//!
//! With segments of equal duration, a segment is late exactly when it took
//! longer to download than one segment plays. Times are ns; nothing here
//! reads a clock.

#![forbid(unsafe_code)]

/// What became of one downloaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentOutcome {
    /// The first segment of a session: playback starts after this wait (ns).
    Startup(u64),
    /// Arrived before it was needed.
    OnTime,
    /// Arrived after it was needed; the player stalled this long (ns).
    Late(u64),
}

/// Pacing state of one viewing session.
#[derive(Debug, Clone)]
pub struct Player {
    session_start_ns: u64,
    /// When the next segment should be requested.
    next_request_ns: u64,
    /// When the next segment is needed; `None` before playback starts.
    deadline_ns: Option<u64>,
}

impl Player {
    /// A session starting at `start_ns`.
    pub fn new(start_ns: u64) -> Self {
        Self { session_start_ns: start_ns, next_request_ns: start_ns, deadline_ns: None }
    }

    /// When the next segment should be requested.
    pub fn next_request_ns(&self) -> u64 {
        self.next_request_ns
    }

    /// Accounts for the next segment, which finished downloading at `done_ns` and plays for `duration_ns`.
    pub fn segment_downloaded(&mut self, done_ns: u64, duration_ns: u64) -> SegmentOutcome {
        let (play_start, outcome) = match self.deadline_ns {
            None => {
                (done_ns, SegmentOutcome::Startup(done_ns.saturating_sub(self.session_start_ns)))
            }
            Some(deadline) if done_ns > deadline => {
                (done_ns, SegmentOutcome::Late(done_ns - deadline))
            }
            Some(deadline) => (deadline, SegmentOutcome::OnTime),
        };
        self.next_request_ns = play_start;
        self.deadline_ns = Some(play_start + duration_ns);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn paces_and_flags_late_segments() {
        // 4 s segments. Columns: download time of the segment (s), expected outcome,
        // expected next request time (s) after it.
        let mut p = Player::new(0);
        let steps: &[(u64, SegmentOutcome, u64)] = &[
            // Segment 0 takes 1 s: startup 1 s, playback starts at 1 s; request segment 1 then.
            (1, SegmentOutcome::Startup(S), 1),
            // Segment 1 requested at 1, done at 3, needed at 5: on time; plays from 5.
            (2, SegmentOutcome::OnTime, 5),
            // Segment 2 requested at 5, needed at 9, takes 6 s: done at 11, 2 s stall; plays from 11.
            (6, SegmentOutcome::Late(2 * S), 11),
            // Segment 3 requested at 11, needed at 15, takes exactly 4 s: on time (not after the deadline).
            (4, SegmentOutcome::OnTime, 15),
        ];
        for (i, &(download_s, want, next_s)) in steps.iter().enumerate() {
            let requested = p.next_request_ns();
            let got = p.segment_downloaded(requested + download_s * S, 4 * S);
            assert_eq!(got, want, "segment {i}");
            assert_eq!(p.next_request_ns(), next_s * S, "segment {i}");
        }
    }
}
