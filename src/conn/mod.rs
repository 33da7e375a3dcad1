//! The per-connection loop: wait for bytes → parse → plan → send, until the client leaves, a
//! timeout fires, or the server drains.
//!
//! Buffers: an idle connection owns nothing but its socket and this task. Bytes are received
//! into the worker's one receive buffer and parsed there; only the unparsed tail of a request
//! (a head split across reads, or pipelined requests) is copied into a per-connection `pending`
//! vector, which is freed again as soon as it empties.
//!
//! Timers: the first request must arrive within the head timeout from accept; later ones may
//! wait the keep-alive timeout for their first byte, then have the head timeout for the rest —
//! measured from that first byte, never reset by more data (a client trickling one byte a
//! second is cut off). Sends are bounded by the send timeout per stall.
//!
//! Transports: the loop is generic over `socket::Transport`, so plain sockets and HTTPS
//! (`tls::TlsSocket`, after its handshake) run the same parsing, planning and timeouts; the
//! plain instance is compiled as it was before TLS existed.
//!
//! Cancellation: the worker drops this future only at the end of a drain; the socket and any
//! open file close on drop.

pub mod deadline;
pub mod plan;
pub mod record;
pub mod redirect;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use monoio::net::TcpStream;
use monoio::time::Instant;
use smallvec::SmallVec;
use tracing::{debug, info};

use crate::body;
use crate::config::Config;
use crate::conn::deadline::{Deadlines, Wait};
use crate::fs::cache::FileCache;
use crate::fs::Root;
use crate::http::cache::CacheRules;
use crate::http::date::DateCache;
use crate::http::mime::MimeTable;
use crate::http::request::{self, Framing, Limits, ParseError, Parsed, Request};
use crate::http::response::Status;
use crate::socket::{BodyPath, SendError, Socket, Transport};

/// Size of the per-worker receive buffer.
pub const RECV_BUFFER_BYTES: usize = 64 * 1024;

/// How long a lingering close waits for the client to finish sending after an error response.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Everything one worker's connections share. Owned by one thread; never crosses cores.
#[derive(Debug)]
pub struct Context {
    /// The configuration (immutable).
    pub config: Arc<Config>,
    /// Index of this worker.
    pub worker_id: usize,
    /// This worker's descriptor for the served root.
    pub root: Root,
    /// Media types.
    pub mime: MimeTable,
    /// `Cache-Control` rules.
    pub cache: CacheRules,
    /// The open-file cache.
    pub files: RefCell<FileCache>,
    /// The cached `Date` value.
    pub date: RefCell<DateCache>,
    /// The receive buffer every connection of this worker reads into.
    pub recv_buf: RefCell<Box<[u8]>>,
    /// Deadlines of connections waiting for bytes (keep-alive and head timeouts).
    pub deadlines: Deadlines,
    /// Open connections.
    pub active: Cell<usize>,
    /// Set when the server is draining: finish the current response, then close.
    pub draining: Cell<bool>,
    /// Sequence for multipart boundaries.
    pub boundary_seq: Cell<u64>,
    /// This worker's TLS state, when HTTPS listeners are configured.
    pub tls: Option<crate::tls::WorkerTls>,
    /// Edge mode: requests are answered from the cache and the origin, not the root.
    pub(crate) edge: Option<crate::edge::WorkerEdge>,
}

impl Context {
    /// A worker's context.
    pub fn new(config: Arc<Config>, worker_id: usize, root: Root) -> Self {
        let mime = MimeTable::new(&config.mime_overrides);
        let cache = CacheRules::new(&config.cache_overrides);
        let files = RefCell::new(FileCache::new(config.file_cache));
        Self {
            config,
            worker_id,
            root,
            mime,
            cache,
            files,
            date: RefCell::new(DateCache::new()),
            recv_buf: RefCell::new(vec![0; RECV_BUFFER_BYTES].into_boxed_slice()),
            deadlines: Deadlines::default(),
            active: Cell::new(0),
            draining: Cell::new(false),
            boundary_seq: Cell::new(0),
            tls: None,
            edge: None,
        }
    }

    /// The context in edge mode, sharing the process-wide cache `edge`.
    pub fn with_edge(mut self, edge: Arc<crate::edge::Shared>) -> Self {
        self.edge = Some(crate::edge::WorkerEdge::new(edge, self.worker_id));
        self
    }

