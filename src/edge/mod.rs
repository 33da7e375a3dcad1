//! The edge mode (`ringcast edge --origin URL`): a caching reverse proxy in front of one HTTP/1.1
//! origin, wiring the rooms of [`crate::cache`] and [`crate::origin`] into the connection loop.
//!
//! Per request (GET or HEAD; other methods 405): a request carrying our `CDN-Loop` id is a loop
//! and answered 508 (RFC 8586 §2 leaves the status open; 508 Loop Detected names the problem,
//! where 403 would hide it), else the cache key → the store. A fresh stored part is a hit,
//! sent from its body file through the ordinary body path (sendfile) with `Age` and
//! `Cache-Status: ringcast; hit; ttl=N`; validators and ranges are evaluated by
//! [`crate::http::conditional`] and [`crate::http::range`] against the stored ones. Anything
//! missing is filled one slice at a time through the process-wide fill table
//! ([`fetch::part`]): one origin request per slice whichever worker asks, the others waiting
//! on its commits. The first slice a response needs is had whole (its metadata makes the
//! head); the others stream read-while-write ([`stream`]). A client range touches (and a
//! cold cache fetches) only its slices.
//!
//! Version safety: every slice sent on one response must have the first slice's `ETag` and
//! total length; otherwise the connection is closed (the head promised a length), so a client
//! gets one version whole or an aborted transfer, never a mix.
//!
//! Stale objects go through [`revalidate`]: conditional revalidation (one per object at a
//! time), stale-while-revalidate (one background revalidation), stale-if-error.
//!
//! Cancellation: a dropped answer drops its fill writer (the fill is handed to a waiter) and
//! any temporary file (deleted).

pub(crate) mod fetch;
pub(crate) mod revalidate;
pub(crate) mod stream;

use std::cell::Cell;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use smallvec::smallvec;

use crate::body::{self, Body, Segment};
use crate::cache::fields::Fields;
use crate::cache::fill::FillTable;
use crate::cache::freshness::Policy;
use crate::cache::key::{CacheKey, KeyRules, ObjectId};
use crate::cache::meta::Meta;
use crate::cache::slice::Slicing;
use crate::cache::status::{CacheStatus, Fwd};
use crate::cache::store::Store;
use crate::config::EdgeConfig;
use crate::conn::record;
use crate::conn::Context;
use crate::http::conditional::{self, Outcome, Preconditions, Validators};
use crate::http::range::{self, RangeDecision};
use crate::http::request::{Method, Request};
use crate::http::response::{HeadWriter, Status};
use crate::origin::conn::{Deadlines, Pool};
use crate::origin::head::HeadLimits;
use crate::origin::request::{is_loop, EdgeIdentity};
use crate::socket::{SendError, Transport};

use fetch::{Failed, Got, Passed, Want};
use revalidate::Stored;

/// Origin deadlines: connect, first byte of the head, and between body reads.
pub(crate) const DEADLINES: Deadlines = Deadlines {
    connect: Duration::from_secs(5),
    first_byte: Duration::from_secs(30),
    idle: Duration::from_secs(30),
};

/// Largest origin response head.
pub(crate) const HEAD_LIMITS: HeadLimits = HeadLimits { max_head_bytes: 64 * 1024 };

/// How long an uncacheable answer sends requests straight to the origin (hit-for-miss).
const HIT_FOR_MISS_SECS: u64 = 10;

/// The name in `Cache-Status`.
const CACHE_NAME: &str = "ringcast";

/// What every worker shares: the store, the fill table and the origin.
pub struct Shared {
    store: Store,
    fills: Arc<FillTable>,
    origin: std::net::SocketAddr,
    origin_host: String,
    slicing: Slicing,
    rules: KeyRules,
    policy: Policy,
    identity: EdgeIdentity,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("edge::Shared").field("origin", &self.origin).finish_non_exhaustive()
    }
}

/// A store lookup.
pub(crate) enum Lookup {
    /// The object's metadata.
    Has(Meta),
    /// Not stored.
    Missing,
    /// The store could not be read.
    Failed,
}

