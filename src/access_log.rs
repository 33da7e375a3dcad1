//! The access log: one line per response, in the combined log format or as JSON.
//!
//! Each worker formats its lines into its own buffer ([`WorkerLog`]); nothing is shared per
//! request. A buffer is handed to the one writer thread over a bounded channel when it passes
//! [`FLUSH_BYTES`], at least once a second (a timer task per worker), and when the worker stops.
//! Handing over is `try_send`: a worker never waits for the disk. When the writer falls behind
//! (the channel is full) the worker keeps its buffer up to [`MAX_PENDING_BYTES`] and then drops
//! it, counting the dropped bytes in `ringcast_access_log_dropped_bytes_total`, rather than
//! stall every connection of that worker behind a slow disk.
//!
//! The writer thread owns the file (opened `O_APPEND`) and reopens it by name when
//! [`Writer::reopen`] is called (on SIGUSR1): rotate by renaming the file, then signal, as with
//! nginx. Lines are written whole: a line never straddles two buffers.
//!
//! Times are UTC (`+0000`), so lines sort and compare across hosts without a time-zone table.

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use clap::ValueEnum;
use tracing::{error, info, warn};

/// A worker hands its buffer to the writer once it holds this many bytes.
pub const FLUSH_BYTES: usize = 32 * 1024;

/// A worker whose writer is behind keeps at most this much before dropping lines.
pub const MAX_PENDING_BYTES: usize = 1024 * 1024;

/// Buffers in flight between the workers and the writer.
const CHANNEL_BUFFERS: usize = 256;

/// How often each worker flushes its buffer, whatever its size.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The combined log format (Apache, nginx): `addr - - [time] "request" status bytes
    /// "referer" "user-agent"`.
    Combined,
    /// One JSON object per line.
    Json,
}

/// Where the access log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No access log.
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to and reopened on SIGUSR1.
    File(PathBuf),
}

impl Target {
    /// Parses `off`, `-` or a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "" => Err("empty access-log target: use a path, - or off".into()),
            "off" => Ok(Target::Off),
            "-" => Ok(Target::Stdout),
            path => Ok(Target::File(PathBuf::from(path))),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Off => f.write_str("off"),
            Target::Stdout => f.write_str("-"),
            Target::File(p) => write!(f, "{}", p.display()),
        }
    }
}

enum Msg {
    Lines(Vec<u8>),
    Reopen,
    Finish,
}

/// The writer thread's handle, held by the main thread.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Msg>,
    handle: JoinHandle<()>,
    format: Format,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Lines(b) => write!(f, "Lines({})", b.len()),
            Msg::Reopen => f.write_str("Reopen"),
            Msg::Finish => f.write_str("Finish"),
        }
    }
}

impl Writer {
    /// Opens the target (failing now rather than at the first request) and starts the writer
    /// thread. `None` for [`Target::Off`].
    pub fn start(target: &Target, format: Format) -> io::Result<Option<Self>> {
        let out = match target {
            Target::Off => return Ok(None),
            Target::Stdout => Out::Stdout,
            Target::File(path) => Out::File(open(path)?, path.clone()),
        };
        let (tx, rx) = mpsc::sync_channel(CHANNEL_BUFFERS);
        let handle = std::thread::Builder::new()
            .name("ringcast-access-log".into())
            .spawn(move || write_loop(out, &rx))?;
        Ok(Some(Self { tx, handle, format }))
    }

    /// A buffer for one worker.
    pub fn worker_log(&self, worker_id: usize) -> WorkerLog {
        WorkerLog {
            tx: self.tx.clone(),
            format: self.format,
            worker_id,
            buf: RefCell::new(Vec::with_capacity(FLUSH_BYTES + 1024)),
            second: Cell::new(u64::MAX),
            stamp: RefCell::new(String::new()),
        }
    }

    /// Asks the writer to reopen the file (after rotation).
    pub fn reopen(&self) {
        let _ = self.tx.send(Msg::Reopen);
    }

