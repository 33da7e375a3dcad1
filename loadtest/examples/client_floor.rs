//! Client CPU floor: the least CPU per request that a closed-loop HTTP/1.1 client
//! on a raw io_uring spends on this kernel, as the yardstick for wrk or any other
//! load generator.
//!
//! ```text
//! cargo run --release -p ringcast-load --example client_floor -- <conns> <secs> <link|multi> http://IP:PORT/path
//! ```
//!
//! # What it measures, and why
//!
//! Each of `<conns>` keep-alive connections has exactly one `GET` in flight, as
//! with `wrk -c <conns>`, for `<secs>` seconds; then the tool stops by itself.
//! Nothing else happens per request: one thread, no async runtime, no timers, no
//! allocation; the head is read by ringcast-load's own parser (`http::parse_head`,
//! as the load generator reads it) and body bytes are only counted. What is left
//! is what every closed-loop client pays on this kernel:
//!
//! - sending the request. On loopback the segment is delivered from the softirq
//!   that the send raises on the sending CPU, so the sender also runs the TCP
//!   receive path into the server's socket. On a kernel without
//!   `CONFIG_IRQ_TIME_ACCOUNTING` that softirq time is the sender's system time
//!   (with it, it is charged to no process, and every client looks cheaper by
//!   the same amount). The server pays the same for its responses;
//! - receiving the response: copying it out of the socket, and the ACKs;
//! - io_uring's own cost: `io_uring_enter`, entries and completions, poll arming
//!   and task work.
//!
//! A load generator close to this figure spends little CPU of its own; the gap
//! is its overhead (event loop, timers, parsing, statistics), which on a shared
//! machine is CPU taken from the server under test.
//!
//! The ring, its leaked buffers and the decoding of its completions live in
//! `ringcast_load::sys::floor` (this file has no `unsafe`).
//!
//! Modes:
//! - `link`: a send linked (`IOSQE_IO_LINK`, Linux 5.3) to a receive with
//!   `IORING_RECVSEND_POLL_FIRST` (Linux 5.19), both handed to the kernel in
//!   the same submission. Latency (queueing the send to the last byte of the response)
//!   is recorded for every request and printed as p50/p99/max.
//! - `multi`: one multishot receive per connection (`IORING_RECV_MULTISHOT`,
//!   Linux 6.0) into a registered provided-buffer ring (Linux 5.19); per request
//!   only the send is submitted.
//!
//! # Comparing with wrk
//!
//! Pin the server to one CPU and each client in turn to another, the same one
//! for both, with the same connections, duration and URL:
//!
//! ```text
//! taskset -c 0 target/release/ringcast --listen 127.0.0.1:18960 target/bench/www &
//! taskset -c 1 target/release/examples/client_floor 50 10 link http://127.0.0.1:18960/1k.bin
//! /usr/bin/time -f '%U user %S sys' taskset -c 1 wrk -t1 -c50 -d10s http://127.0.0.1:18960/1k.bin
//! ```
//!
//! Read a client's CPU from `getrusage`/`wait4` (what `/usr/bin/time` prints,
//! and what this tool prints for itself) or from `utime + stime` in
//! `/proc/PID/stat` just before it exits, and divide by its request count. Both
//! are the kernel's own totals for every thread of the process; `top`, `ps` or
//! `pidstat` percentages are samples over intervals that do not line up with the
//! run.
//!
//! Only `http://` URLs with a literal IP address are accepted: the tool is meant
//! for loopback or a directly attached peer, without name resolution. Every
//! response must carry `Content-Length`; anything the parser does not expect
//! (chunked or close-delimited bodies, bytes after a response) ends that
//! connection and is counted as an error.

#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use hdrhistogram::Histogram;
use ringcast_load::http::{parse_head, BodyFraming, HeadParse, ParseError, ResponseHead};
use ringcast_load::sys::cpu_times;
use ringcast_load::sys::floor::{Event, FloorMode, FloorRing, Queue};
use ringcast_load::url::{Scheme, Url};

const USAGE: &str = "usage: client_floor <conns> <secs> <link|multi> http://IP:PORT/path";

/// Most connections one run opens; bounds the rings and the receive buffers.
const MAX_CONNS: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Link,
    Multi,
}

#[derive(Debug)]
struct Args {
    conns: usize,
    duration: Duration,
    mode: Mode,
    url: Url,
    addr: SocketAddr,
}