impl Shared {
    /// Opens the store (rebuilding its index) and sets up the fill table.
    pub fn open(cfg: &EdgeConfig) -> anyhow::Result<Arc<Self>> {
        let (store, report) = Store::open(&cfg.cache_dir, cfg.cache_size)
            .with_context(|| format!("opening the cache {}", cfg.cache_dir.display()))?;
        tracing::info!(
            objects = report.objects,
            bytes = report.bytes,
            temporary_deleted = report.temporary_deleted,
            damaged_deleted = report.damaged_deleted,
            "cache opened"
        );
        let slicing = Slicing::new(cfg.slice_size).context("--slice-size")?;
        Ok(Arc::new(Self {
            store,
            fills: FillTable::new(HIT_FOR_MISS_SECS),
            origin: cfg.origin,
            origin_host: cfg.origin_host.clone(),
            slicing,
            rules: KeyRules { ignored_query_params: cfg.ignore_params.clone() },
            policy: Policy {
                default_ttl: cfg.default_ttl.map(|d| d.as_secs()),
                heuristic_percent: 0,
            },
            identity: EdgeIdentity { via_name: "ringcast".into(), cdn_id: cfg.cdn_id.clone() },
        }))
    }

    /// `PURGE` from the admin listener: the object at `target` (an origin-form path and
    /// query), or with `prefix` every object whose key starts with `target`'s; `soft` marks
    /// them stale (the next request revalidates; stale-while-revalidate and stale-if-error
    /// still apply) instead of deleting them. Returns how many objects were purged.
    pub fn purge(&self, target: &str, prefix: bool, soft: bool) -> u64 {
        let key = CacheKey::new("http", &self.origin_host, target, &self.rules);
        let ids = if prefix {
            self.store
                .ids()
                .into_iter()
                .filter(|id| {
                    matches!(self.lookup(id), Lookup::Has(m) if m.key.as_str().starts_with(key.as_str()))
                })
                .collect()
        } else {
            vec![key.id(None)]
        };
        let mut purged = 0;
        for id in ids {
            let Lookup::Has(mut meta) = self.lookup(&id) else { continue };
            let done = if soft {
                meta.freshness.lifetime = 0;
                self.store.commit(&id, &meta).is_ok()
            } else {
                self.store.remove(&id).is_ok()
            };
            if done {
                purged += 1;
                tracing::info!(key = meta.key.as_str(), soft, "purged");
            }
        }
        purged
    }

    pub(crate) fn lookup(&self, id: &ObjectId) -> Lookup {
        match self.store.lookup(id) {
            Ok(Some(m)) => Lookup::Has(m),
            Ok(None) => Lookup::Missing,
            Err(e) => {
                tracing::warn!(error = %e, "cache lookup failed");
                Lookup::Failed
            }
        }
    }
}

/// One worker's edge state: the shared parts and its own origin connection pool.
pub(crate) struct WorkerEdge {
    shared: Arc<Shared>,
    pool: Rc<Pool>,
    pass_seq: Rc<Cell<u64>>,
    worker_id: usize,
}

impl fmt::Debug for WorkerEdge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerEdge").field("shared", &self.shared).finish_non_exhaustive()
    }
}

impl WorkerEdge {
    /// Worker `worker_id`'s state.
    pub(crate) fn new(shared: Arc<Shared>, worker_id: usize) -> Self {
        Self {
            shared,
            pool: Rc::new(Pool::new(16, Duration::from_secs(30))),
            pass_seq: Rc::new(Cell::new(0)),
            worker_id,
        }
    }

    /// The same state for a task of this worker that outlives the request (a background
    /// revalidation).
    fn detached(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            pool: Rc::clone(&self.pool),
            pass_seq: Rc::clone(&self.pass_seq),
            worker_id: self.worker_id,
        }
    }

    /// A name no other temporary pass-through body of this process has.
    fn next_pass(&self) -> String {
        let n = self.pass_seq.get();
        self.pass_seq.set(n + 1);
        format!("{}-{}-{n}", std::process::id(), self.worker_id)
    }
}