    /// Waits until every buffer sent so far is written, then closes the file. Call after the
    /// workers have stopped (their last buffers sent with [`WorkerLog::flush_blocking`]).
    pub fn finish(self) {
        let _ = self.tx.send(Msg::Finish);
        if self.handle.join().is_err() {
            error!("the access-log writer panicked");
        }
    }
}

enum Out {
    Stdout,
    File(File, PathBuf),
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn write_loop(mut out: Out, rx: &Receiver<Msg>) {
    let mut failing = false;
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Lines(bytes) => {
                let result = match &mut out {
                    Out::Stdout => {
                        let mut s = io::stdout().lock();
                        s.write_all(&bytes).and_then(|()| s.flush())
                    }
                    Out::File(f, _) => f.write_all(&bytes),
                };
                match result {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        error!(error = %e, "access log: write failed; lines are lost");
                        failing = true;
                    }
                    Err(_) => {}
                }
            }
            Msg::Finish => break,
            Msg::Reopen => {
                if let Out::File(f, path) = &mut out {
                    match open(path) {
                        Ok(new) => {
                            *f = new;
                            failing = false;
                            info!(path = %path.display(), "access log reopened");
                        }
                        Err(e) => {
                            warn!(path = %path.display(), error = %e, "access log: reopen failed; still writing the old file");
                        }
                    }
                }
            }
        }
    }
}

/// One response, as the access log records it.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The client.
    pub peer: SocketAddr,
    /// The method as sent; `None` when the request could not be parsed.
    pub method: Option<&'a str>,
    /// The request target as sent.
    pub target: &'a [u8],
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    /// Status code sent.
    pub status: u16,
    /// Body bytes sent (not counting the head).
    pub body_bytes: u64,
    /// `Referer`, if any.
    pub referer: Option<&'a [u8]>,
    /// `User-Agent`, if any.
    pub user_agent: Option<&'a [u8]>,
    /// From the parsed head to the last byte handed to the socket.
    pub duration: Duration,
    /// How the body was sent (see `metrics::BODY_STRATEGIES`).
    pub body_strategy: &'static str,
    /// Edge mode: how the cache answered and the time spent waiting for the origin.
    pub edge: Option<EdgeFields>,
}

/// The access-log fields of an edge-mode request (JSON format: `cache`, `origin_ms`).
#[derive(Debug, Clone, Copy)]
pub struct EdgeFields {
    /// The cache outcome (`metrics::CACHE_OUTCOMES`).
    pub cache: &'static str,
    /// Time spent on origin requests for this response (heads and bodies); zero on a hit.
    pub origin: Duration,
}

/// One worker's access-log buffer. Used by that worker's thread only.
#[derive(Debug)]
pub struct WorkerLog {
    tx: SyncSender<Msg>,
    format: Format,
    worker_id: usize,
    buf: RefCell<Vec<u8>>,
    second: Cell<u64>,
    stamp: RefCell<String>,
}

impl WorkerLog {
    /// Appends one line; hands the buffer over when it is full. Returns the bytes dropped.
    pub fn record(&self, entry: &Entry<'_>) -> u64 {
        let now =
            SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if self.second.get() != now {
            self.second.set(now);
            *self.stamp.borrow_mut() = match self.format {
                Format::Combined => clf_time(now),
                Format::Json => iso_time(now),
            };
        }
        let full = {
            let mut buf = self.buf.borrow_mut();
            let stamp = self.stamp.borrow();
            match self.format {
                Format::Combined => combined_line(&mut buf, &stamp, entry),
                Format::Json => json_line(&mut buf, &stamp, self.worker_id, entry),
            }
            buf.len() >= FLUSH_BYTES
        };
        if full {
            self.flush()
        } else {
            0
        }
    }

