#!/usr/bin/env python3
"""Soak test: mixed load with injected faults against a real ringcast, on 127.0.0.1 only.

Usage: soak.py DURATION [--binary PATH] [--driver uring|epoll] [--dir DIR] [--workers N]

The load (stdlib clients, one thread each, bounded by the run's duration):
  small files on keep-alive connections and on a new connection per request, whole large
  downloads, random byte ranges, HLS viewers (master playlist, media playlist, segments in
  order), a slow reader on a small receive buffer;
the faults:
  clients aborting mid-transfer (FIN or RST), files replaced (write + rename) and truncated in
  place while being served, and a restart in the middle (a second ringcast on the same port,
  then SIGTERM to the first, as docs/operations.md describes).

Every request ends in exactly one outcome: `ok`, `expected:REASON` (the injected fault
explains it: an abort, a file truncated under the transfer, a reused keep-alive connection
closed when idle and retried once, RFC 9112 §9.3.1) or `FAIL:REASON`. Bodies of files that do
not change are compared byte for byte; a body of a changing file must be a prefix of one of
the versions it has had.

At checkpoints the clients stop, every connection is closed, and the server's resident memory
(VmRSS), open descriptors (/proc/PID/fd) and active connections (its own metrics) are read. A
checkpoint after a warm-up is each process's baseline; its last checkpoint must be back to
that baseline within the tolerances printed. Exit status: 0 pass, 1 failure (the reason on
the last lines), 2 bad usage. Only the processes this script starts are signalled.
"""

import argparse
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

SMALL_FILES = 160
LARGE_FILES = 2
LARGE_BYTES = 24 << 20
MUTABLE_FILES = 4
MUTABLE_BYTES = 1 << 20
SEGMENTS = 12
REVALIDATE_S = 0.2  # --file-cache-revalidate
FILE_CACHE_ENTRIES = 64  # small, so the cache is full (and evicting) from the warm-up on
FD_TOLERANCE = 8
RSS_TOLERANCE_BYTES = 16 << 20
RSS_TOLERANCE_SHARE = 0.10
CHECKPOINT_EVERY_S = 300.0
IO_TIMEOUT_S = 30.0


def parse_duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"bad duration {text!r} (e.g. 60s, 30m)")
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return float(m.group(1)) * scale


# ---------------------------------------------------------------------------- files


class Corpus:
    """The served tree and what every file must contain."""

    def __init__(self, root):
        self.root = root
        self.content = {}  # path -> bytes, for files that never change
        self.versions = {}  # mutable path -> list of bytes, every version it has had
        self.in_place = {}  # mutable path -> [(start, end)] monotonic windows of in-place changes
        self.lock = threading.Lock()
        rng = random.Random(16)
        for i in range(SMALL_FILES):
            self.put(f"/small/s{i}.bin", rng.randbytes(rng.randint(1, 60_000)))
        for i in range(LARGE_FILES):
            self.put(f"/large/l{i}.bin", rng.randbytes(LARGE_BYTES))
        variants = []
        for v, seg_bytes in enumerate([150_000, 400_000]):
            lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:1", "#EXT-X-PLAYLIST-TYPE:VOD"]
            for s in range(SEGMENTS):
                self.put(f"/hls/v{v}/seg{s}.ts", rng.randbytes(seg_bytes))
                lines += ["#EXTINF:0.500,", f"seg{s}.ts"]
            lines.append("#EXT-X-ENDLIST")
            self.put(f"/hls/v{v}/index.m3u8", ("\n".join(lines) + "\n").encode())
            variants += [f"#EXT-X-STREAM-INF:BANDWIDTH={(v + 1) * 2_000_000}", f"v{v}/index.m3u8"]
        self.put("/hls/master.m3u8", ("\n".join(["#EXTM3U"] + variants) + "\n").encode())
        for i in range(MUTABLE_FILES):
            path = f"/mut/m{i}.bin"
            first = rng.randbytes(MUTABLE_BYTES)
            self.versions[path] = [first]
            self.in_place[path] = []
            self.write(path, first)
        self.small = [p for p in self.content if p.startswith("/small/")]
        self.large = [p for p in self.content if p.startswith("/large/")]
        self.mutable = list(self.versions)

    def disk(self, path):
        return os.path.join(self.root, path.lstrip("/"))

    def write(self, path, data):
        os.makedirs(os.path.dirname(self.disk(path)), exist_ok=True)
        with open(self.disk(path), "wb") as f:
            f.write(data)

    def put(self, path, data):
        self.content[path] = data
        self.write(path, data)

    def could_be(self, path, body):
        """A body of a changing file is a prefix of one of its versions."""
        with self.lock:
            return any(v[: len(body)] == body for v in self.versions[path])