fn parse_args(args: &[String]) -> Result<Args, String> {
    let [conns, secs, mode, url] = args else {
        return Err(USAGE.to_owned());
    };
    let conns = match conns.parse::<usize>() {
        Ok(n) if (1..=MAX_CONNS).contains(&n) => n,
        _ => return Err(format!("<conns> must be 1..={MAX_CONNS}, not {conns:?}\n{USAGE}")),
    };
    let secs = match secs.parse::<u64>() {
        Ok(s) if s > 0 => s,
        _ => {
            return Err(format!(
                "<secs> must be a whole number of seconds > 0, not {secs:?}\n{USAGE}"
            ))
        }
    };
    let mode = match mode.as_str() {
        "link" => Mode::Link,
        "multi" => Mode::Multi,
        m => return Err(format!("mode must be link or multi, not {m:?}\n{USAGE}")),
    };
    let url = Url::parse(url).map_err(|e| e.to_string())?;
    if url.scheme != Scheme::Http {
        return Err(format!("only http:// URLs: the floor is measured without TLS\n{USAGE}"));
    }
    let ip: IpAddr = url
        .host
        .parse()
        .map_err(|_| format!("{:?}: the host must be a literal IP address", url.host))?;
    let addr = SocketAddr::new(ip, url.port);
    Ok(Args { conns, duration: Duration::from_secs(secs), mode, url, addr })
}

// ---------------------------------------------------------------------------------------------
// Response framing (no I/O): ringcast_load's own head parser, and only `Content-Length` bodies,
// counted without being looked at.

/// Why a connection's response stream was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ResponseError {
    /// The head is malformed or too large (see [`ParseError`]).
    #[error(transparent)]
    Head(#[from] ParseError),
    /// Chunked and close-delimited bodies are not supported.
    #[error("response without Content-Length")]
    NoContentLength,
    /// Bytes beyond the response, though only one request was outstanding.
    #[error("bytes after the end of the response")]
    Leftover,
}

#[derive(Debug, PartialEq, Eq)]
enum Progress {
    NeedMore,
    /// The response is complete; its status code.
    Done(u16),
}

/// Frames one response at a time from the bytes of successive receives.
#[derive(Debug, Default)]
struct ResponseParser {
    /// A head that spans receives, gathered here; empty on the usual path.
    head: Vec<u8>,
    in_body: bool,
    status: u16,
    body_left: u64,
}

impl ResponseParser {
    fn feed(&mut self, data: &[u8]) -> Result<Progress, ResponseError> {
        if self.in_body {
            return self.body(data.len());
        }
        if self.head.is_empty() {
            // Usual path: the whole head arrives in one receive and is parsed in place.
            return match parse_head(data)? {
                HeadParse::Complete(h) => {
                    let len = body_length(&h)?;
                    self.start_body(h.status, len, data.len() - h.head_len)
                }
                HeadParse::Partial => self.stash(data),
            };
        }
        self.stash(data)
    }

    #[cold]
    fn stash(&mut self, data: &[u8]) -> Result<Progress, ResponseError> {
        self.head.extend_from_slice(data);
        match parse_head(&self.head)? {
            HeadParse::Partial => Ok(Progress::NeedMore),
            HeadParse::Complete(h) => {
                let len = body_length(&h)?;
                let after = self.head.len() - h.head_len;
                self.head.clear();
                self.start_body(h.status, len, after)
            }
        }
    }

    fn start_body(&mut self, status: u16, len: u64, got: usize) -> Result<Progress, ResponseError> {
        let got = got as u64;
        match got.cmp(&len) {
            std::cmp::Ordering::Greater => Err(ResponseError::Leftover),
            std::cmp::Ordering::Equal => Ok(Progress::Done(status)),
            std::cmp::Ordering::Less => {
                self.in_body = true;
                self.status = status;
                self.body_left = len - got;
                Ok(Progress::NeedMore)
            }
        }
    }

    fn body(&mut self, got: usize) -> Result<Progress, ResponseError> {
        let got = got as u64;
        if got > self.body_left {
            return Err(ResponseError::Leftover);
        }
        self.body_left -= got;
        if self.body_left > 0 {
            return Ok(Progress::NeedMore);
        }
        self.in_body = false;
        Ok(Progress::Done(self.status))
    }
}

/// The body length of a parsed head: `Content-Length` (or none at all, RFC 9112 §6.3 item 1).
fn body_length(head: &ResponseHead) -> Result<u64, ResponseError> {
    match head.framing {
        BodyFraming::Empty => Ok(0),
        BodyFraming::Length(n) => Ok(n),
        BodyFraming::Chunked | BodyFraming::UntilClose => Err(ResponseError::NoContentLength),
    }
}