    /// The context with this worker's TLS state.
    pub fn with_tls(mut self, tls: crate::tls::WorkerTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// The HTTPS port plain requests are redirected to (`--redirect-http`).
    fn redirect_port(&self) -> Option<u16> {
        self.tls.as_ref().filter(|_| self.config.redirect_http).map(|t| t.https_port)
    }

    /// Starts draining: idle connections are woken with end-of-stream and close; busy ones
    /// close after their current response.
    pub fn start_drain(&self) {
        self.draining.set(true);
        self.deadlines.wake_idle();
    }

    fn limits(&self) -> Limits {
        Limits {
            max_head_bytes: self.config.max_header_bytes,
            max_target_bytes: self.config.max_uri_bytes,
        }
    }
}

/// Keeps the active-connection count right however the task ends.
pub(crate) struct Registration<'a> {
    ctx: &'a Context,
}

impl<'a> Registration<'a> {
    /// Counts a connection as open until the registration drops.
    pub(crate) fn new(ctx: &'a Context) -> Self {
        ctx.active.set(ctx.active.get() + 1);
        record::opened();
        Self { ctx }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.ctx.active.set(self.ctx.active.get() - 1);
        record::closed();
    }
}

/// What the receive step produced.
#[allow(
    clippy::large_enum_variant,
    reason = "built and consumed once per request; boxing would add an allocation"
)]
enum Job {
    /// A request to answer; with `Some` host when it is redirected to HTTPS instead (the
    /// inner `None`: no usable `Host` field).
    /// In edge mode the request's field lines ride along (the origin request and the loop
    /// check need them).
    Request(
        Request,
        Option<Box<record::ClientFields>>,
        Option<Box<Option<String>>>,
        Option<Box<crate::cache::fields::Fields>>,
    ),
    /// An unparseable request: answer with its status and close.
    Reject(ParseError),
}

/// The jobs one read produced: almost always one (pipelining is rare), held inline.
type Jobs = SmallVec<[Job; 1]>;

/// Per-connection state between reads.
struct Conn {
    /// Unparsed bytes of the next request(s).
    pending: Vec<u8>,
    /// Request-body bytes still to be read and thrown away.
    discard: u64,
    /// Responses completed on this connection.
    served: u64,
}

/// Serves one accepted connection to the end.
///
/// The socket is set up before the task starts, so the task holds the socket alone rather than
/// the stream it was made from beside it (every byte of this future is paid by every idle
/// connection).
pub fn serve(ctx: Rc<Context>, stream: TcpStream, peer: SocketAddr) -> impl Future<Output = ()> {
    let socket = Socket::new(stream, ctx.config.send_timeout);
    async move {
        let accepted = Instant::now();
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                debug!(%peer, error = %e, "socket setup failed");
                return;
            }
        };
        let _registration = Registration::new(&ctx);
        let mut conn = Conn { pending: Vec::new(), discard: 0, served: 0 };
        if let Err(e) = run(&ctx, &socket, &mut conn, &peer, accepted).await {
            log_end(&peer, &e);
        }
    }
}

/// Serves requests over a transport already set up (TLS after its handshake) until the
/// connection ends; the caller registers the connection and logs the error.
pub(crate) async fn serve_on<T: Transport>(
    ctx: &Context,
    transport: &T,
    peer: &SocketAddr,
    accepted: Instant,
) -> Result<(), SendError> {
    let mut conn = Conn { pending: Vec::new(), discard: 0, served: 0 };
    run(ctx, transport, &mut conn, peer, accepted).await
}

/// Counts and logs the error that ended a connection.
pub(crate) fn log_end(peer: &SocketAddr, e: &SendError) {
    record::send_error(e);
    if e.is_disconnect() {
        debug!(%peer, error = %e, "client went away");
    } else {
        info!(%peer, error = %e, "connection closed on error");
    }
}