/// Seconds since the epoch (the cache's clock).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The field lines of a request head (its first line skipped), as the origin request and the
/// loop check need them.
pub(crate) fn client_fields(head: &[u8]) -> Fields {
    let mut fields = Fields::new();
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let Ok(name) = std::str::from_utf8(&line[..colon]) else { continue };
        fields.push(name, crate::cache::fields::trim_ows(&line[colon + 1..]));
    }
    fields
}

/// What answering sent, for the access log and counters.
pub(crate) struct Answered {
    pub(crate) status: u16,
    pub(crate) pending: record::Pending,
    pub(crate) body_bytes: u64,
    pub(crate) close: bool,
    /// How the cache answered (the `cache` label of the request counter).
    outcome: CacheOutcome,
    /// Time spent waiting for the origin.
    origin_time: Duration,
}

/// How the cache answered, indexed like [`crate::metrics::CACHE_OUTCOMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheOutcome {
    Hit = 0,
    Stale = 1,
    Miss = 2,
    Pass = 3,
    Error = 4,
    Local = 5,
}

impl Answered {
    fn new(
        status: u16,
        pending: record::Pending,
        body_bytes: u64,
        close: bool,
        outcome: CacheOutcome,
    ) -> Self {
        Self { status, pending, body_bytes, close, outcome, origin_time: Duration::ZERO }
    }

    /// The access-log fields.
    pub(crate) fn log(&self) -> Option<crate::access_log::EdgeFields> {
        let cache = crate::metrics::CACHE_OUTCOMES[self.outcome as usize];
        Some(crate::access_log::EdgeFields { cache, origin: self.origin_time })
    }

    fn with(mut self, outcome: CacheOutcome) -> Self {
        self.outcome = outcome;
        self
    }
}

/// Answers `req` in edge mode, sending the response, and counts it.
pub(crate) async fn answer<T: Transport>(
    ctx: &Context,
    edge: &WorkerEdge,
    socket: &T,
    req: &Request,
    client: &Fields,
    close: bool,
) -> Result<Answered, SendError> {
    let origin_time = Cell::new(Duration::ZERO);
    let mut answered = answer_request(ctx, edge, socket, req, client, close, &origin_time).await?;
    answered.origin_time = origin_time.get();
    record::metrics(|m| {
        m.cache_outcomes[answered.outcome as usize].inc();
        if answered.outcome == CacheOutcome::Hit {
            m.cache_hit_bytes.add(answered.body_bytes);
        }
    });
    Ok(answered)
}