// ---------------------------------------------------------------------------------------------
// The closed loop on the ring (`ringcast_load::sys::floor` owns the ring and its memory).

/// One connection with one request in flight at a time.
struct Conn {
    /// Keeps the socket open for the whole run.
    _socket: TcpStream,
    parser: ResponseParser,
    sent_at: Instant,
    dead: bool,
}

#[derive(Debug, Default)]
struct Counts {
    ok: u64,
    other_status: u64,
    errors: u64,
    first_error: Option<String>,
    iterations: u64,
    recv_completions: u64,
    rearms: u64,
    enobufs: u64,
}

struct Client {
    mode: Mode,
    /// Bytes of the request head, the same on every connection.
    request_len: usize,
    conns: Vec<Conn>,
    /// Nanoseconds from queueing a request to its last response byte (`link`).
    latency: Histogram<u64>,
    counts: Counts,
}

enum Outcome {
    Nothing,
    Response(u16),
    Failed(String),
}

impl Client {
    fn handle(&mut self, event: Event<'_>, queue: &mut Queue<'_, '_>) -> io::Result<()> {
        let (i, outcome) = match event {
            Event::Sent { conn, result } => {
                let dead = self.conns[conn].dead;
                let outcome = match usize::try_from(result) {
                    _ if dead => Outcome::Nothing,
                    Ok(n) if n == self.request_len => Outcome::Nothing,
                    _ => Outcome::Failed(format!("send: {}", res_text(result))),
                };
                (conn, outcome)
            }
            Event::Received { conn: i, result, more } => {
                self.counts.recv_completions += 1;
                let conn = &mut self.conns[i];
                let outcome = match result {
                    _ if conn.dead => Outcome::Nothing,
                    Ok([]) => Outcome::Failed("server closed the connection".to_owned()),
                    Ok(bytes) => match conn.parser.feed(bytes) {
                        Ok(Progress::Done(status)) => Outcome::Response(status),
                        Ok(Progress::NeedMore) => {
                            if self.mode == Mode::Link {
                                queue.receive(i)?;
                            }
                            Outcome::Nothing
                        }
                        Err(e) => Outcome::Failed(e.to_string()),
                    },
                    // Every provided buffer was in use: the multishot receive ended; arm it again.
                    Err(res) if res == -libc::ENOBUFS && self.mode == Mode::Multi => {
                        self.counts.enobufs += 1;
                        Outcome::Nothing
                    }
                    Err(res) => Outcome::Failed(format!("recv: {}", res_text(res))),
                };
                if self.mode == Mode::Multi
                    && !more
                    && !conn.dead
                    && !matches!(outcome, Outcome::Failed(_))
                {
                    self.counts.rearms += 1;
                    queue.receive(i)?;
                }
                (i, outcome)
            }
        };
        let conn = &mut self.conns[i];
        match outcome {
            Outcome::Nothing => {}
            Outcome::Failed(why) => {
                self.counts.errors += 1;
                conn.dead = true;
                self.counts.first_error.get_or_insert_with(|| format!("connection {i}: {why}"));
            }
            Outcome::Response(status) => {
                if status == 200 {
                    self.counts.ok += 1;
                } else {
                    self.counts.other_status += 1;
                }
                if self.mode == Mode::Link {
                    let now = Instant::now();
                    let nanos = u64::try_from((now - conn.sent_at).as_nanos()).unwrap_or(u64::MAX);
                    self.latency.saturating_record(nanos);
                    conn.sent_at = now;
                }
                queue.request(i)?;
            }
        }
        Ok(())
    }
}

fn res_text(res: i32) -> String {
    if res < 0 {
        io::Error::from_raw_os_error(-res).to_string()
    } else {
        format!("short ({res} bytes)")
    }
}

struct Report {
    ring_flags: &'static str,
    elapsed: Duration,
    run_cpu: Duration,
    process_user: Duration,
    process_sys: Duration,
    counts: Counts,
    latency: Histogram<u64>,
}