async fn run<T: Transport>(
    ctx: &Context,
    socket: &T,
    conn: &mut Conn,
    peer: &SocketAddr,
    accepted: Instant,
) -> Result<(), SendError> {
    let mut head_started: Option<Instant> = None;
    let deadline = loop {
        let keepalive = conn.pending.is_empty()
            && conn.discard == 0
            && conn.served > 0
            && head_started.is_none();
        if keepalive && ctx.draining.get() {
            return Ok(());
        }
        let (wait, deadline) = if keepalive {
            (Wait::Idle, Instant::now() + ctx.config.keepalive_timeout)
        } else {
            (Wait::Head, head_started.unwrap_or(accepted) + ctx.config.header_timeout)
        };
        let ready = {
            let _armed = ctx.deadlines.arm(socket.fd(), wait, deadline);
            socket.readable().await
        };
        if let Err(e) = ready {
            return Err(SendError::io("poll", e));
        }
        let jobs = match receive(ctx, socket, conn) {
            Ok(Some(jobs)) => jobs,
            // End of stream: the client closed, or a deadline fired and shut our read side.
            // (Handled after the loop: an await inside this match would keep the received jobs'
            // space in every idle connection's task.)
            Ok(None) => break deadline,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // Over TLS: part of a record arrived. It is the start of a head, so a client
                // trickling partial records is bounded by the head timeout, not kept alive.
                if T::ENCRYPTED && head_started.is_none() {
                    head_started = Some(Instant::now());
                }
                continue;
            }
            Err(e) => return Err(SendError::io("recv", e)),
        };
        if jobs.is_empty() {
            // Part of a head (or of a discarded body) arrived: the head clock starts now.
            if !conn.pending.is_empty() && head_started.is_none() {
                head_started = Some(Instant::now());
            }
            continue;
        }
        // Boxed: the answering state (the jobs, plan, body, send) is large and lives only while
        // responses are being sent; unboxed it would sit in every idle connection's task.
        if !Box::pin(answer_all(ctx, socket, conn, jobs, peer)).await? {
            return Ok(());
        }
        head_started = if conn.pending.is_empty() { None } else { Some(Instant::now()) };
    };
    if !conn.pending.is_empty() && Instant::now() >= deadline {
        // RFC 9110 §15.5.9: a head that did not arrive in time.
        info!(%peer, timeout = ?ctx.config.header_timeout, "request head timed out");
        record::conn_error(crate::metrics::ConnError::HeaderTimeout);
        Box::pin(request_timeout(ctx, socket)).await;
    }
    Ok(())
}

/// Answers `jobs` in order. `Ok(false)` when the connection must close now.
async fn answer_all<T: Transport>(
    ctx: &Context,
    socket: &T,
    conn: &mut Conn,
    jobs: Jobs,
    peer: &SocketAddr,
) -> Result<bool, SendError> {
    for job in jobs {
        if !answer(ctx, socket, job, peer).await? {
            return Ok(false);
        }
        conn.served += 1;
    }
    Ok(true)
}

/// Answers one job. `Ok(false)` when the connection must close now.
async fn answer<T: Transport>(
    ctx: &Context,
    socket: &T,
    job: Job,
    peer: &SocketAddr,
) -> Result<bool, SendError> {
    let started = Instant::now();
    let (request, client, redirect, edge_fields) = match job {
        Job::Request(r, client, redirect, edge_fields) => (r, client, redirect, edge_fields),
        Job::Reject(e) => {
            record::conn_error(crate::metrics::ConnError::BadRequest);
            info!(%peer, status = e.status().code(), error = %e, "rejected request");
            let plan = plan::status_response(ctx, e.status(), true, false, |_| {});
            let pending = record::before_send(&plan.head, &plan.body, false);
            let sent =
                body::send(socket, plan.head, &plan.body, false, ctx.config.body_strategy).await?;
            let status = plan.status.code();
            record::after_send(*peer, None, None, status, pending, sent, started.elapsed());
            Box::pin(linger_close(ctx, socket)).await;
            return Ok(false);
        }
    };
    let has_body = request.framing != Framing::None;
    let close = ctx.draining.get() || closes_after(&request, ctx.config.max_discard_bytes);
    if has_body && !close && request.expect_continue {
        // RFC 9110 §10.1.1: we will read (and discard) the content.
        socket.write_all(b"HTTP/1.1 100 Continue\r\n\r\n", false).await?;
    }
    if let (Some(edge), None) = (&ctx.edge, &redirect) {
        let fields = edge_fields.map(|f| *f).unwrap_or_default();
        let out =
            Box::pin(crate::edge::answer(ctx, edge, socket, &request, &fields, close)).await?;
        let took = started.elapsed();
        let client = client.as_deref();
        let (status, pending, body, log) = (out.status, out.pending, out.body_bytes, out.log());
        record::after_send_with(*peer, Some(&request), client, status, pending, body, took, log);
        return finish_answer(ctx, socket, out.close, has_body).await;
    }
    let plan = match redirect {
        Some(host) => redirect_plan(ctx, socket, &request, host.as_deref(), close),
        None => plan::plan(ctx, &request, close),
    };
    debug!(%peer, method = %request.method_token, target = %String::from_utf8_lossy(&request.target), status = plan.status.code(), "request");
    let pending = record::before_send(&plan.head, &plan.body, plan.head_only);
    let sent =
        body::send(socket, plan.head, &plan.body, plan.head_only, ctx.config.body_strategy).await?;
    let status = plan.status.code();
    record::after_send(
        *peer,
        Some(&request),
        client.as_deref(),
        status,
        pending,
        sent,
        started.elapsed(),
    );
    if let Ok(files) = ctx.files.try_borrow() {
        record::file_cache(files.stats());
    }
    finish_answer(ctx, socket, plan.close, has_body).await
}