# ---------------------------------------------------------------------------- HTTP


class Closed(Exception):
    """The peer closed or reset the connection; `started` says whether a response had begun."""

    def __init__(self, what, started):
        super().__init__(what)
        self.started = started


class Conn:
    def __init__(self, port, rcvbuf=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(IO_TIMEOUT_S)
        self.sock.connect(("127.0.0.1", port))
        self.buf = b""
        self.used = 0  # responses read on this connection
        self.closing = False  # the last response said `Connection: close`

    def close(self, reset=False):
        if reset:  # SO_LINGER 0: close sends RST
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _more(self, started):
        try:
            chunk = self.sock.recv(1 << 16)
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(f"reset: {e}", started) from None
        if not chunk:
            raise Closed("closed by the server", started)
        self.buf += chunk

    def send(self, method, path, headers=()):
        lines = [f"{method} {path} HTTP/1.1", "Host: soak"] + [f"{k}: {v}" for k, v in headers]
        try:
            self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        except (ConnectionResetError, BrokenPipeError) as e:
            raise Closed(f"send: {e}", False) from None

    def head(self):
        """Reads a response head: (status, headers dict with lower-case names)."""
        while b"\r\n\r\n" not in self.buf:
            self._more(bool(self.buf))
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        fields = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            fields[k.strip().lower()] = v.strip()
        return status, fields

    def body(self, length, sink=None, pace=None):
        """Reads `length` body bytes; returns them (or, with `sink`, feeds them to it)."""
        got = bytearray() if sink is None else None
        left = length
        while left:
            if not self.buf:
                self._more(True)
                if pace:
                    pace()
            take, self.buf = self.buf[:left], self.buf[left:]
            left -= len(take)
            if sink is None:
                got += take
            else:
                sink(take)
        self.used += 1
        return bytes(got) if got is not None else None

    def exchange(self, method, path, headers=()):
        self.send(method, path, headers)
        status, fields = self.head()
        n = int(fields.get("content-length", "0"))
        body = b"" if method == "HEAD" or status in (204, 304) else self.body(n)
        if method == "HEAD":
            self.used += 1
        self.closing = fields.get("connection", "").lower() == "close"
        return status, fields, body


# ---------------------------------------------------------------------------- the run


class Run:
    def __init__(self, args, corpus):
        self.args = args
        self.corpus = corpus
        self.port = free_port()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.outcomes = {}  # (client, outcome) -> count
        self.failures = []  # first few failure details
        self.restarting = False
        self.mutate = threading.Event()

    def record(self, client, outcome, detail=""):
        with self.lock:
            key = (client, outcome)
            self.outcomes[key] = self.outcomes.get(key, 0) + 1
            if outcome.startswith("FAIL") and len(self.failures) < 20:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {client}: {outcome} {detail}")

    def retrying(self, client, conn, method, path, headers=()):
        """One request on `conn` (replaced by a new connection when needed). A reused connection
        that closes before any response byte is retried once on a new one (RFC 9112 §9.3.1: the
        server may close an idle keep-alive connection, e.g. while draining); so is a new one
        refused or reset while a restart is under way."""
        if conn is not None and conn.closing:
            conn.close()
            conn = None
        for attempt in range(2):
            try:
                if conn is None:
                    conn = Conn(self.port)
                return conn, conn.exchange(method, path, headers)
            except (Closed, ConnectionRefusedError, ConnectionResetError) as e:
                started = isinstance(e, Closed) and e.started
                idle_close = conn is not None and conn.used > 0 and not started
                if conn is not None:
                    conn.close()
                if attempt == 0 and (idle_close or (self.restarting and not started)):
                    self.record(client, "expected:retried-after-close")
                    conn = None
                    continue
                raise
        raise AssertionError("unreachable")

    # Clients -------------------------------------------------------------------------

    def client(self, name, body):
        rng = random.Random(zlib.crc32(name.encode()))
        conn = None
        while not self.stop.is_set():
            try:
                conn = body(name, rng, conn)
            except (Closed, OSError) as e:
                started = isinstance(e, Closed) and e.started
                if self.restarting and not started:
                    # A new connection refused or reset before any response byte while the
                    # restart is under way (the kernel window docs/operations.md describes).
                    self.record(name, "expected:closed-before-response-in-restart", repr(e))
                else:
                    self.record(name, "FAIL:connection", repr(e))
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)
            except AssertionError as e:
                self.record(name, "FAIL:content", str(e))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def check(self, name, status, want_status, body, want, what):
        if status != want_status:
            raise AssertionError(f"{what}: status {status}, want {want_status}")
        if body != want:
            raise AssertionError(f"{what}: body differs ({len(body)} bytes, want {len(want)})")
        self.record(name, "ok")

    def small_keepalive(self, name, rng, conn):
        path = rng.choice(self.corpus.small)
        method = "HEAD" if rng.random() < 0.1 else "GET"
        conn, (status, fields, body) = self.retrying(name, conn, method, path)
        want = b"" if method == "HEAD" else self.corpus.content[path]
        self.check(name, status, 200, body, want, path)
        if method == "HEAD" and int(fields["content-length"]) != len(self.corpus.content[path]):
            raise AssertionError(f"HEAD {path}: content-length {fields['content-length']}")
        return conn

    def small_new_connection(self, name, rng, conn):
        path = rng.choice(self.corpus.small)
        conn, (status, _, body) = self.retrying(name, None, "GET", path, [("Connection", "close")])
        conn.close()
        self.check(name, status, 200, body, self.corpus.content[path], path)
        return None

    def large_download(self, name, rng, conn):
        path = rng.choice(self.corpus.large)
        conn, (status, _, body) = self.retrying(name, conn, "GET", path)
        self.check(name, status, 200, body, self.corpus.content[path], path)
        return conn

    def ranges(self, name, rng, conn):
        path = rng.choice(self.corpus.large)
        data = self.corpus.content[path]
        first = rng.randrange(len(data))
        last = min(len(data) - 1, first + rng.choice([1, 100, 4096, 65_536, 1 << 20]))
        spec = f"bytes={first}-{last}" if rng.random() < 0.8 else f"bytes=-{last - first + 1}"
        want = data[first : last + 1] if not spec.startswith("bytes=-") else data[-(last - first + 1) :]
        conn, (status, _, body) = self.retrying(name, conn, "GET", path, [("Range", spec)])
        self.check(name, status, 206, body, want, f"{path} {spec}")
        return conn

    def hls_viewer(self, name, rng, conn):
        get = lambda p: self.retrying(name, conn, "GET", p)  # noqa: E731
        conn, (status, _, master) = get("/hls/master.m3u8")
        self.check(name, status, 200, master, self.corpus.content["/hls/master.m3u8"], "master")
        variant = rng.choice([ln for ln in master.decode().splitlines() if ln.endswith(".m3u8")])
        playlist_path = f"/hls/{variant}"
        conn, (status, _, playlist) = get(playlist_path)
        self.check(name, status, 200, playlist, self.corpus.content[playlist_path], playlist_path)
        base = playlist_path.rsplit("/", 1)[0]
        for seg in [ln for ln in playlist.decode().splitlines() if ln.endswith(".ts")]:
            if self.stop.is_set():
                break
            path = f"{base}/{seg}"
            conn, (status, _, body) = get(path)
            self.check(name, status, 200, body, self.corpus.content[path], path)
            time.sleep(0.05)  # a player paced by its buffer
        return conn

    def aborter(self, name, rng, conn):
        """Starts a large download and walks away mid-body (half the time with a reset)."""
        path = rng.choice(self.corpus.large)
        c = None
        try:
            c = Conn(self.port)
            c.send("GET", path)
            status, _ = c.head()
            if status != 200:
                raise AssertionError(f"{path}: status {status}")
            c.body(rng.randrange(1, 4 << 20), sink=lambda _: None)
            self.record(name, "expected:aborted-by-client")
        except (Closed, ConnectionRefusedError) as e:
            if not self.restarting:
                raise
            self.record(name, "expected:refused-during-restart", repr(e))
        finally:
            if c is not None:
                c.close(reset=rng.random() < 0.5)
        time.sleep(0.02)
        return None

    def slow_reader(self, name, rng, conn):
        """A 2 MiB range read 16 KiB at a time with pauses, on a small receive buffer."""
        path = rng.choice(self.corpus.large)
        first = rng.randrange(LARGE_BYTES - (2 << 20))
        want = self.corpus.content[path][first : first + (2 << 20)]
        c = Conn(self.port, rcvbuf=16 << 10)
        try:
            c.send("GET", path, [("Range", f"bytes={first}-{first + (2 << 20) - 1}")])
            status, _ = c.head()
            got = c.body(len(want), pace=lambda: time.sleep(0.002))
            self.check(name, status, 206, got, want, f"slow {path}")
        finally:
            c.close()
        return None

    def touched(self, path, since):
        """Whether an in-place change of `path` overlapped [since, now]. The server's open-file
        cache may go on using what it saw during the change (a size, a descriptor) until it
        revalidates the entry, so a change counts until two revalidation intervals after it."""
        now = time.monotonic()
        with self.corpus.lock:
            windows = self.corpus.in_place[path]
            return any(t0 <= now and t1 + 2 * REVALIDATE_S >= since for t0, t1 in windows)

    def mutable_reader(self, name, rng, conn):
        """Reads a file that is being replaced and truncated. A replacement (rename) never
        excuses anything: the body is one whole version. A truncation in place overlapping the
        request excuses a 416, a connection closed before the body is complete, and the bytes:
        sendfile and splice hand the kernel references to page-cache pages, not a copy, so a
        file changed in place (truncated, whose partly kept pages the kernel zeroes, then
        written again) while its pages wait in a socket queue is sent as it is then, by ringcast
        as by any sendfile server."""
        path = rng.choice(self.corpus.mutable)
        ranged = rng.random() < 0.3
        headers = [("Range", f"bytes={rng.randrange(MUTABLE_BYTES)}-")] if ranged else []
        c = None
        began = time.monotonic()
        try:
            c = Conn(self.port)
            c.send("GET", path, headers)
            status, fields = c.head()
            if status == 416 and ranged and self.touched(path, began):
                self.record(name, "expected:range-past-truncated-end")
                return None
            if status not in (200, 206):
                raise AssertionError(f"{path}: status {status}")
            got = bytearray()
            c.body(int(fields["content-length"]), sink=got.extend)
            start = int(fields["content-range"].split(" ")[1].split("-")[0]) if status == 206 else 0
            with self.corpus.lock:
                fits = any(v[start : start + len(got)] == got for v in self.corpus.versions[path])
            if fits:
                self.record(name, "ok")
            elif self.touched(path, began):
                self.record(name, "expected:changed-in-place-during-transfer")
            else:
                raise AssertionError(
                    f"{path}: {len(got)} bytes from {start} match no version ({self.mismatch(path, start, got)})"
                )
        except (Closed, ConnectionRefusedError) as e:
            if self.touched(path, began):
                self.record(name, "expected:truncated-while-served")
            elif self.restarting and not (isinstance(e, Closed) and e.started):
                self.record(name, "expected:refused-during-restart", repr(e))
            else:
                raise
        finally:
            if c is not None:
                c.close()
        return None

    def mismatch(self, path, start, got):
        """Where a body of a changing file leaves each version it could have been."""
        out = []
        with self.corpus.lock:
            versions = list(self.corpus.versions[path])
        for i, v in enumerate(versions[-3:]):
            want = v[start : start + len(got)]
            at = next((k for k in range(len(got)) if k >= len(want) or got[k] != want[k]), None)
            zeros = at is not None and not any(got[at : at + 64])
            out.append(f"v-{len(versions[-3:]) - i}: differs at {at}{' (zeros)' if zeros else ''}")
        return ", ".join(out)

    def mutator(self, name, rng, conn):
        """Replaces a file by rename, or truncates it in place and writes it back."""
        path = rng.choice(self.corpus.mutable)
        disk = self.corpus.disk(path)
        if rng.random() < 0.5:
            new = rng.randbytes(MUTABLE_BYTES)
            with self.corpus.lock:
                self.corpus.versions[path].append(new)
                if len(self.corpus.versions[path]) > 64:  # old bodies in flight are long done
                    del self.corpus.versions[path][0]
            tmp = disk + ".tmp"
            with open(tmp, "wb") as f:
                f.write(new)
            os.rename(tmp, disk)
            self.record(name, "ok:replaced")
        else:
            with self.corpus.lock:
                current = self.corpus.versions[path][-1]
            # The window is published before the change starts (open-ended), so a reader that
            # finishes in the middle of it already sees it.
            window = [time.monotonic(), float("inf")]
            with self.corpus.lock:
                windows = self.corpus.in_place[path]
                windows.append(window)
                del windows[:-64]
            with open(disk, "r+b") as f:
                f.truncate(rng.randrange(MUTABLE_BYTES // 2))
                f.flush()
                time.sleep(0.02)
                f.seek(0)
                f.write(current)
            with self.corpus.lock:
                window[1] = time.monotonic()
            self.record(name, "ok:truncated")
        time.sleep(0.1)
        return None

    CLIENTS = [
        ("small-keepalive", "small_keepalive", 3),
        ("small-new-conn", "small_new_connection", 2),
        ("large", "large_download", 1),
        ("ranges", "ranges", 2),
        ("hls", "hls_viewer", 2),
        ("aborter", "aborter", 1),
        ("slow", "slow_reader", 1),
        ("mutable", "mutable_reader", 2),
        ("mutator", "mutator", 1),
    ]

    def load(self, seconds, during=None):
        """Runs every client for `seconds` (and `during`, a callable, beside them), then stops
        them and waits until every client thread has closed its connections."""
        self.stop.clear()
        threads = []
        for label, method, count in self.CLIENTS:
            for i in range(count):
                t = threading.Thread(target=self.client, args=(f"{label}#{i}", getattr(self, method)))
                t.start()
                threads.append(t)
        deadline = time.monotonic() + seconds
        if during:
            during()
        self.stop.wait(max(0.0, deadline - time.monotonic()))
        self.stop.set()
        for t in threads:
            t.join(IO_TIMEOUT_S * 3)
            if t.is_alive():
                die(f"client thread {t.name} did not stop")


# ---------------------------------------------------------------------------- the server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, args, root, port, log_path):
        self.log_path = log_path
        open(log_path, "w").close()
        self.log = open(log_path, "ab")
        cmd = [
            args.binary, "--listen", f"127.0.0.1:{port}", "--driver", args.driver,
            "--workers", str(args.workers), "--metrics-listen", "127.0.0.1:0",
            "--file-cache-entries", str(FILE_CACHE_ENTRIES), "--file-cache-revalidate", f"{REVALIDATE_S * 1000:.0f}ms",
            "--drain-timeout", "60s", root,
        ]
        env = dict(os.environ, RUST_LOG="ringcast=info")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, stdin=subprocess.DEVNULL, env=env)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on http://"):
            self.proc.wait(10)
            die(f"ringcast did not start: {line!r}\n{tail(log_path)}")
        self.metrics = None
        for _ in range(100):
            m = re.findall(r"http://([0-9.:]+)/metrics", open(log_path, errors="replace").read())
            if m:
                self.metrics = m[-1]
                break
            time.sleep(0.05)
        if not self.metrics:
            die(f"no metrics address in {log_path}")
        self.pid = self.proc.pid

    def rss(self):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def scrape(self, family):
        host, port = self.metrics.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        text = data.split(b"\r\n\r\n", 1)[1].decode()
        return sum(int(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(family + "{"))

    def terminate(self, timeout):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            die(f"ringcast {self.pid} did not exit within {timeout}s of SIGTERM")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def tail(path, n=20):
    try:
        return "".join(open(path, errors="replace").readlines()[-n:])
    except OSError:
        return ""


def die(msg):
    print(f"soak: FAIL: {msg}", file=sys.stderr, flush=True)
    for s in list(SERVERS):
        s.kill()
    sys.exit(1)


SERVERS = []


def checkpoint(server, label):
    """Waits (bounded) for the server to close every connection and its counts to settle, then
    reads them."""
    if server.proc.poll() is not None:
        die(f"ringcast {server.pid} exited ({server.proc.returncode}) under load:\n{tail(server.log_path)}")
    until = time.monotonic() + 20
    last = None
    while time.monotonic() < until:
        active = server.scrape("ringcast_connections_active")
        now = (server.fds(), active)
        if active == 0 and now == last:
            break
        last = now
        time.sleep(1.0)
    fds, rss = server.fds(), server.rss()
    active = server.scrape("ringcast_connections_active")
    requests = server.scrape("ringcast_requests_total")
    print(
        f"soak: {time.strftime('%H:%M:%S')} checkpoint {label}: pid {server.pid} rss {rss / 1048576:.1f} MiB, "
        f"{fds} fds, {active} active connections, {requests} responses",
        flush=True,
    )
    return {"rss": rss, "fds": fds, "active": active}


def compare(label, base, end):
    rss_limit = base["rss"] * (1 + RSS_TOLERANCE_SHARE) + RSS_TOLERANCE_BYTES
    problems = []
    if end["active"] != 0:
        problems.append(f"{end['active']} connections still active")
    if abs(end["fds"] - base["fds"]) > FD_TOLERANCE:
        problems.append(f"{end['fds']} fds against a baseline of {base['fds']} (tolerance ±{FD_TOLERANCE})")
    if end["rss"] > rss_limit:
        problems.append(
            f"RSS {end['rss'] / 1048576:.1f} MiB against a baseline of {base['rss'] / 1048576:.1f} MiB "
            f"(limit {rss_limit / 1048576:.1f} MiB)"
        )
    verdict = "; ".join(problems) if problems else "back to baseline"
    print(f"soak: {label}: {verdict}", flush=True)
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("duration", type=parse_duration)
    ap.add_argument("--binary", default="target/release/ringcast")
    ap.add_argument("--driver", default="uring", choices=["uring", "epoll"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", default="target/soak")
    args = ap.parse_args()
    if args.duration < 20:
        ap.error("DURATION must be at least 20s")
    if not os.access(args.binary, os.X_OK):
        ap.error(f"{args.binary} is not an executable (build it first)")

    root = os.path.join(args.dir, "root")
    log_path = os.path.join(args.dir, "ringcast.log")
    os.makedirs(args.dir, exist_ok=True)
    started = time.monotonic()
    corpus = Corpus(root)
    run = Run(args, corpus)
    print(
        f"soak: {args.duration:.0f}s on 127.0.0.1:{run.port}, driver {args.driver}, {args.workers} workers, "
        f"tolerances: fds ±{FD_TOLERANCE}, RSS +{RSS_TOLERANCE_SHARE:.0%} +{RSS_TOLERANCE_BYTES >> 20} MiB",
        flush=True,
    )

    warm = min(10.0, args.duration * 0.1)
    half = args.duration / 2
    problems = []
    a = Server(args, root, run.port, log_path + ".A")
    SERVERS.append(a)
    try:
        run.load(warm)
        a_base = checkpoint(a, "A baseline (after warm-up)")
        segment_load(run, a, half - warm - 10, "A")
        problems += compare("process A", a_base, checkpoint(a, "A end"))

        # The restart under load: B joins the port, A drains and exits 0.
        holder = {}

        def restart():
            time.sleep(2.0)
            run.restarting = True
            holder["b"] = Server(args, root, run.port, log_path + ".B")
            SERVERS.append(holder["b"])
            rc = a.terminate(90)
            time.sleep(1.0)
            run.restarting = False
            print(f"soak: {time.strftime('%H:%M:%S')} restart: B pid {holder['b'].pid} started, A exited {rc}", flush=True)
            if rc != 0:
                problems.append(f"process A exited {rc} after SIGTERM")

        run.load(8.0 + warm, during=restart)
        b = holder["b"]
        b_base = checkpoint(b, "B baseline (after the restart)")
        rest = args.duration - (time.monotonic() - started)
        segment_load(run, b, max(5.0, rest - 5), "B")
        problems += compare("process B", b_base, checkpoint(b, "B end"))
        rc = b.terminate(90)
        if rc != 0:
            problems.append(f"process B exited {rc} after SIGTERM")
    finally:
        for s in SERVERS:
            s.kill()

    print("soak: outcomes by client:")
    fails = 0
    for (client, outcome), n in sorted(run.outcomes.items()):
        print(f"  {client:<20} {outcome:<36} {n}")
        if outcome.startswith("FAIL"):
            fails += n
    total = sum(run.outcomes.values())
    expected = sum(n for (_, o), n in run.outcomes.items() if o.startswith("expected"))
    print(f"soak: {total} outcomes, {expected} expected faults, {fails} failures, {time.monotonic() - started:.0f}s")
    for label, _, _ in Run.CLIENTS:
        good = sum(n for (c, o), n in run.outcomes.items() if c.startswith(label + "#") and not o.startswith("FAIL"))
        if good == 0:
            problems.append(f"client {label} completed nothing")
    if fails:
        problems.append(f"{fails} requests failed that should not have:\n  " + "\n  ".join(run.failures))
    if problems:
        for s in SERVERS:
            print(f"soak: server log {s.log_path}:\n{tail(s.log_path)}", file=sys.stderr)
        die("\n  ".join(problems))
    print("soak: PASS")


def segment_load(run, server, seconds, label):
    """Load in chunks of at most CHECKPOINT_EVERY_S, with a checkpoint after each but the last."""
    left = seconds
    n = 0
    while left > CHECKPOINT_EVERY_S * 1.5:
        run.load(CHECKPOINT_EVERY_S)
        left -= CHECKPOINT_EVERY_S
        n += 1
        checkpoint(server, f"{label} after {n * CHECKPOINT_EVERY_S:.0f}s")
    run.load(max(1.0, left))


if __name__ == "__main__":
    main()