    /// Hands whatever is buffered to the writer without waiting. Returns the bytes dropped
    /// (the writer is behind and this worker already holds [`MAX_PENDING_BYTES`]).
    pub fn flush(&self) -> u64 {
        let mut buf = self.buf.borrow_mut();
        if buf.is_empty() {
            return 0;
        }
        let bytes = std::mem::replace(&mut *buf, Vec::with_capacity(FLUSH_BYTES + 1024));
        match self.tx.try_send(Msg::Lines(bytes)) {
            Ok(()) => 0,
            Err(TrySendError::Full(Msg::Lines(bytes))) if bytes.len() < MAX_PENDING_BYTES => {
                *buf = bytes; // keep it; try again at the next flush
                0
            }
            Err(TrySendError::Full(msg) | TrySendError::Disconnected(msg)) => match msg {
                Msg::Lines(b) => b.len() as u64,
                Msg::Reopen | Msg::Finish => 0,
            },
        }
    }

    /// Flushes, waiting for room in the channel: for the end of a worker, when nothing else
    /// runs on its thread any more.
    pub fn flush_blocking(&self) {
        let bytes = std::mem::take(&mut *self.buf.borrow_mut());
        if !bytes.is_empty() {
            let _ = self.tx.send(Msg::Lines(bytes));
        }
    }
}

fn combined_line(out: &mut Vec<u8>, stamp: &str, e: &Entry<'_>) {
    let _ = write!(out, "{} - - [{stamp}] \"", e.peer.ip());
    match e.method {
        Some(m) => {
            escape_clf(out, m.as_bytes());
            out.push(b' ');
            escape_clf(out, e.target);
            let _ = write!(out, " HTTP/1.{}", e.minor_version);
        }
        None => out.push(b'-'),
    }
    let _ = write!(out, "\" {} {} \"", e.status, e.body_bytes);
    escape_clf(out, e.referer.unwrap_or(b"-"));
    out.extend_from_slice(b"\" \"");
    escape_clf(out, e.user_agent.unwrap_or(b"-"));
    out.extend_from_slice(b"\"\n");
}