/// Answers `req` in edge mode, sending the response.
async fn answer_request<T: Transport>(
    ctx: &Context,
    edge: &WorkerEdge,
    socket: &T,
    req: &Request,
    client: &Fields,
    close: bool,
    origin_time: &Cell<Duration>,
) -> Result<Answered, SendError> {
    let shared = &edge.shared;
    match req.method {
        Method::Get | Method::Head => {}
        _ => {
            return simple(
                ctx,
                socket,
                req,
                Status::MethodNotAllowed,
                close,
                &[("Allow", "GET, HEAD")],
                None,
            )
            .await
        }
    }
    if is_loop(client, &shared.identity.cdn_id) {
        tracing::info!(target = %String::from_utf8_lossy(&req.target), "refused: CDN-Loop names this edge");
        return simple(ctx, socket, req, Status::LoopDetected, close, &[], None).await;
    }
    let target = match std::str::from_utf8(&req.target) {
        Ok(t) if t.starts_with('/') => t,
        _ => return simple(ctx, socket, req, Status::BadRequest, close, &[], None).await,
    };
    let key = CacheKey::new("http", &shared.origin_host, target, &shared.rules);
    let id = key.id(None);
    let client_range = req.fields.range.as_deref().filter(|_| req.method == Method::Get);
    let first_offset = client_range.and_then(range_start).unwrap_or(0);
    let k0 = shared.slicing.index_of(first_offset);
    let want =
        Want { id, key: &key, target, client, minor_version: req.minor_version, origin_time };
    let mut how = Fetched {
        fetched: false,
        collapsed: false,
        fwd: Fwd::UriMiss,
        had: true,
        fwd_status: None,
        detail: None,
        stale_hit: false,
    };
    match revalidate::usable(edge, &want).await {
        Stored::Fresh => {}
        Stored::StaleWhileRevalidate => {
            how.fwd = Fwd::Stale;
            how.stale_hit = true;
            how.detail = Some("stale-while-revalidate");
        }
        Stored::Refreshed => {
            how.fwd = Fwd::Stale;
            how.fwd_status = Some(304);
        }
        Stored::StaleOnError(status) => {
            how.fwd = Fwd::Stale;
            how.fwd_status = Some(status);
            how.detail = Some("stale-if-error");
        }
        Stored::Miss { stale } => {
            how.had = false;
            if stale {
                how.fwd = Fwd::Stale;
            }
        }
        Stored::Fail(code) => {
            let status = if code == 504 { Status::GatewayTimeout } else { Status::BadGateway };
            let cs = CacheStatus {
                fwd: Some(Fwd::Stale),
                detail: Some("origin-error"),
                ..Default::default()
            };
            let answered = simple(ctx, socket, req, status, close, &[], Some(cs)).await?;
            return Ok(answered.with(CacheOutcome::Error));
        }
    }
    let fwd = how.fwd;
    let (meta, fetched, collapsed) = match fetch::part(edge, &want, k0).await {
        Ok(Got::Stored { meta, fetched, collapsed }) => (meta, fetched, collapsed),
        Ok(Got::Pass(p)) => return send_pass(ctx, socket, req, p, fwd, close).await,
        Err(Failed::Unsatisfiable(total)) => {
            let status = CacheStatus { fwd: Some(fwd), ..Default::default() };
            return unsatisfiable(ctx, socket, req, total, close, Some(status)).await;
        }
        Err(Failed::Origin(code)) => {
            let status = if code == 504 { Status::GatewayTimeout } else { Status::BadGateway };
            let cs =
                CacheStatus { fwd: Some(fwd), detail: Some("origin-error"), ..Default::default() };
            let answered = simple(ctx, socket, req, status, close, &[], Some(cs)).await?;
            return Ok(answered.with(CacheOutcome::Error));
        }
        Err(Failed::Store) => {
            return simple(ctx, socket, req, Status::InternalServerError, close, &[], None).await
        }
    };
    send_stored(ctx, edge, socket, req, &want, meta, Fetched { fetched, collapsed, ..how }, close)
        .await
}

/// How the first part was had.
struct Fetched {
    fetched: bool,
    collapsed: bool,
    fwd: Fwd,
    /// The object was stored (fresh) before this request, perhaps only some of its slices.
    had: bool,
    /// The origin's status when it differs from the one sent (a `304`, an error).
    fwd_status: Option<u16>,
    /// `Cache-Status` detail.
    detail: Option<&'static str>,
    /// Served stale without waiting for the origin (`stale-while-revalidate`).
    stale_hit: bool,
}

/// The first byte position of a `bytes=FIRST-...` range (the slice to fetch first); `None` for
/// a suffix range or anything else (then the object starts from slice 0).
fn range_start(value: &[u8]) -> Option<u64> {
    let v = std::str::from_utf8(value).ok()?.trim();
    let set = v.strip_prefix("bytes=")?;
    let first = set.split(',').next()?.trim();
    let (start, _) = first.split_once('-')?;
    start.trim().parse().ok()
}