fn run(args: &Args) -> anyhow::Result<Report> {
    let request =
        format!("GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", args.url.target, args.url.authority);
    let mut conns = Vec::with_capacity(args.conns);
    for _ in 0..args.conns {
        let socket =
            TcpStream::connect(args.addr).with_context(|| format!("connect {}", args.addr))?;
        socket.set_nodelay(true).context("TCP_NODELAY")?;
        conns.push(Conn {
            _socket: socket,
            parser: ResponseParser::default(),
            sent_at: Instant::now(),
            dead: false,
        });
    }
    let fds: Vec<_> = conns.iter().map(|c| c._socket.as_raw_fd()).collect();
    let floor_mode = match args.mode {
        Mode::Link => FloorMode::Link,
        Mode::Multi => FloorMode::Multi,
    };
    let mut ring =
        FloorRing::new(floor_mode, request.as_bytes(), &fds).context("io_uring set-up")?;
    let mut client = Client {
        mode: args.mode,
        request_len: request.len(),
        conns,
        latency: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid histogram bounds"),
        counts: Counts::default(),
    };

    let cpu_start = cpu_times();
    let start = Instant::now();
    let start_conns = |queue: &mut Queue<'_, '_>| {
        for i in 0..args.conns {
            if args.mode == Mode::Multi {
                queue.receive(i)?;
            }
            queue.request(i)?;
        }
        Ok(())
    };
    for conn in &mut client.conns {
        conn.sent_at = Instant::now();
    }
    let iterations = ring
        .run(args.duration, start_conns, |event, queue| client.handle(event, queue))
        .context("io_uring loop")?;
    client.counts.iterations = iterations;
    let elapsed = start.elapsed();
    let (user, sys) = cpu_times();
    Ok(Report {
        ring_flags: ring.flags(),
        elapsed,
        run_cpu: (user + sys).saturating_sub(cpu_start.0 + cpu_start.1),
        process_user: user,
        process_sys: sys,
        counts: std::mem::take(&mut client.counts),
        latency: client.latency,
    })
}