/// As nginx does: control bytes, `"`, `\` and bytes ≥ 0x7f become `\xHH`.
fn escape_clf(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if !(0x20..0x7f).contains(&b) || b == b'"' || b == b'\\' {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

fn json_line(out: &mut Vec<u8>, stamp: &str, worker: usize, e: &Entry<'_>) {
    let _ = write!(
        out,
        "{{\"time\":\"{stamp}\",\"remote_addr\":\"{}\",\"remote_port\":{},\"method\":",
        e.peer.ip(),
        e.peer.port()
    );
    json_str(out, e.method.map(str::as_bytes));
    out.extend_from_slice(b",\"target\":");
    json_str(out, e.method.map(|_| e.target));
    let _ = write!(
        out,
        ",\"protocol\":\"HTTP/1.{}\",\"status\":{},\"body_bytes\":{},\"referer\":",
        e.minor_version, e.status, e.body_bytes
    );
    json_str(out, e.referer);
    out.extend_from_slice(b",\"user_agent\":");
    json_str(out, e.user_agent);
    let micros = e.duration.as_micros();
    let _ = write!(
        out,
        ",\"duration_ms\":{}.{:03},\"worker\":{worker},\"body_strategy\":\"{}\"",
        micros / 1000,
        micros % 1000,
        e.body_strategy
    );
    if let Some(edge) = e.edge {
        let origin = edge.origin.as_micros();
        let _ = write!(
            out,
            ",\"cache\":\"{}\",\"origin_ms\":{}.{:03}",
            edge.cache,
            origin / 1000,
            origin % 1000
        );
    }
    out.extend_from_slice(b"}\n");
}

/// A JSON string (invalid UTF-8 replaced by U+FFFD), or `null`.
fn json_str(out: &mut Vec<u8>, s: Option<&[u8]>) {
    let Some(s) = s else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// (year, month 1–12, day 1–31) of a count of days since 1970-01-01 (H. Hinnant's algorithm).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn split(secs: u64) -> (u64, u64, u64, u64, u64, u64) {
    let (y, mo, d) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    (y, mo, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `10/Oct/2000:13:55:36 +0000`.
fn clf_time(secs: u64) -> String {
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (y, mo, d, h, mi, s) = split(secs);
    let month = MONTHS[usize::try_from(mo - 1).unwrap_or(0)];
    format!("{d:02}/{month}/{y}:{h:02}:{mi:02}:{s:02} +0000")
}

/// `2000-10-10T13:55:36Z`.
fn iso_time(secs: u64) -> String {
    let (y, mo, d, h, mi, s) = split(secs);
    format!("{y}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let cases = [
            (0, "01/Jan/1970:00:00:00 +0000", "1970-01-01T00:00:00Z"),
            (971_186_136, "10/Oct/2000:13:55:36 +0000", "2000-10-10T13:55:36Z"),
            (951_782_400, "29/Feb/2000:00:00:00 +0000", "2000-02-29T00:00:00Z"),
            (1_798_761_599, "31/Dec/2026:23:59:59 +0000", "2026-12-31T23:59:59Z"),
        ];
        for (secs, clf, iso) in cases {
            assert_eq!(clf_time(secs), clf);
            assert_eq!(iso_time(secs), iso);
        }
    }

    fn entry<'a>(target: &'a [u8], ua: Option<&'a [u8]>) -> Entry<'a> {
        Entry {
            peer: "127.0.0.1:4242".parse().unwrap(),
            method: Some("GET"),
            target,
            minor_version: 1,
            status: 200,
            body_bytes: 6,
            referer: None,
            user_agent: ua,
            duration: Duration::from_micros(1_234),
            body_strategy: "copy",
            edge: None,
        }
    }

    #[test]
    fn combined_lines() {
        type Case<'a> = (&'a [u8], Option<&'a [u8]>, &'a str);
        let cases: &[Case<'_>] = &[
            (b"/a.txt", Some(b"curl/8"), "\"GET /a.txt HTTP/1.1\" 200 6 \"-\" \"curl/8\"\n"),
            (b"/q\"x", None, "\"GET /q\\x22x HTTP/1.1\" 200 6 \"-\" \"-\"\n"),
            (b"/a", Some(b"bad\x01\xff"), "\"GET /a HTTP/1.1\" 200 6 \"-\" \"bad\\x01\\xFF\"\n"),
        ];
        for (target, ua, tail) in cases {
            let mut out = Vec::new();
            combined_line(&mut out, "10/Oct/2000:13:55:36 +0000", &entry(target, *ua));
            let line = String::from_utf8(out).unwrap();
            assert!(line.starts_with("127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "), "{line}");
            assert!(line.ends_with(tail), "{line}");
        }
    }

    #[test]
    fn json_lines() {
        let mut out = Vec::new();
        json_line(&mut out, "2000-10-10T13:55:36Z", 3, &entry(b"/a\"\\\n", Some(b"ua")));
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"time\":\"2000-10-10T13:55:36Z\",\"remote_addr\":\"127.0.0.1\",\"remote_port\":4242,\
             \"method\":\"GET\",\"target\":\"/a\\\"\\\\\\u000a\",\"protocol\":\"HTTP/1.1\",\
             \"status\":200,\"body_bytes\":6,\"referer\":null,\"user_agent\":\"ua\",\
             \"duration_ms\":1.234,\"worker\":3,\"body_strategy\":\"copy\"}\n"
        );
        let mut out = Vec::new();
        let edge = EdgeFields { cache: "miss", origin: Duration::from_micros(12_345) };
        let e = Entry { edge: Some(edge), ..entry(b"/v", None) };
        json_line(&mut out, "2000-10-10T13:55:36Z", 0, &e);
        let line = String::from_utf8(out).unwrap();
        assert!(line.ends_with(",\"cache\":\"miss\",\"origin_ms\":12.345}\n"), "{line}");
    }

    #[test]
    fn targets() {
        let cases: &[(&str, Option<Target>)] = &[
            ("off", Some(Target::Off)),
            ("-", Some(Target::Stdout)),
            ("/var/log/x", Some(Target::File("/var/log/x".into()))),
            ("", None),
        ];
        for (s, want) in cases {
            assert_eq!(Target::parse(s).ok(), *want, "{s}");
        }
    }
}
