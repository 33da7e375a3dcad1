//! One simulated HLS viewer.
//!
//! A viewer runs sessions back to back until the run ends: fetch the master
//! playlist, pick variant `v mod n` (viewers spread evenly over the
//! variants), fetch its media playlist, then fetch the segments paced by
//! [`Player`]. When a VOD playlist (`#EXT-X-ENDLIST`) is exhausted the viewer
//! starts a new session. Playlists without `#EXT-X-ENDLIST` (live) are played
//! through once per session as well; the viewer does not poll them for new
//! segments.
//!
//! Every fetch is a recorded request (latency from the time the player wanted
//! it). Only the playlist's own origin is ever contacted: a URI pointing
//! elsewhere is a `parse` error and ends the session. A failed fetch ends the
//! session too, and the viewer retries after [`RETRY_NS`].
//!
//! The end of the run (or of the viewer's `--requests` share) ends the viewer,
//! not just its session: no fetch is started once the clock or the fetch's
//! scheduled time has reached the end, so no session, playlist or segment is
//! begun after it. A fetch already in flight finishes, bounded by `--timeout`.

use std::rc::Rc;

use super::conn::{BodyMode, Conn, Response};
use super::outcome::fetch;
use super::timer::Timer;
use super::{Seen, ThreadCtx};
use crate::hls::player::{Player, SegmentOutcome};
use crate::hls::playlist::{self, Playlist};
use crate::http::write_get;
use crate::schedule::request_share;
use crate::stats::{ns_to_us, ErrorKind};
use crate::sys::monotonic_ns;
use crate::url::Url;

/// Pause before a new session after a failed fetch.
pub const RETRY_NS: u64 = 1_000_000_000;

/// Why a session stopped before its playlist was played through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// The run is over (its end, or this viewer's `--requests` share): the viewer stops.
    RunOver,
    /// A fetch failed or a playlist was unusable (already recorded): the viewer retries.
    Failed,
}

struct Viewer {
    ctx: Rc<ThreadCtx>,
    conn: Conn,
    timer: Timer,
    /// Requests this viewer may still send (`--requests` share), if limited.
    budget: Option<u64>,
}

impl Viewer {
    fn exhausted(&self, at_ns: u64) -> bool {
        self.ctx.past_end(at_ns) || self.budget == Some(0)
    }

    /// `Err(RunOver)` if a fetch scheduled at `intended_ns` may not start: the run is over
    /// by then or already now.
    fn may_start(&self, intended_ns: u64) -> Result<(), Stop> {
        if self.exhausted(intended_ns.max(monotonic_ns())) {
            Err(Stop::RunOver)
        } else {
            Ok(())
        }
    }

    /// Fetches `url` as intended at `intended_ns` and records it, unless the run is over.
    async fn get(
        &mut self,
        url: &Url,
        intended_ns: u64,
        mode: BodyMode,
    ) -> Result<(Response, u64), Stop> {
        self.may_start(intended_ns)?;
        if let Some(b) = self.budget.as_mut() {
            *b -= 1;
        }
        let _ = self.timer.sleep_until(intended_ns).await;
        write_get(self.conn.request_buf(), &url.authority, &url.target, None);
        let fetched = fetch(&self.ctx, &mut self.conn, intended_ns, 0, mode).await;
        match fetched.result {
            Ok(r) => Ok((r, fetched.done_ns)),
            Err(_) => Err(Stop::Failed),
        }
    }

    /// Fetches (as intended at `intended_ns`) and parses a playlist.
    async fn playlist(&mut self, url: &Url, intended_ns: u64) -> Result<Playlist, Stop> {
        let keep = BodyMode { keep: true, ..BodyMode::default() };
        let (resp, done) = self.get(url, intended_ns, keep).await?;
        let text = String::from_utf8_lossy(resp.body.as_deref().unwrap_or_default()).into_owned();
        playlist::parse(&text).map_err(|_| {
            self.parse_error(done);
            Stop::Failed
        })
    }

    /// Resolves a playlist URI, refusing other origins.
    fn resolve(&self, base: &Url, uri: &str) -> Result<Url, Stop> {
        match base.join(uri) {
            Ok(u) if u.same_origin(base) => Ok(u),
            _ => {
                self.parse_error(monotonic_ns());
                Err(Stop::Failed)
            }
        }
    }

    fn parse_error(&self, now: u64) {
        self.ctx.record(now, now, now, Err((ErrorKind::Parse, 0)), &Seen::default());
    }

    /// One session: `Ok` once its playlist has been played through.
    ///
    /// It counts as a session once its first playlist fetch has started.
    async fn session(&mut self, index: usize, master: &Url) -> Result<(), Stop> {
        let start = monotonic_ns();
        let first = self.playlist(master, start).await;
        if !matches!(first, Err(Stop::RunOver)) && start >= self.ctx.record_from_ns {
            self.ctx.stats.borrow_mut().hls.sessions += 1;
        }
        let (media_url, media) = match first? {
            Playlist::Media(m) => (master.clone(), m),
            Playlist::Master(variants) => {
                let url = self.resolve(master, &variants[index % variants.len()].uri)?;
                match self.playlist(&url, monotonic_ns()).await? {
                    Playlist::Media(m) => (url, m),
                    Playlist::Master(_) => {
                        self.parse_error(monotonic_ns());
                        return Err(Stop::Failed);
                    }
                }
            }
        };
        let mode = BodyMode { discard: self.ctx.cfg.discard, ..BodyMode::default() };
        let mut player = Player::new(start);
        for segment in &media.segments {
            let at = player.next_request_ns();
            // Checked before resolving, so a bad URI past the end records no error either.
            self.may_start(at)?;
            let url = self.resolve(&media_url, &segment.uri)?;
            let (_, done) = self.get(&url, at, mode).await?;
            let outcome = player.segment_downloaded(done, segment.duration_ns);
            if at >= self.ctx.record_from_ns {
                let mut stats = self.ctx.stats.borrow_mut();
                let hls = &mut stats.hls;
                hls.segments += 1;
                hls.segment_download_us.saturating_record(ns_to_us(done.saturating_sub(at)));
                match outcome {
                    SegmentOutcome::Startup(ns) => hls.startup_us.saturating_record(ns_to_us(ns)),
                    SegmentOutcome::OnTime => {}
                    SegmentOutcome::Late(stall) => {
                        hls.late_segments += 1;
                        hls.stall_us.saturating_record(ns_to_us(stall));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs viewer `index` until the end of the run or its share of `--requests`.
pub async fn run_viewer(ctx: Rc<ThreadCtx>, index: usize) {
    let Some(hls) = ctx.cfg.hls.clone() else {
        return;
    };
    let timer = Timer::new();
    let _ = timer.sleep_until(ctx.start_ns).await;
    let budget =
        ctx.cfg.requests.map(|n| request_share(n, ctx.cfg.connections as u64, index as u64));
    let mut viewer = Viewer { conn: Conn::new(ctx.clone()), ctx, timer, budget };
    loop {
        match viewer.session(index, &hls.url).await {
            Ok(()) => {}
            Err(Stop::RunOver) => break,
            Err(Stop::Failed) => {
                let retry_at = monotonic_ns() + RETRY_NS;
                if viewer.exhausted(retry_at) {
                    break;
                }
                let _ = viewer.timer.sleep_until(retry_at).await;
            }
        }
    }
}