/// Fields of the stored answer never copied onto a response: framing and those written here.
fn replayed(name: &str) -> bool {
    const SKIP: &[&str] = &[
        "content-length",
        "content-range",
        "transfer-encoding",
        "date",
        "age",
        "server",
        "accept-ranges",
    ];
    !SKIP.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Writes `fields` (those [`replayed`]) as field lines.
fn write_fields(fields: &Fields, out: &mut Vec<u8>) {
    for (name, value) in fields.iter() {
        if replayed(name) {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Sends a stored (or being stored) object: conditionals and ranges evaluated against it,
/// then its bytes slice by slice.
#[allow(clippy::too_many_arguments, reason = "one call site; the request's whole state")]
async fn send_stored<T: Transport>(
    ctx: &Context,
    edge: &WorkerEdge,
    socket: &T,
    req: &Request,
    want: &Want<'_>,
    meta: Meta,
    how: Fetched,
    close: bool,
) -> Result<Answered, SendError> {
    let now = unix_now();
    let total = meta.total;
    let etag =
        meta.fields.get("etag").and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("").to_string();
    let last_modified = meta
        .fields
        .get("last-modified")
        .and_then(crate::cache::freshness::http_secs)
        .map_or(UNIX_EPOCH, |s| UNIX_EPOCH + Duration::from_secs(s));
    let f = &req.fields;
    let pre = Preconditions {
        if_match: f.if_match.as_deref(),
        if_none_match: f.if_none_match.as_deref(),
        if_modified_since: f.if_modified_since.as_deref(),
        if_unmodified_since: f.if_unmodified_since.as_deref(),
        if_range: f.if_range.as_deref(),
    };
    // Without an ETag no entity-tag condition can match.
    let tag = if etag.is_empty() { "\"\u{0}\"" } else { etag.as_str() };
    let validators = Validators { etag: tag, last_modified };
    let mut extra = Vec::new();
    let _ = std::io::Write::write_fmt(
        &mut extra,
        format_args!("Age: {}\r\n", meta.freshness.current_age(now)),
    );
    let hit =
        how.had && !how.fetched && !how.collapsed && (how.fwd == Fwd::UriMiss || how.stale_hit);
    let range_allowed = match conditional::evaluate(&pre, &validators) {
        Outcome::Proceed { range_allowed } => range_allowed,
        Outcome::NotModified => {
            let mut head = HeadWriter::new(Status::NotModified, ctx.date.borrow_mut().now());
            write_fields(&meta.fields, &mut extra);
            cache_status(&meta, now, hit, &how, false, &mut extra);
            head.raw(&extra);
            let status = Status::NotModified;
            let answered =
                deliver(ctx, socket, req, head, Body::empty(), true, status, close).await?;
            let outcome = if hit {
                CacheOutcome::Hit
            } else if how.fwd == Fwd::Stale {
                CacheOutcome::Stale
            } else {
                CacheOutcome::Miss
            };
            return Ok(answered.with(outcome));
        }
        Outcome::PreconditionFailed => {
            return simple(ctx, socket, req, Status::PreconditionFailed, close, &[], None).await
        }
    };
    let decision = match req.fields.range.as_deref() {
        Some(v) if req.method == Method::Get && range_allowed => {
            range::evaluate(v, total, ctx.config.max_ranges)
        }
        _ => RangeDecision::Full,
    };
    let (status, start, len) = match decision {
        RangeDecision::Single(r) => (Status::PartialContent, r.start, r.len),
        // Several ranges are answered with the whole object (RFC 9110 §14.2 allows it).
        RangeDecision::Full | RangeDecision::Multi(_) => (Status::Ok, 0, total),
        RangeDecision::NotSatisfiable => {
            return unsatisfiable(ctx, socket, req, total, close, None).await;
        }
    };
    let slicing = meta.slicing;
    let partial = how.had
        && how.fwd == Fwd::UriMiss
        && (how.fetched
            || slicing.is_some_and(|s| {
                len > 0 && s.indices(start, start + len - 1).any(|k| !meta.slices.has(k))
            }));
    let mut head = HeadWriter::new(status, ctx.date.borrow_mut().now());
    head.content_length(len);
    if status == Status::PartialContent {
        head.field("Content-Range", &format!("bytes {}-{}/{total}", start, start + len - 1));
    }
    write_fields(&meta.fields, &mut extra);
    extra.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    cache_status(&meta, now, hit && !partial, &how, partial, &mut extra);
    head.raw(&extra);
    let keep10 = req.http10_keep_alive() && !close;
    let mut head_bytes = Some(head.finish(close, keep10));
    let outcome = if hit && !partial {
        CacheOutcome::Hit
    } else if how.fwd == Fwd::Stale {
        CacheOutcome::Stale
    } else {
        CacheOutcome::Miss
    };
    // What the counters call the body's mechanism: that of one range of its length (the
    // slices go by it, each from its own file).
    let probe = Body { file: None, segments: smallvec![Segment::File { offset: 0, len }] };
    let head_only = req.method == Method::Head || len == 0;
    let pending = record::before_send(head_bytes.as_deref().unwrap_or_default(), &probe, head_only);
    let strategy = ctx.config.body_strategy;
    if head_only {
        let sent = body::send(
            socket,
            head_bytes.take().unwrap_or_default(),
            &Body::empty(),
            true,
            strategy,
        )
        .await?;
        return Ok(Answered::new(status.code(), pending, sent, close, outcome));
    }
    let end = start + len;
    let parts: Vec<(u64, u64, u64)> = match slicing {
        None => vec![(0, 0, total)],
        Some(s) => s
            .indices(start, end - 1)
            .filter_map(|k| s.bounds(k, total).map(|(b, l)| (k, b, l)))
            .collect(),
    };
    let version = stream::Version { etag: &etag, total };
    let mut sent = 0;
    for (k, part_start, part_len) in parts {
        let lo = start.max(part_start) - part_start;
        let hi = end.min(part_start + part_len) - part_start;
        sent += stream::send_slice(
            edge,
            socket,
            want,
            &version,
            k,
            (lo, hi),
            &mut head_bytes,
            strategy,
        )
        .await?;
    }
    Ok(Answered::new(status.code(), pending, sent, close, outcome))
}

/// The error that closes a connection whose response cannot be completed.
fn abort(why: &'static str) -> SendError {
    tracing::info!(reason = why, "edge response aborted");
    SendError::io("edge", io::Error::other(why))
}

/// Appends the `Cache-Status` line for a stored object.
fn cache_status(meta: &Meta, now: u64, hit: bool, how: &Fetched, partial: bool, out: &mut Vec<u8>) {
    let ttl = Some(meta.freshness.ttl(now));
    let cs = if hit {
        CacheStatus { hit: true, ttl, detail: how.detail, ..Default::default() }
    } else {
        CacheStatus {
            fwd: Some(if partial { Fwd::Partial } else { how.fwd }),
            fwd_status: how.fwd_status,
            detail: how.detail,
            stored: how.fetched,
            collapsed: how.collapsed,
            ttl,
            ..Default::default()
        }
    };
    cs.write_field(CACHE_NAME, out);
}

/// 416 for an object of `total` bytes (RFC 9110 §15.5.17: `Content-Range: bytes */total`).
async fn unsatisfiable<T: Transport>(
    ctx: &Context,
    socket: &T,
    req: &Request,
    total: u64,
    close: bool,
    cs: Option<CacheStatus<'_>>,
) -> Result<Answered, SendError> {
    let cr = range::unsatisfied_content_range(total);
    let fields = [("Content-Range", cr.as_str())];
    simple(ctx, socket, req, Status::RangeNotSatisfiable, close, &fields, cs).await
}

/// Ends `head` and sends it with `body`.
#[allow(clippy::too_many_arguments, reason = "the response's parts, each used once")]
async fn deliver<T: Transport>(
    ctx: &Context,
    socket: &T,
    req: &Request,
    head: HeadWriter,
    body: Body,
    head_only: bool,
    status: Status,
    close: bool,
) -> Result<Answered, SendError> {
    let keep10 = req.http10_keep_alive() && !close;
    let head = head.finish(close, keep10);
    let pending = record::before_send(&head, &body, head_only);
    let sent = body::send(socket, head, &body, head_only, ctx.config.body_strategy).await?;
    Ok(Answered::new(status.code(), pending, sent, close, CacheOutcome::Local))
}

/// A short answer made here (errors, 405, 508, 416), with `Cache-Status` when it says something.
async fn simple<T: Transport>(
    ctx: &Context,
    socket: &T,
    req: &Request,
    status: Status,
    close: bool,
    fields: &[(&str, &str)],
    cs: Option<CacheStatus<'_>>,
) -> Result<Answered, SendError> {
    let text = format!("{} {}\n", status.code(), status.reason());
    let mut head = HeadWriter::new(status, ctx.date.borrow_mut().now());
    head.content_length(text.len() as u64).field("Content-Type", "text/plain; charset=utf-8");
    for (n, v) in fields {
        head.field(n, v);
    }
    if let Some(cs) = cs {
        let mut line = Vec::new();
        cs.write_field(CACHE_NAME, &mut line);
        head.raw(&line);
    }
    let head_only = req.method == Method::Head;
    deliver(ctx, socket, req, head, Body::bytes(text), head_only, status, close).await
}

/// Sends an origin answer that was not stored, whole, as the origin gave it.
async fn send_pass<T: Transport>(
    ctx: &Context,
    socket: &T,
    req: &Request,
    p: Passed,
    fwd: Fwd,
    close: bool,
) -> Result<Answered, SendError> {
    let bodiless = matches!(p.status, 204 | 304) || p.status < 200;
    let mut head = HeadWriter::new(Status::Ok, ctx.date.borrow_mut().now());
    if !bodiless {
        head.content_length(p.len);
    }
    let mut extra = Vec::new();
    write_fields(&p.fields, &mut extra);
    CacheStatus {
        fwd: Some(fwd),
        fwd_status: Some(p.status),
        detail: Some(p.detail),
        ..Default::default()
    }
    .write_field(CACHE_NAME, &mut extra);
    head.raw(&extra);
    let keep10 = req.http10_keep_alive() && !close;
    let mut bytes = head.finish(close, keep10);
    let line = status_line(p.status);
    bytes.splice(..Status::Ok.line().len(), line.into_bytes());
    let body = Body {
        file: Some(Rc::clone(&p.file)),
        segments: smallvec![Segment::File { offset: 0, len: p.len }],
    };
    let head_only = bodiless || req.method == Method::Head || p.len == 0;
    let pending = record::before_send(&bytes, &body, head_only);
    let sent = body::send(socket, bytes, &body, head_only, ctx.config.body_strategy).await?;
    let outcome = CacheOutcome::Pass;
    Ok(Answered::new(p.status, pending, sent, close, outcome))
}

/// The status line for an origin's status code.
fn status_line(code: u16) -> String {
    let reason = match code {
        200 => "OK",
        201 => "Created",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    };
    format!("HTTP/1.1 {code} {reason}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_of_a_range() {
        // RFC 9110 §14.1.2: first-pos of the first range; a suffix range has none.
        let cases: &[(&str, Option<u64>)] = &[
            ("bytes=0-99", Some(0)),
            ("bytes=1048576-", Some(1_048_576)),
            ("bytes= 5-9, 20-30", Some(5)),
            ("bytes=-500", None),
            ("items=0-1", None),
            ("bytes=x-1", None),
        ];
        for (v, want) in cases {
            assert_eq!(range_start(v.as_bytes()), *want, "{v}");
        }
    }

    #[test]
    fn request_fields_are_read_from_the_head() {
        let f = client_fields(b"GET / HTTP/1.1\r\nHost: a\r\nCDN-Loop:  edge-x \r\n\r\n");
        assert_eq!(f.get("cdn-loop"), Some(&b"edge-x"[..]));
        assert_eq!(f.get("host"), Some(&b"a"[..]));
        assert_eq!(f.len(), 2);
    }

    #[test]
    fn status_lines_of_origin_answers() {
        assert_eq!(status_line(404), "HTTP/1.1 404 Not Found\r\n");
        assert_eq!(status_line(299), "HTTP/1.1 299 \r\n");
    }
}