/// After a response: closes the connection when it must. `Ok(false)` when it closed.
async fn finish_answer<T: Transport>(
    ctx: &Context,
    socket: &T,
    close: bool,
    has_body: bool,
) -> Result<bool, SendError> {
    if close {
        if has_body {
            Box::pin(linger_close(ctx, socket)).await;
        } else {
            socket.shutdown_write();
        }
        return Ok(false);
    }
    Ok(true)
}

/// The 301 to HTTPS for `request` (`--redirect-http`), on a plain socket.
fn redirect_plan<T: Transport>(
    ctx: &Context,
    socket: &T,
    request: &Request,
    host: Option<&str>,
    close: bool,
) -> plan::Plan {
    let local = match socket.body_path() {
        BodyPath::Plain(s) => s.local_addr().ok(),
        BodyPath::Encrypted(_) => None,
    };
    let local = local.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let port = ctx.redirect_port().unwrap_or(443);
    let to = redirect::location(host, local, port, &request.target);
    let mut plan = plan::status_response(
        ctx,
        Status::MovedPermanently,
        close,
        request.http10_keep_alive(),
        |h| {
            h.field("Location", &to);
        },
    );
    plan.head_only |= request.method == crate::http::request::Method::Head;
    plan
}

/// Sends a 408 for a head that did not arrive in time (RFC 9110 §15.5.9).
async fn request_timeout<T: Transport>(ctx: &Context, socket: &T) {
    let plan = plan::status_response(ctx, Status::RequestTimeout, true, false, |_| {});
    let _ = body::send(socket, plan.head, &plan.body, false, ctx.config.body_strategy).await;
}

