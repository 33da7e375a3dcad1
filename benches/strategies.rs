//! Body strategies over loopback: each `--body-strategy` of the real release binary, serving
//! files from 1 KiB to 64 MiB (1 GiB with `RINGCAST_BENCH_LARGE=1`) to a client that discards
//! the body in the kernel.
//!
//! Set-up, per strategy: `taskset -c 0 target/release/ringcast --workers 1 --body-strategy S
//! --listen 127.0.0.1:0 target/bench-data`, the `listening on` line parsed for the port. The
//! bench process pins itself to CPU 1, so server and client never share a core. The client is
//! blocking and keeps one connection alive per strategy: it sends a `GET`, reads the head with
//! a plain `recv`, then drops the body with `recv(MSG_TRUNC)` — on TCP the kernel discards the
//! bytes without copying them to user space — until `Content-Length` bytes are gone. So the
//! figures are the server's (plus loopback's), not the client's copying.
//!
//! Two measurements per size and strategy:
//! - criterion throughput in bytes per second (one iteration = one keep-alive `GET`);
//! - the server's CPU time (utime + stime of `/proc/PID/stat`, and the nanosecond
//!   `/proc/PID/task/*/schedstat` sum) across a fixed number of requests, printed as CPU per
//!   request and CPU per GB at the end, with the time the server waited for its CPU (other
//!   load on core 0) and the client's own CPU, so a contended run shows as one.
//!
//! A strategy the binary rejects (an unknown `--body-strategy` value) is skipped with a note.
//! `cargo bench` builds the binary (`target/release/ringcast`, the bench profile inherits the
//! release one) before the bench; set `RINGCAST_BIN` to measure another build. Bodies are created once under `target/bench-data/` and
//! reused. Figures, machine and date are in `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};

/// Strategies in the order they are reported; `copy` is the reference.
const STRATEGIES: [&str; 5] = ["copy", "sendfile", "memory", "splice", "auto"];

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Body sizes of the default run.
const SIZES: [u64; 7] = [KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB, 4 * MIB, 64 * MIB];

/// CPU of the server worker and of the client.
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// Bytes served per strategy and size in the CPU-time phase (bounded by the request counts
/// and by [`CPU_PHASE_TIME`]).
const CPU_PHASE_BYTES: u64 = 2 * GIB;
/// The CPU-time phase stops after this long (once [`CPU_PHASE_MIN_REQUESTS`] are done).
const CPU_PHASE_TIME: Duration = Duration::from_secs(4);
const CPU_PHASE_MIN_REQUESTS: u64 = 4;
const CPU_PHASE_MAX_REQUESTS: u64 = 20_000;

/// Largest `recv` length; the kernel never writes to the buffer under `MSG_TRUNC`.
const DISCARD_CHUNK: usize = 4 * 1024 * 1024;

fn size_label(size: u64) -> String {
    match size {
        s if s >= GIB && s % GIB == 0 => format!("{}GiB", s / GIB),
        s if s >= MIB && s % MIB == 0 => format!("{}MiB", s / MIB),
        s => format!("{}KiB", s / KIB),
    }
}

fn file_name(size: u64) -> String {
    format!("body-{}.bin", size_label(size))
}