fn print_report(args: &Args, r: &Report) {
    let c = &r.counts;
    let requests = c.ok + c.other_status;
    let per_request_us = |cpu: Duration| cpu.as_secs_f64() * 1e6 / requests.max(1) as f64;
    let mode = match args.mode {
        Mode::Link => "link",
        Mode::Multi => "multi",
    };
    println!("ring flags: {}", r.ring_flags);
    println!(
        "{mode}: {} connections, {} s, http://{}{}",
        args.conns,
        args.duration.as_secs(),
        args.url.authority,
        args.url.target
    );
    println!("requests: {requests} (200: {}, other status: {})", c.ok, c.other_status);
    match &c.first_error {
        Some(first) => println!("errors: {} (first: {first})", c.errors),
        None => println!("errors: 0"),
    }
    println!("elapsed: {:.3} s", r.elapsed.as_secs_f64());
    println!("req/s: {:.0}", requests as f64 / r.elapsed.as_secs_f64());
    let total = r.process_user + r.process_sys;
    println!(
        "cpu, whole process (getrusage): user {:.3} s + sys {:.3} s = {:.3} s, {:.2} us/req",
        r.process_user.as_secs_f64(),
        r.process_sys.as_secs_f64(),
        total.as_secs_f64(),
        per_request_us(total)
    );
    println!(
        "cpu, request loop only: {:.3} s, {:.2} us/req",
        r.run_cpu.as_secs_f64(),
        per_request_us(r.run_cpu)
    );
    if args.mode == Mode::Link && !r.latency.is_empty() {
        let us = |q: f64| r.latency.value_at_quantile(q) as f64 / 1e3;
        println!(
            "latency us: p50 {:.1} p99 {:.1} max {:.1} (n={})",
            us(0.5),
            us(0.99),
            r.latency.max() as f64 / 1e3,
            r.latency.len()
        );
    }
    println!(
        "io_uring: {} waits ({:.1} responses each), {} receive completions, {} multishot re-arms, {} ENOBUFS",
        c.iterations,
        requests as f64 / c.iterations.max(1) as f64,
        c.recv_completions,
        c.rearms,
        c.enobufs
    );
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let report = run(&args)?;
    print_report(&args, &report);
    if report.counts.errors > 0 {
        bail!("{} connections failed", report.counts.errors);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringcast_load::http::response::MAX_HEAD_BYTES;

    fn response(len: usize) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 200 OK\r\nServer: t\r\ncOnTeNt-LeNgTh: {len}\r\nConnection: keep-alive\r\n\r\n"
        )
        .into_bytes();
        r.extend(std::iter::repeat_n(b'x', len));
        r
    }

    /// Feeds `chunks` in order and returns what the last one produced; every earlier one must
    /// ask for more.
    fn feed_all<'a>(
        p: &mut ResponseParser,
        chunks: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Progress, ResponseError> {
        let mut last = Ok(Progress::NeedMore);
        for chunk in chunks {
            assert_eq!(last, Ok(Progress::NeedMore), "progress before the final chunk");
            last = p.feed(chunk);
        }
        last
    }

    #[test]
    fn any_chunking_frames_each_response() {
        for len in [0, 1, 1024] {
            let r = response(len);
            for size in [1, 2, 3, 5, 7, 64, 100, 1000, r.len()] {
                let mut p = ResponseParser::default();
                // Several responses on one connection: the state resets after each.
                for _ in 0..3 {
                    assert_eq!(
                        feed_all(&mut p, r.chunks(size)),
                        Ok(Progress::Done(200)),
                        "len {len} size {size}"
                    );
                }
            }
        }
    }

    #[test]
    fn split_at_every_offset() {
        let r = response(1024);
        for k in 1..r.len() {
            let mut p = ResponseParser::default();
            assert_eq!(
                feed_all(&mut p, [&r[..k], &r[k..]]),
                Ok(Progress::Done(200)),
                "split at {k}"
            );
        }
    }

    /// Status and body length of a complete head.
    fn head_length(head: &[u8]) -> Result<(u16, u64), ResponseError> {
        match parse_head(head)? {
            HeadParse::Complete(h) => Ok((h.status, body_length(&h)?)),
            HeadParse::Partial => panic!("incomplete head"),
        }
    }

    #[test]
    fn heads() {
        use ResponseError::Head;
        type Case = (&'static [u8], Result<(u16, u64), ResponseError>);
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Ok((200, 5))),
            (b"HTTP/1.0 404 Not Found\r\ncontent-length:0\r\n\r\n", Ok((404, 0))),
            // RFC 9112 §5.1: optional whitespace around the value.
            (b"HTTP/1.1 200 OK\r\nCONTENT-LENGTH: \t7 \r\n\r\n", Ok((200, 7))),
            // RFC 9112 §6.3 item 5: repeated identical values are one value; differing are invalid.
            (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", Ok((200, 3))),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
                Err(Head(ParseError::ContentLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
                Err(Head(ParseError::ContentLength)),
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
                Err(Head(ParseError::ContentLength)),
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", Err(Head(ParseError::ContentLength))),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
                Err(Head(ParseError::ContentLength)),
            ),
            // Chunked or close-delimited bodies are out of scope.
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                Err(ResponseError::NoContentLength),
            ),
            (
                b"HTTP/1.1 200 OK\r\nX-Content-Length: 5\r\n\r\n",
                Err(ResponseError::NoContentLength),
            ),
            (b"HTTP/2 200 OK\r\nContent-Length: 5\r\n\r\n", Err(Head(ParseError::StatusLine))),
            (b"HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\n", Err(Head(ParseError::StatusLine))),
        ];
        for (head, want) in cases {
            assert_eq!(head_length(head), *want, "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn bytes_beyond_the_response_are_an_error() {
        let mut r = response(10);
        r.push(b'H');
        assert_eq!(ResponseParser::default().feed(&r), Err(ResponseError::Leftover));
        // The same when the extra byte arrives with the end of the body.
        let mut p = ResponseParser::default();
        assert_eq!(
            feed_all(&mut p, [&r[..r.len() - 5], &r[r.len() - 5..]]),
            Err(ResponseError::Leftover)
        );
    }

    #[test]
    fn oversized_head_is_an_error() {
        let mut p = ResponseParser::default();
        let filler = [b'a'; 1024];
        let got: Vec<_> = (0..=MAX_HEAD_BYTES / filler.len()).map(|_| p.feed(&filler)).collect();
        assert_eq!(got.last(), Some(&Err(ResponseError::Head(ParseError::HeadTooLarge))));
    }

    #[test]
    fn arguments() {
        let args = |s: &str| parse_args(&s.split(' ').map(str::to_owned).collect::<Vec<_>>());
        let a = args("50 3 link http://127.0.0.1:18960/1k.bin").expect("valid");
        assert_eq!((a.conns, a.duration, a.mode), (50, Duration::from_secs(3), Mode::Link));
        assert_eq!(a.addr, "127.0.0.1:18960".parse().unwrap());
        assert_eq!(
            args("8 1 multi http://[::1]:80/").expect("valid").addr,
            "[::1]:80".parse().unwrap()
        );
        // No duration, a zero duration, a host name, another scheme, an unknown mode.
        for bad in [
            "50 link http://127.0.0.1:18960/",
            "50 0 link http://127.0.0.1:18960/",
            "50 3 link http://localhost:18960/",
            "50 3 link https://127.0.0.1:18960/",
            "50 3 linkts http://127.0.0.1:18960/",
            "0 3 link http://127.0.0.1:18960/",
        ] {
            assert!(args(bad).is_err(), "{bad}");
        }
    }
}