/// Receives what is there and parses every complete request in it. `None` at end of stream.
fn receive<T: Transport>(ctx: &Context, socket: &T, conn: &mut Conn) -> io::Result<Option<Jobs>> {
    let mut buf = ctx.recv_buf.borrow_mut();
    let n = socket.try_recv(&mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    let limits = ctx.limits();
    // Only a plain connection is redirected.
    let limits = ParseRules {
        http: limits,
        redirect: !T::ENCRYPTED && ctx.redirect_port().is_some(),
        edge: ctx.edge.is_some(),
    };
    let mut jobs = Jobs::new();
    if conn.pending.is_empty() {
        let consumed = parse_all(&buf[..n], conn, &limits, ctx.config.max_discard_bytes, &mut jobs);
        conn.pending.extend_from_slice(&buf[consumed..n]);
    } else {
        conn.pending.extend_from_slice(&buf[..n]);
        let pending = std::mem::take(&mut conn.pending);
        let consumed = parse_all(&pending, conn, &limits, ctx.config.max_discard_bytes, &mut jobs);
        if consumed < pending.len() {
            conn.pending = pending[consumed..].to_vec();
        }
    }
    if conn.pending.is_empty() {
        conn.pending = Vec::new(); // give back the capacity while idle
    }
    Ok(Some(jobs))
}

/// Parses requests from `data` until it runs out or a request ends the connection. Returns the
/// bytes consumed (heads and discarded content).
fn parse_all(
    data: &[u8],
    conn: &mut Conn,
    limits: &ParseRules,
    max_discard: u64,
    jobs: &mut Jobs,
) -> usize {
    let mut at = 0;
    loop {
        if conn.discard > 0 {
            let skip = usize::try_from(conn.discard).unwrap_or(usize::MAX).min(data.len() - at);
            at += skip;
            conn.discard -= skip as u64;
            if conn.discard > 0 {
                return at;
            }
        }
        if at == data.len() {
            return at;
        }
        match request::parse(&data[at..], &limits.http) {
            Ok(Parsed::Complete(req, head_len)) => {
                at += head_len;
                let ends = closes_after(&req, max_discard);
                if let Framing::Length(n) = req.framing {
                    if n <= max_discard {
                        conn.discard = n;
                    }
                }
                let head = &data[at - head_len..at];
                let client = record::client_fields(head);
                let redirect = limits.redirect.then(|| Box::new(redirect::host_of(head)));
                let edge = limits.edge.then(|| Box::new(crate::edge::client_fields(head)));
                jobs.push(Job::Request(req, client, redirect, edge));
                if ends {
                    // Nothing after this request is read: the connection closes after it.
                    return data.len();
                }
            }
            Ok(Parsed::Partial) => return at,
            Err(e) => {
                jobs.push(Job::Reject(e));
                return data.len();
            }
        }
    }
}

/// What parsing needs besides the bytes.
struct ParseRules {
    /// The request-head limits.
    http: Limits,
    /// Requests are answered with a redirect to HTTPS.
    redirect: bool,
    /// Edge mode: the request's field lines are kept.
    edge: bool,
}

/// Whether the connection must close after answering `req`: the client asked for it, or its
/// content is chunked (not decoded) or larger than we are willing to read and drop — reading
/// further would mean guessing where the next request starts.
fn closes_after(req: &Request, max_discard: u64) -> bool {
    !req.keep_alive
        || match req.framing {
            Framing::None => false,
            Framing::Length(n) => n > max_discard,
            Framing::Chunked => true,
        }
}

/// After an error response: send FIN, then read and drop what the client still sends (for at
/// most [`LINGER`]) so the close does not reset the connection before the client reads the
/// response (the problem nginx's `lingering_close` solves).
///
/// Callers box it: its timer is large and 128-byte aligned, and inline it would make the state
/// of every answer, error or not, an aligned allocation of that size.
async fn linger_close<T: Transport>(ctx: &Context, socket: &T) {
    socket.shutdown_write();
    let until = Instant::now() + LINGER;
    let mut budget = 256 * 1024usize;
    while budget > 0 {
        match monoio::time::timeout_at(until, socket.readable()).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        let mut buf = ctx.recv_buf.borrow_mut();
        match socket.try_recv(&mut buf) {
            Ok(0) => return,
            Ok(n) => budget = budget.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::rc::Rc;
    use std::sync::Arc;

    use clap::Parser;

    use super::*;
    use crate::config::Args;

    /// The task of every idle keep-alive connection is this future: it must stay small (the
    /// answering state is boxed, the timers live in the worker's `Deadlines`). A regression
    /// guard for the memory per idle connection recorded in docs/architecture.md.
    #[test]
    fn idle_connection_task_stays_small() {
        let size = task_size(serve);
        assert!(size <= 1024, "connection future grew to {size} bytes");
    }

    /// The size of the task `serve` makes for a fresh connection, before it first runs.
    pub(crate) fn task_size<F: Future>(
        serve: impl FnOnce(Rc<Context>, TcpStream, SocketAddr) -> F,
    ) -> usize {
        let cfg = Config::from_args(Args::parse_from(["ringcast", "/tmp"])).unwrap();
        let root = Root::open(std::path::Path::new("/tmp")).unwrap();
        let ctx = Rc::new(Context::new(Arc::new(cfg), 0, root));
        let mut rt =
            monoio::RuntimeBuilder::<monoio::LegacyDriver>::new().enable_timer().build().unwrap();
        rt.block_on(async move {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let stream = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            let fut = serve(ctx, stream, "127.0.0.1:1".parse().unwrap());
            std::mem::size_of_val(&fut)
        })
    }
}