/// Pins the calling thread (and so every thread it starts later) to `cpu`.
fn pin_to(cpu: usize) -> std::io::Result<()> {
    // SAFETY: `cpu_set_t` is a plain bit array; all zeroes is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit of the live `set` and bounds-checks `cpu` against
    // CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: sched_setaffinity(2) reads `size_of::<cpu_set_t>()` bytes from `set`, which lives
    // across the call; pid 0 is the calling thread.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The server binary: `RINGCAST_BIN`, else the `ringcast` binary cargo builds (release
/// profile) alongside this bench, `target/release/ringcast`.
fn server_binary() -> PathBuf {
    std::env::var_os("RINGCAST_BIN")
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ringcast")), PathBuf::from)
}

/// Creates `dir/body-<size>.bin` unless a file of that length is already there.
fn ensure_body(dir: &Path, size: u64) -> std::io::Result<()> {
    let path = dir.join(file_name(size));
    if fs::metadata(&path).is_ok_and(|m| m.len() == size) {
        return Ok(());
    }
    let mut chunk = vec![0u8; 1 << 20];
    // Not all zeroes, so no layer can treat the file as sparse or trivially compressible.
    let mut x: u32 = 0x9E37_79B9;
    for b in &mut chunk {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x.to_le_bytes()[0];
    }
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    let mut left = size;
    while left > 0 {
        let n = usize::try_from(left.min(chunk.len() as u64)).expect("chunk fits usize");
        f.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    f.sync_all()?;
    fs::rename(tmp, path)
}

/// One running server process (the `taskset` child execs `ringcast`, so the PID is the
/// server's).
struct Server {
    strategy: &'static str,
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts the binary with `strategy`; `Err(reason)` when it does not come up (e.g. the
    /// strategy is unknown to this build).
    fn start(bin: &Path, root: &Path, strategy: &'static str) -> Result<Self, String> {
        let log = root.join(format!("server-{strategy}.log"));
        let stderr = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
        let mut child = Command::new("taskset")
            .arg("-c")
            .arg(SERVER_CPU.to_string())
            .arg(bin)
            .args(["--workers", "1", "--body-strategy", strategy, "--listen", "127.0.0.1:0"])
            .arg(root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawning taskset {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // The reader keeps draining stdout after the first line so the server never blocks on
        // a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut sent = false;
            while let Some(Ok(line)) = lines.next() {
                if !sent && line.starts_with("listening on ") {
                    let _ = tx.send(line);
                    sent = true;
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).ok().and_then(|line| {
            let url = line.trim_start_matches("listening on ").trim_start_matches("http://");
            url.trim_end_matches('/').parse::<SocketAddr>().ok()
        });
        match addr {
            Some(addr) => Ok(Server { strategy, child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let why = fs::read_to_string(&log).unwrap_or_default();
                let why = why.lines().find(|l| !l.trim().is_empty()).unwrap_or("no output");
                Err(why.trim().to_string())
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking keep-alive client that discards bodies in the kernel.
struct Client {
    addr: SocketAddr,
    stream: TcpStream,
    head: Vec<u8>,
    scratch: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Client {
            addr,
            stream: Self::open(addr)?,
            head: Vec::with_capacity(1024),
            scratch: vec![0u8; DISCARD_CHUNK],
        })
    }

    fn open(addr: SocketAddr) -> std::io::Result<TcpStream> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(stream)
    }

    /// Replaces the connection with a fresh one and sends one `request` on it (outside any
    /// measurement). While other strategies are measured this one sits idle, for longer than
    /// the server's keep-alive timeout with 1 GiB bodies, so each measurement starts on a new
    /// connection.
    fn reconnect(&mut self, request: &[u8]) -> std::io::Result<u64> {
        self.stream = Self::open(self.addr)?;
        self.get(request)
    }

    /// Sends `request`, reads the head, discards the body; returns the body length.
    fn get(&mut self, request: &[u8]) -> std::io::Result<u64> {
        self.stream.write_all(request)?;
        self.head.clear();
        let mut buf = [0u8; 1024];
        let (head_end, length) = loop {
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            self.head.extend_from_slice(&buf[..n]);
            if let Some(end) = self.head.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = &self.head[..end];
                if !head.starts_with(b"HTTP/1.1 200 ") {
                    let text = String::from_utf8_lossy(head).into_owned();
                    return Err(std::io::Error::other(format!("unexpected answer: {text}")));
                }
                break (end + 4, content_length(head)?);
            }
        };
        let already = u64::try_from(self.head.len() - head_end).expect("usize fits u64");
        let mut left = length.checked_sub(already).ok_or_else(|| {
            std::io::Error::other("more bytes than Content-Length on a keep-alive connection")
        })?;
        let fd = self.stream.as_raw_fd();
        while left > 0 {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(self.scratch.len());
            // SAFETY: recv(2) on an open socket we own, with a live writable buffer of at least
            // `want` bytes. With MSG_TRUNC on TCP the kernel discards the bytes and does not
            // write to the buffer (tcp(7)); the buffer is there so the call is sound either way.
            let n =
                unsafe { libc::recv(fd, self.scratch.as_mut_ptr().cast(), want, libc::MSG_TRUNC) };
            match n {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n if n < 0 => {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        return Err(e);
                    }
                }
                n => left -= u64::try_from(n).expect("positive"),
            }
        }
        Ok(length)
    }
}

fn content_length(head: &[u8]) -> std::io::Result<u64> {
    head.split(|&b| b == b'\n')
        .find_map(|line| {
            let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
        })
        .ok_or_else(|| std::io::Error::other("no Content-Length"))
}

/// CPU time of a process: clock ticks from `/proc/PID/stat`, and from
/// `/proc/PID/task/*/schedstat` (when the kernel keeps it) the nanoseconds its threads ran and
/// the nanoseconds they were runnable but waited for the CPU (other load on the server's core).
#[derive(Clone, Copy)]
struct CpuTime {
    ticks: u64,
    ns: Option<u64>,
    wait_ns: Option<u64>,
}

fn cpu_time(pid: u32) -> CpuTime {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("reading /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    let sched = |field: usize| {
        fs::read_dir(format!("/proc/{pid}/task")).ok().and_then(|dir| {
            dir.map(|t| {
                let s = fs::read_to_string(t.ok()?.path().join("schedstat")).ok()?;
                s.split_whitespace().nth(field)?.parse::<u64>().ok()
            })
            .sum::<Option<u64>>()
        })
    };
    CpuTime { ticks, ns: sched(0), wait_ns: sched(1) }
}

/// User + system CPU time of the calling thread (the client).
fn thread_cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) writes one `rusage` to the live, exclusively borrowed `usage`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(t).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// One row of the CPU-time table.
struct CpuRow {
    strategy: &'static str,
    size: u64,
    requests: u64,
    wall: Duration,
    cpu_ticks_s: f64,
    cpu_ns_s: Option<f64>,
    wait_ns_s: Option<f64>,
    client_cpu: Duration,
}

fn cpu_phase(server: &Server, client: &mut Client, request: &[u8], size: u64) -> CpuRow {
    let planned = (CPU_PHASE_BYTES / size).clamp(CPU_PHASE_MIN_REQUESTS, CPU_PHASE_MAX_REQUESTS);
    let hz = clock_ticks_per_second();
    let before = cpu_time(server.pid());
    let client_before = thread_cpu();
    let start = Instant::now();
    let mut requests = 0;
    while requests < planned
        && (requests < CPU_PHASE_MIN_REQUESTS || start.elapsed() < CPU_PHASE_TIME)
    {
        client.get(request).expect("GET in the CPU phase");
        requests += 1;
    }
    let wall = start.elapsed();
    let client_cpu = thread_cpu().saturating_sub(client_before);
    let after = cpu_time(server.pid());
    let cpu_ticks_s = (after.ticks - before.ticks) as f64 / hz as f64;
    let delta =
        |b: Option<u64>, a: Option<u64>| b.zip(a).map(|(b, a)| a.saturating_sub(b) as f64 / 1e9);
    let cpu_ns_s = delta(before.ns, after.ns);
    let wait_ns_s = delta(before.wait_ns, after.wait_ns);
    CpuRow {
        strategy: server.strategy,
        size,
        requests,
        wall,
        cpu_ticks_s,
        cpu_ns_s,
        wait_ns_s,
        client_cpu,
    }
}

fn print_cpu_table(rows: &[CpuRow]) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nserver CPU (utime+stime from /proc/PID/stat; schedstat sum in brackets); busy and \
         run-queue wait of the server and CPU of the client, as % of wall time\n\
         {:<9} {:>7} {:>8} {:>8} {:>22} {:>20} {:>7} {:>7} {:>7}",
        "strategy",
        "size",
        "requests",
        "GB/s",
        "CPU µs/request",
        "CPU s/GB",
        "busy",
        "waited",
        "client"
    );
    for r in rows {
        let bytes = (r.size * r.requests) as f64;
        let per_req = |s: f64| s * 1e6 / r.requests as f64;
        let per_gb = |s: f64| s / (bytes / 1e9);
        let sched = |f: &dyn Fn(f64) -> f64, p: usize| {
            r.cpu_ns_s.map_or_else(|| "-".to_string(), |s| format!("{:.p$}", f(s)))
        };
        let _ = writeln!(
            out,
            "{:<9} {:>7} {:>8} {:>8.2} {:>10.2} [{:>9}] {:>8.3} [{:>9}] {:>6.0}% {:>6.0}% {:>6.0}%",
            r.strategy,
            size_label(r.size),
            r.requests,
            bytes / r.wall.as_secs_f64() / 1e9,
            per_req(r.cpu_ticks_s),
            sched(&per_req, 2),
            per_gb(r.cpu_ticks_s),
            sched(&per_gb, 3),
            r.cpu_ns_s.unwrap_or(r.cpu_ticks_s) / r.wall.as_secs_f64() * 100.0,
            r.wait_ns_s.map_or(f64::NAN, |w| w / r.wall.as_secs_f64() * 100.0),
            r.client_cpu.as_secs_f64() / r.wall.as_secs_f64() * 100.0,
        );
    }
    println!("{out}");
}

/// Criterion settings per size, chosen so the default run stays near ten minutes.
fn configure(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, size: u64) {
    match size {
        s if s <= 256 * KIB => {
            g.sample_size(50)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        }
        s if s <= 4 * MIB => {
            g.sample_size(30)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(4));
        }
        s if s <= 64 * MIB => {
            g.sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(6));
        }
        _ => {
            g.sampling_mode(SamplingMode::Flat)
                .sample_size(10)
                .warm_up_time(Duration::from_secs(2))
                .measurement_time(Duration::from_secs(30));
        }
    }
}

fn main() {
    if let Err(e) = pin_to(CLIENT_CPU) {
        eprintln!("note: cannot pin the client to CPU {CLIENT_CPU} ({e}); figures will mix");
    }
    let mut criterion = Criterion::default().configure_from_args();
    // `cargo test --benches` runs each bench once to check it works; skip the CPU phase then.
    let test_mode = std::env::args().any(|a| a == "--test");

    let root = manifest_dir().join("target/bench-data");
    fs::create_dir_all(&root).expect("creating target/bench-data");
    let mut sizes = SIZES.to_vec();
    if std::env::var("RINGCAST_BENCH_LARGE").is_ok_and(|v| v == "1") {
        sizes.push(GIB);
    } else {
        println!("note: 1 GiB skipped; set RINGCAST_BENCH_LARGE=1 to include it");
    }
    for &size in &sizes {
        ensure_body(&root, size).expect("creating a body file");
    }

    let bin = server_binary();
    let mut servers = Vec::new();
    for strategy in STRATEGIES {
        match Server::start(&bin, &root, strategy) {
            Ok(server) => {
                let client = Client::connect(server.addr).expect("connecting to the server");
                println!("{strategy}: pid {} on {}", server.pid(), server.addr);
                servers.push((server, client));
            }
            Err(why) => println!("note: strategy {strategy} skipped: {why}"),
        }
    }
    assert!(!servers.is_empty(), "no strategy could be started");

    let mut rows = Vec::new();
    for &size in &sizes {
        let request = format!(
            "GET /{} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: ringcast-bench\r\n\r\n",
            file_name(size)
        )
        .into_bytes();
        // Warm the page cache and each server's open-file cache outside any measurement.
        for (_, client) in &mut servers {
            assert_eq!(client.get(&request).expect("warm-up GET"), size);
        }
        let mut g = criterion.benchmark_group(format!("body/{}", size_label(size)));
        configure(&mut g, size);
        g.throughput(Throughput::Bytes(size));
        let mut selected = Vec::new();
        for (i, (server, client)) in servers.iter_mut().enumerate() {
            // Criterion calls the closure only for ids its filter selects: the CPU phase
            // follows the same selection.
            // Criterion calls the closure once per sample: reconnect on the first call only.
            let mut reconnected = false;
            g.bench_function(BenchmarkId::from_parameter(server.strategy), |b| {
                if !reconnected {
                    selected.push(i);
                    client.reconnect(&request).expect("GET on a new connection");
                    reconnected = true;
                }
                b.iter(|| client.get(&request).expect("GET"));
            });
        }
        g.finish();
        if !test_mode {
            for i in selected {
                let (server, client) = &mut servers[i];
                client.reconnect(&request).expect("GET on a new connection");
                rows.push(cpu_phase(server, client, &request, size));
            }
        }
    }
    if !rows.is_empty() {
        print_cpu_table(&rows);
    }
    drop(servers);
    criterion.final_summary();
}
