#!/usr/bin/env python3
"""Runs the benchmark scenarios against running servers and reports medians and ratios.

Called by scripts/bench.sh once both servers are up (pinned, warmed, on loopback ports):

    run.py --mode full|quick [--only 1k,16k,...] --load BIN --out DIR --www DIR \
           --server ringcast=PID=URL --server nginx=PID=URL

Every client runs pinned to --client-cpu. Each measured run is preceded by a short unrecorded
run of the same load (connections opened, caches warm), and the server's CPU time (utime +
stime from /proc/PID/stat, which counts every thread; for a master process its children are
added) is read right before and right after the measured run, so CPU per request and per GB
cover exactly the requests the client counted. Within a round the servers alternate: odd
rounds ringcast first, even rounds nginx first.

Writes DIR/runs.json (every run), DIR/summary.json (medians, ratios, targets), DIR/table.md
(printed too), raw client JSON under DIR/raw/ and latency plots under DIR/plots/.
"""
import argparse
import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

HZ = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve().parent


def _wire_module():
    """loadtest/scripts/wire-latency.py (its request-to-response pairing of a capture)."""
    spec = importlib.util.spec_from_file_location("wire_latency", HERE.parents[1] / "loadtest/scripts/wire-latency.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod

MODES = {
    # hls_playlist: index.m3u8 has 10 segments (20 s), short.m3u8 the first 4 (8 s).
    "full": {"rounds": 3, "secs": 10.0, "warm": 1.0, "idle_n": 10000, "hls_viewers": [500, 1000, 2000, 3000],
             "hls_playlist": "index.m3u8", "cold_secs": 10.0},
    "quick": {"rounds": 1, "secs": 3.0, "warm": 0.5, "idle_n": 2000, "hls_viewers": [500],
              "hls_playlist": "short.m3u8", "cold_secs": 3.0},
}
# In this order; idle first, while both servers are fresh (see sc_idle).
SCENARIOS = ["idle", "ceiling", "1k", "16k", "256k", "1g", "ranges", "rate50", "rate90", "wrk1k", "wrk16k", "hls", "cold",
             "fair", "tls1k", "tls1g", "tlsfull", "tlsresume"]
# Names that stand for several scenarios in --only.
GROUPS = {"tls": ["tls1k", "tls1g", "tlsfull", "tlsresume"]}


class Server:
    def __init__(self, spec: str):
        self.name, pid, self.url = spec.split("=", 2)
        self.pid = int(pid)

    def pids(self) -> list[int]:
        """The process and its children (nginx: master and workers)."""
        out = [self.pid]
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                out += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                pass
        return out

    def worker_pid(self) -> int:
        """The process holding the connections: nginx's worker, ringcast itself."""
        kids = self.pids()[1:]
        return kids[0] if kids else self.pid

    def cpu_s(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
        return total / HZ

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
            return True
        except OSError:
            return False


class Bench:
    def __init__(self, args):
        self.a = args
        self.m = MODES[args.mode]
        self.out = Path(args.out)
        (self.out / "raw").mkdir(parents=True, exist_ok=True)
        (self.out / "plots").mkdir(parents=True, exist_ok=True)
        self.servers = [Server(s) for s in args.server]
        # Each server's https:// base URL (--tls-url NAME=URL) for the TLS scenarios.
        self.tls_urls = dict(spec.split("=", 1) for spec in args.tls_url or [])
        # Servers measured only against themselves (the fair scenario): ringcast on epoll.
        self.extra = {srv.name: srv for srv in map(Server, args.extra_server or [])}
        self.runs: list[dict] = []
        self.nginx_max_1k: list[float] = []
        self.loaded = False  # any load other than idle has run
        self.wire = None  # the wire-latency module once found usable, False if not

    # ---- running clients ------------------------------------------------------------------
    def pinned(self, cmd: list[str]) -> list[str]:
        return ["taskset", "-c", str(self.a.client_cpu)] + [str(c) for c in cmd]

    def run(self, cmd, timeout: float) -> str:
        p = subprocess.run(self.pinned(cmd), capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"client failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-2000:]}")
        return p.stdout

    def check_alive(self, srv: Server, what: str):
        if not srv.alive():
            sys.exit(f"bench: {srv.name} died during {what}; its log is in {self.out}/{srv.name}.log")

    def load(self, scenario: str, srv: Server, rnd: int, args: list, secs: float | None = None, warm=True,
             wire=False) -> dict:
        """One warm-up run and one measured run of ringcast-load; returns the record. With `wire`,
        the measured run is captured on `lo` (when tcpdump is there) and the record gets the
        server's own latency: first request byte to first response byte, on the wire."""
        secs = secs or self.m["secs"]
        if warm:
            self.run([self.a.load, "-q", "-d", f"{self.m['warm']}s"] + args, timeout=self.m["warm"] + 60)
        path = self.out / "raw" / f"{scenario}-{srv.name}-r{rnd}.json"
        capture = self.capture(srv, self.out / "raw" / f"{scenario}-{srv.name}-r{rnd}.pcap") if wire else None
        c0 = srv.cpu_s()
        try:
            self.run([self.a.load, "-q", "-d", f"{secs}s", "--json", path] + args, timeout=secs + 60)
        finally:
            c1 = srv.cpu_s()
            wire_us = capture() if capture else None
        self.check_alive(srv, scenario)
        d = json.loads(path.read_text())
        extra = {}
        if wire_us:
            extra = {f"wire_{k}_ms": self.wire.pct(wire_us, q) / 1000
                     for k, q in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}
        return self.record(scenario, srv, rnd, c1 - c0, d["requests"], d["errors"], d["bytes"], d["duration_s"],
                           d["rate_achieved"], d["latency_us"], path, missed=d.get("missed", 0),
                           client_cpu_us_per_req=d.get("client_cpu_us_per_request"), **extra)

    def capture(self, srv: Server, pcap: Path):
        """Starts tcpdump on `lo` for the request and response packets of `srv`'s port (pinned to
        the client CPU; the timestamps are taken by the kernel as packets are sent). Returns a
        function that stops it and returns the latencies in µs, or None without tcpdump or root."""
        if self.wire is None:
            if not shutil.which("tcpdump") or os.geteuid() != 0:
                print("bench: no tcpdump or not root: no on-the-wire latencies", file=sys.stderr)
                self.wire = False
            else:
                self.wire = _wire_module()
        if not self.wire:
            return None
        port = urlparse(srv.url).port
        # Packets with a payload and below 2000 bytes: the small requests and their responses,
        # not the bulk transfers' segments nor their bare ACKs.
        p = subprocess.Popen(self.pinned(["tcpdump", "-i", "lo", "-s", "96", "-B", "65536", "-w", pcap,
                                          f"tcp port {port} and greater 80 and less 2000"]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

        def stop():
            time.sleep(0.3)
            p.terminate()
            p.wait(timeout=10)
            try:
                return self.wire.wire_latencies(pcap, port)
            finally:
                pcap.unlink(missing_ok=True)
        return stop

    def record(self, scenario, srv, rnd, cpu, requests, errors, nbytes, secs, rate, lat, path, **extra) -> dict:
        r = {
            "scenario": scenario, "server": srv.name, "round": rnd,
            "requests": requests, "errors": errors, "bytes": nbytes, "duration_s": secs,
            "req_per_s": rate, "mb_per_s": nbytes / secs / 1e6 if secs else 0.0,
            "server_cpu_s": round(cpu, 3),
            "cpu_us_per_req": cpu * 1e6 / requests if requests else None,
            "cpu_s_per_gb": cpu / (nbytes / 1e9) if nbytes else None,
            "p50_ms": lat["p50"] / 1000 if lat else None,
            "p99_ms": lat["p99"] / 1000 if lat else None,
            "p999_ms": lat["p999"] / 1000 if lat else None,
            "raw": str(path),
        }
        r.update(extra)
        self.runs.append(r)
        cpu_req = f"{r['cpu_us_per_req']:.2f} us/req" if r["cpu_us_per_req"] else "-"
        print(f"bench: {scenario:7} {srv.name:8} r{rnd}: {rate:10.1f} req/s {r['mb_per_s']:9.1f} MB/s "
              f"cpu {cpu:.2f} s ({cpu_req}) errors {errors}"
              + (f" p99 {r['p99_ms']:.3f} ms" if lat else ""), file=sys.stderr)
        return r

    # ---- scenarios ------------------------------------------------------------------------
    def sc_files(self, name, srv, rnd):
        f = {"1k": "1k.bin", "16k": "16k.bin", "256k": "256k.bin"}[name]
        args = ["-c", "64", f"{srv.url}/{f}"]
        if name == "256k":
            args.insert(0, "--discard")
        r = self.load(name, srv, rnd, args)
        if name == "1k" and srv.name == "nginx":
            self.nginx_max_1k.append(r["req_per_s"])

    def sc_1g(self, name, srv, rnd):
        self.load(name, srv, rnd, ["--discard", "-c", "1", "--timeout", "30s", f"{srv.url}/1g.bin"])

    def sc_tls(self, name, srv, rnd):
        """The HTTPS scenarios: the same loads as 1k and 1g over TLS, and a new connection per
        1 KiB request with full or resumed handshakes. The client verifies the certificate
        (--cacert), so its handshake costs what a real client's does."""
        url = self.tls_urls.get(srv.name)
        if not url:
            sys.exit(f"bench: {name}: no --tls-url for {srv.name}")
        tls = ["--cacert", self.a.cacert] if self.a.cacert else ["--insecure"]
        args = {
            "tls1k": ["-c", "64", f"{url}/1k.bin"],
            "tls1g": ["--discard", "-c", "1", "--timeout", "60s", f"{url}/1g.bin"],
            "tlsfull": ["--new-conn", "--no-resume", "-c", "16", f"{url}/1k.bin"],
            "tlsresume": ["--new-conn", "-c", "16", f"{url}/1k.bin"],
        }[name]
        r = self.load(name, srv, rnd, tls + args)
        if name in ("tlsfull", "tlsresume"):
            h = json.loads(Path(r["raw"]).read_text()).get("tls", {})
            n = h.get("handshakes", 0)
            r.update({"handshakes": n, "full": h.get("full", 0), "resumed": h.get("resumed", 0),
                      "handshakes_per_s": n / r["duration_s"] if r["duration_s"] else 0.0,
                      "cpu_us_per_handshake": r["server_cpu_s"] * 1e6 / n if n else None,
                      "handshake_p50_ms": h["handshake_us"]["p50"] / 1000 if n else None,
                      "resumed_share": h.get("resumed", 0) / n if n else None})
            print(f"bench: {name} {srv.name:8} r{rnd}: {n} handshakes ({h.get('full', 0)} full, "
                  f"{h.get('resumed', 0)} resumed), {r['handshakes_per_s']:.0f}/s, "
                  f"{r['cpu_us_per_handshake'] or 0:.0f} µs server CPU each", file=sys.stderr)

    def sc_ranges(self, name, srv, rnd):
        self.load(name, srv, rnd, ["--discard", "-c", "64", "--range-size", "65536", f"{srv.url}/1g.bin"])

    def nginx_max(self) -> float:
        if not self.nginx_max_1k:
            ngx = next(s for s in self.servers if s.name == "nginx")
            self.sc_files("1k", ngx, 0)
        return statistics.median(self.nginx_max_1k)

    def sc_rate(self, name, srv, rnd):
        share = {"rate50": 0.5, "rate90": 0.9}[name]
        rate = round(self.nginx_max() * share)
        self.load(name, srv, rnd, ["-R", str(rate), "-c", "64", f"{srv.url}/1k.bin"])

    def sc_wrk(self, name, srv, rnd):
        f = {"wrk1k": "1k.bin", "wrk16k": "16k.bin"}[name]
        url = f"{srv.url}/{f}"
        self.run(["wrk", "-t1", "-c64", f"-d{max(1, round(self.m['warm']))}s", url], timeout=60)
        secs = self.m["secs"]
        c0 = srv.cpu_s()
        out = self.run(["wrk", "-t1", "-c64", f"-d{secs:g}s", "--latency", url], timeout=secs + 60)
        c1 = srv.cpu_s()
        self.check_alive(srv, name)
        path = self.out / "raw" / f"{name}-{srv.name}-r{rnd}.txt"
        path.write_text(out)
        m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
        requests, took = int(m.group(1)), float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
        errors = 0
        for e in re.findall(r"Non-2xx or 3xx responses: (\d+)", out):
            errors += int(e)
        se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        if se:
            errors += sum(int(x) for x in se.groups())
        size = {"1k.bin": 1024, "16k.bin": 16384}[f]
        self.record(name, srv, rnd, c1 - c0, requests, errors, requests * size, took, requests / took, None, path)

    def sc_idle(self, name, srv, rnd):
        """Memory per idle connection, in round 1 only, before any other load: memory a server freed
        after earlier loads stays resident in its allocator and would be reused by the new
        connections, hiding their cost (measured: 12 bytes instead of ~1,190 for ringcast)."""
        if rnd != 1 or self.loaded:
            print(f"bench: idle    {srv.name:8} r{rnd}: skipped (measured on fresh servers only)", file=sys.stderr)
            return
        path = self.out / "raw" / f"idle-{srv.name}-r{rnd}.json"
        n = self.m["idle_n"]
        self.run([sys.executable, HERE.parent / "idle-memory.py", "--pid", srv.worker_pid(), "--url",
                  f"{srv.url}/1k.bin", "-n", n, "--json", path], timeout=300)
        self.check_alive(srv, name)
        d = json.loads(path.read_text())
        r = {"scenario": name, "server": srv.name, "round": rnd, "connections": n,
             "bytes_per_connection": d["bytes_per_connection"], "raw": str(path)}
        self.runs.append(r)
        print(f"bench: idle    {srv.name:8} r{rnd}: {d['bytes_per_connection']:.0f} bytes per idle connection "
              f"({n} connections)", file=sys.stderr)
        time.sleep(1)  # let the closes drain before the next load

    def sc_hls(self, name, srv, rnd):
        """Viewers of the 5 Mbit/s rendition, each playing the playlist once, all starting together.

        Bounded by a request count (one playlist + its segments per viewer) rather than a duration:
        with `-d`, a viewer whose next segment falls after the end starts a new session at once,
        which turns the last segment period into a closed-loop burst of playlist and first-segment
        fetches (see docs/benchmarks.md). Each request still has the client's 5 s timeout."""
        best = 0
        playlist = Path(self.a.www) / "hls" / "720p" / self.m["hls_playlist"]
        segments = sum(1 for line in playlist.read_text().splitlines() if line and not line.startswith("#"))
        for viewers in self.m["hls_viewers"]:
            path = self.out / "raw" / f"hls{viewers}-{srv.name}-r{rnd}.json"
            c0 = srv.cpu_s()
            self.run([self.a.load, "-q", "--discard", "--hls", f"{srv.url}/hls/720p/{playlist.name}", "--viewers",
                      viewers, "-c", viewers, "--requests", viewers * (1 + segments), "--json", path],
                     timeout=segments * 7 + 60)
            c1 = srv.cpu_s()
            self.check_alive(srv, name)
            d = json.loads(path.read_text())
            h = d.get("hls", {})
            late = h.get("late_share", 1.0)
            ok = late < 0.01 and d["errors"] <= 0.01 * max(1, d["requests"])
            self.record(f"hls{viewers}", srv, rnd, c1 - c0, d["requests"], d["errors"], d["bytes"], d["duration_s"],
                        d["rate_achieved"], d["latency_us"], path, viewers=viewers, late_share=late,
                        segments=h.get("segments", 0), late_segments=h.get("late_segments", 0), ok=ok)
            if not ok:
                break
            best = viewers
        self.runs.append({"scenario": "hls", "server": srv.name, "round": rnd, "max_viewers_ok": best})

    def sc_cold(self, name, srv, rnd):
        """A 1 KiB stream at a fixed rate, alone; beside direct-I/O reads of the 1 GiB file on the
        client CPU only (the server untouched: what the disk alone does to the client's timing);
        beside downloads of the 1 GiB file evicted first; beside downloads of it cached."""
        rate = min(2000, round(self.nginx_max() * 0.25))
        small = ["-R", str(rate), "-c", "16", f"{srv.url}/1k.bin"]
        secs = self.m["cold_secs"]
        self.load("cold-alone", srv, rnd, small, secs=secs, wire=True)
        self.beside_disk(srv, rnd, small, secs)
        for scenario, evict in (("cold-beside", True), ("hot-beside", False)):
            self.beside_downloads(scenario, srv, rnd, small, secs, evict)

    def beside(self, scenario, srv, rnd, small, secs, work) -> dict:
        """Runs the small stream while `work(stop)` runs in a thread pinned to the client CPU."""
        stop = threading.Event()

        def pinned_work():
            os.sched_setaffinity(0, {self.a.client_cpu})  # this thread only
            work(stop)

        t = threading.Thread(target=pinned_work)
        t.start()
        time.sleep(0.2)  # the work is under way
        try:
            return self.load(scenario, srv, rnd, small, secs=secs, warm=False, wire=True)
        finally:
            stop.set()
            t.join()

    def beside_disk(self, srv, rnd, small, secs):
        """The stream beside back-to-back direct-I/O reads of the 1 GiB file on the client CPU."""
        done = {"bytes": 0, "secs": 0.0}

        def reads(stop):
            t0 = time.monotonic()
            while not stop.is_set():
                p = subprocess.run(self.pinned(["nice", "-n", "19", "dd", f"if={Path(self.a.www) / '1g.bin'}",
                                                "of=/dev/null", "bs=1M", "iflag=direct", "status=none"]),
                                   stderr=subprocess.PIPE, text=True, timeout=120)
                if p.returncode != 0:
                    print(f"bench: direct reads failed, none beside this run: {p.stderr.strip()}", file=sys.stderr)
                    break
                done["bytes"] += 1 << 30
            done["secs"] = time.monotonic() - t0

        r = self.beside("disk-beside", srv, rnd, small, secs, reads)
        r["disk_mb_per_s"] = done["bytes"] / done["secs"] / 1e6 if done["secs"] else 0.0
        print(f"bench: disk-beside {srv.name:8} r{rnd}: direct reads on the client CPU at "
              f"{r['disk_mb_per_s']:.0f} MB/s", file=sys.stderr)

    def beside_downloads(self, scenario, srv, rnd, small, secs, evict):
        """Runs the small stream while 1 GiB downloads run back to back (evicted first or not)."""
        big = self.out / "raw" / f"{scenario}-big-{srv.name}-r{rnd}.json"
        done = {"downloads": 0, "bytes": 0, "secs": 0.0, "errors": 0}

        def downloads(stop):
            fd = os.open(Path(self.a.www) / "1g.bin", os.O_RDONLY)
            try:
                while not stop.is_set():
                    if evict:
                        # Evict only this file from the page cache (clean pages are dropped), on
                        # the client CPU: freeing 1 GiB of pages is not the server's work.
                        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                    t0 = time.monotonic()
                    self.run([self.a.load, "-q", "--discard", "-c", "1", "--requests", "1", "--timeout", "60s",
                              "--json", big, f"{srv.url}/1g.bin"], timeout=120)
                    d = json.loads(big.read_text())
                    done["downloads"] += d["requests"]
                    done["errors"] += d["errors"]
                    done["bytes"] += d["bytes"]
                    done["secs"] += time.monotonic() - t0
            finally:
                os.close(fd)

        if not evict:
            subprocess.run(self.pinned(["cat", Path(self.a.www) / "1g.bin"]), stdout=subprocess.DEVNULL, check=True)
        r = self.beside(scenario, srv, rnd, small, secs, downloads)
        r.update({"cold_downloads": done["downloads"], "cold_errors": done["errors"],
                  "cold_mb_per_s": done["bytes"] / done["secs"] / 1e6 if done["secs"] else 0.0})
        kind = "cold" if evict else "cached"
        print(f"bench: {scenario} {srv.name:8} r{rnd}: {done['downloads']} {kind} 1 GiB downloads at "
              f"{r['cold_mb_per_s']:.0f} MB/s, {done['errors']} errors", file=sys.stderr)

    def sc_fair(self, name, rnd):
        """The same 1 KiB stream as the cold scenario, alone and beside back-to-back downloads of
        the cached 1 GiB file, on ringcast's io_uring driver and on its epoll fallback: a
        transfer must yield the core to the stream on either driver (the target: p99 beside the
        downloads within 2× of the stream alone)."""
        drivers = [next(s for s in self.servers if s.name == "ringcast")]
        if "ringcast-epoll" in self.extra:
            drivers.append(self.extra["ringcast-epoll"])
        else:
            print("bench: fair: no ringcast-epoll server given, io_uring only", file=sys.stderr)
        rate = min(2000, round(self.nginx_max() * 0.25))
        secs = self.m["cold_secs"]
        for srv in drivers if rnd % 2 == 1 else reversed(drivers):
            small = ["-R", str(rate), "-c", "16", f"{srv.url}/1k.bin"]
            self.load("fair-alone", srv, rnd, small, secs=secs, wire=True)
            self.beside_downloads("fair-beside", srv, rnd, small, secs, evict=False)

    def sc_ceiling(self, name, rnd):
        """The 1g scenario against a bare blocking-sendfile responder (sendfile_ceiling.py)."""
        p = subprocess.Popen(["taskset", "-c", str(self.a.server_cpu), sys.executable, HERE / "sendfile_ceiling.py",
                              "--file", Path(self.a.www) / "1g.bin"], stdout=subprocess.PIPE, text=True)
        try:
            url = p.stdout.readline().split()[-1]
            srv = Server(f"sendfile={p.pid}={url}")
            self.load(name, srv, rnd, ["--discard", "-c", "1", "--timeout", "30s", f"{url}/1g.bin"])
        finally:
            p.terminate()
            p.wait(timeout=10)

    # ---- the run --------------------------------------------------------------------------
    def go(self, only: list[str]):
        table = {"1k": self.sc_files, "16k": self.sc_files, "256k": self.sc_files, "1g": self.sc_1g,
                 "ranges": self.sc_ranges, "rate50": self.sc_rate, "rate90": self.sc_rate, "wrk1k": self.sc_wrk,
                 "wrk16k": self.sc_wrk, "idle": self.sc_idle, "hls": self.sc_hls, "cold": self.sc_cold}
        table.update({sc: self.sc_tls for sc in GROUPS["tls"]})
        for rnd in range(1, self.m["rounds"] + 1):
            order = self.servers if rnd % 2 == 1 else list(reversed(self.servers))
            print(f"bench: round {rnd}/{self.m['rounds']}, order {' then '.join(s.name for s in order)}",
                  file=sys.stderr)
            for sc in only:
                if sc == "ceiling":
                    self.sc_ceiling(sc, rnd)
                    continue
                if sc == "fair":
                    self.sc_fair(sc, rnd)
                    self.loaded = True
                    continue
                for srv in order:
                    table[sc](sc, srv, rnd)
                self.loaded |= sc != "idle"
            (self.out / "runs.json").write_text(json.dumps(self.runs, indent=1))


# ---- report -------------------------------------------------------------------------------
def med(runs, scenario, server, key):
    vals = [r[key] for r in runs if r["scenario"] == scenario and r["server"] == server and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def overlap(runs, scenario, key) -> bool:
    """Whether ringcast's and nginx's per-round figures of `key` overlap (min..max ranges)."""
    vals = {s: [r[key] for r in runs if r["scenario"] == scenario and r["server"] == s and r.get(key) is not None]
            for s in ("ringcast", "nginx")}
    if not vals["ringcast"] or not vals["nginx"]:
        return False
    return min(vals["ringcast"]) <= max(vals["nginx"]) and min(vals["nginx"]) <= max(vals["ringcast"])


def fmt(v, digits=1):
    if v is None:
        return "–"
    if isinstance(v, int) or abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}f}"


ROWS = [
    # scenario, label, key, digits, lower is better
    ("1k", "1 KiB, 64 conns: req/s", "req_per_s", 0, False),
    ("1k", "1 KiB: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("wrk1k", "1 KiB with wrk: req/s", "req_per_s", 0, False),
    ("wrk1k", "1 KiB with wrk: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("16k", "16 KiB, 64 conns: req/s", "req_per_s", 0, False),
    ("16k", "16 KiB: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("wrk16k", "16 KiB with wrk: req/s", "req_per_s", 0, False),
    ("wrk16k", "16 KiB with wrk: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("256k", "256 KiB, 64 conns: req/s", "req_per_s", 0, False),
    ("256k", "256 KiB: MB/s", "mb_per_s", 0, False),
    ("256k", "256 KiB: server CPU s/GB", "cpu_s_per_gb", 3, True),
    ("1g", "1 GiB, 1 conn, discard: MB/s", "mb_per_s", 0, False),
    ("1g", "1 GiB: server CPU s/GB", "cpu_s_per_gb", 3, True),
    ("ranges", "64 KiB ranges of 1 GiB, 64 conns: req/s", "req_per_s", 0, False),
    ("ranges", "64 KiB ranges: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("ranges", "64 KiB ranges: server CPU s/GB", "cpu_s_per_gb", 3, True),
    ("rate50", "50 % of nginx max: achieved req/s", "req_per_s", 0, False),
    ("rate50", "50 %: latency p50 ms", "p50_ms", 3, True),
    ("rate50", "50 %: latency p99 ms", "p99_ms", 3, True),
    ("rate50", "50 %: latency p99.9 ms", "p999_ms", 3, True),
    ("rate50", "50 %: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("rate90", "90 % of nginx max: achieved req/s", "req_per_s", 0, False),
    ("rate90", "90 %: latency p50 ms", "p50_ms", 3, True),
    ("rate90", "90 %: latency p99 ms", "p99_ms", 3, True),
    ("rate90", "90 %: latency p99.9 ms", "p999_ms", 3, True),
    ("rate90", "90 %: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("1k", "1 KiB: client CPU µs/request", "client_cpu_us_per_req", 2, True),
    ("tls1k", "HTTPS 1 KiB keep-alive, 64 conns: req/s", "req_per_s", 0, False),
    ("tls1k", "HTTPS 1 KiB: server CPU µs/request", "cpu_us_per_req", 2, True),
    ("tls1k", "HTTPS 1 KiB: client CPU µs/request", "client_cpu_us_per_req", 2, True),
    ("tls1g", "HTTPS 1 GiB, 1 conn: MB/s", "mb_per_s", 0, False),
    ("tls1g", "HTTPS 1 GiB: server CPU s/GB", "cpu_s_per_gb", 3, True),
    ("tlsfull", "HTTPS full handshakes (new conn per 1 KiB request, 16 conns): per s", "handshakes_per_s", 0, False),
    ("tlsfull", "full handshakes: server CPU µs/handshake (with its request)", "cpu_us_per_handshake", 0, True),
    ("tlsfull", "full handshakes: handshake p50 ms (client)", "handshake_p50_ms", 3, True),
    ("tlsfull", "full handshakes: client CPU µs/handshake", "client_cpu_us_per_req", 0, True),
    ("tlsresume", "HTTPS resumed handshakes (new conn per 1 KiB request, 16 conns): per s", "handshakes_per_s", 0,
     False),
    ("tlsresume", "resumed handshakes: server CPU µs/handshake (with its request)", "cpu_us_per_handshake", 0, True),
    ("tlsresume", "resumed handshakes: handshake p50 ms (client)", "handshake_p50_ms", 3, True),
    ("tlsresume", "resumed handshakes: client CPU µs/handshake", "client_cpu_us_per_req", 0, True),
    ("tlsresume", "resumed handshakes: share resumed", "resumed_share", 3, False),
    ("idle", "idle keep-alive: bytes/connection", "bytes_per_connection", 0, True),
    ("hls", "HLS 5 Mbit/s: most viewers with < 1 % late", "max_viewers_ok", 0, False),
    ("cold-alone", "1 KiB stream alone: p99 ms", "p99_ms", 3, True),
    ("cold-alone", "1 KiB stream alone: server's own p99 ms (wire)", "wire_p99_ms", 3, True),
    ("disk-beside", "1 KiB stream beside direct disk reads on the client CPU only: p99 ms", "p99_ms", 3, True),
    ("disk-beside", "beside disk reads: server's own p99 ms (wire)", "wire_p99_ms", 3, True),
    ("disk-beside", "direct disk reads: MB/s", "disk_mb_per_s", 0, False),
    ("cold-beside", "1 KiB stream beside cold 1 GiB: p99 ms", "p99_ms", 3, True),
    ("cold-beside", "beside cold 1 GiB: p99.9 ms", "p999_ms", 3, True),
    ("cold-beside", "beside cold 1 GiB: server's own p99 ms (wire)", "wire_p99_ms", 3, True),
    ("cold-beside", "cold 1 GiB downloads: MB/s", "cold_mb_per_s", 0, False),
    ("hot-beside", "1 KiB stream beside cached 1 GiB: p99 ms", "p99_ms", 3, True),
    ("hot-beside", "beside cached 1 GiB: p99.9 ms", "p999_ms", 3, True),
    ("hot-beside", "beside cached 1 GiB: server's own p99 ms (wire)", "wire_p99_ms", 3, True),
    ("hot-beside", "cached 1 GiB downloads: MB/s", "cold_mb_per_s", 0, False),
]


def report(runs: list[dict], out: Path, load: str) -> dict:
    lines = ["| scenario (median of rounds) | ringcast | nginx | ringcast/nginx |", "|---|---:|---:|---:|"]
    summary = {"rows": [], "targets": []}
    for sc, label, key, digits, _lower in ROWS:
        rc, ng = med(runs, sc, "ringcast", key), med(runs, sc, "nginx", key)
        if rc is None and ng is None:
            continue
        ratio = rc / ng if rc is not None and ng else None
        if sc == "hls":
            tried = sorted({r["viewers"] for r in runs if "viewers" in r})
            label += f" (tried {', '.join(map(str, tried))}; 0: none passed)"
        lines.append(f"| {label} | {fmt(rc, digits)} | {fmt(ng, digits)} | {fmt(ratio, 2)} |")
        summary["rows"].append({"scenario": sc, "metric": key, "label": label, "ringcast": rc, "nginx": ng,
                                "ratio": ratio})
    for sc in sorted({r["scenario"] for r in runs if r["scenario"].startswith("hls") and r["scenario"] != "hls"},
                     key=lambda s: int(s[3:])):
        for key, label, digits in (("late_share", "late segments %", 2), ("cpu_s_per_gb", "server CPU s/GB", 3)):
            rc, ng = med(runs, sc, "ringcast", key), med(runs, sc, "nginx", key)
            if key == "late_share":
                rc, ng = (None if rc is None else rc * 100), (None if ng is None else ng * 100)
            ratio = rc / ng if rc is not None and ng else None
            lines.append(f"| HLS {sc[3:]} viewers: {label} | {fmt(rc, digits)} | {fmt(ng, digits)} | {fmt(ratio, 2)} |")
    errs = {s: sum(r.get("errors", 0) + r.get("cold_errors", 0) for r in runs if r["server"] == s)
            for s in ("ringcast", "nginx")}
    lines.append(f"| failed requests, all runs | {errs['ringcast']} | {errs['nginx']} | |")
    ceiling = [r["mb_per_s"] for r in runs if r["scenario"] == "ceiling"]
    if ceiling:
        c = statistics.median(ceiling)
        cg = med(runs, "ceiling", "sendfile", "cpu_s_per_gb")
        rc, ng = med(runs, "1g", "ringcast", "mb_per_s"), med(runs, "1g", "nginx", "mb_per_s")
        lines.append(f"| loopback sendfile ceiling, 1 GiB: MB/s (bare sendfile responder; {cg:.3f} CPU s/GB) "
                     f"| {fmt(c, 0)} | | |")
        if rc and ng:
            lines.append(f"| 1 GiB as % of the ceiling | {rc / c * 100:.0f} % | {ng / c * 100:.0f} % | |")
        summary["ceiling_mb_per_s"] = c

    # The cold target compares each server with itself: p99 beside cold downloads ÷ p99 alone.
    for key, how in (("p99_ms", "client"), ("wire_p99_ms", "server's own, wire")):
        for sc, what in (("disk-beside", "disk reads on the client CPU"), ("cold-beside", "cold downloads"),
                         ("hot-beside", "cached downloads")):
            rc = [med(runs, sc, s, key) for s in ("ringcast", "nginx")]
            alone = [med(runs, "cold-alone", s, key) for s in ("ringcast", "nginx")]
            if all(v is not None for v in rc + alone) and all(alone):
                b = [v / a for v, a in zip(rc, alone)]
                lines.append(f"| p99 beside {what} ÷ alone ({how}) | {b[0]:.2f}× | {b[1]:.2f}× | |")

    # The fair target compares each driver with itself: p99 beside cached downloads ÷ alone.
    fair = []
    for srv, driver in (("ringcast", "io_uring"), ("ringcast-epoll", "epoll")):
        for key, how in (("p99_ms", "client"), ("wire_p99_ms", "server's own, on the wire")):
            alone, beside = med(runs, "fair-alone", srv, key), med(runs, "fair-beside", srv, key)
            if alone and beside is not None:
                lines.append(f"| {driver}: 1 KiB p99 alone / beside cached 1 GiB downloads ({how}) "
                             f"| {alone:.3f} / {beside:.3f} ms | | |")
                fair.append((f"{driver}: 1 KiB p99 beside cached downloads ≤ 2× alone ({how}; ×)",
                             beside / alone, 2.0, True))

    def ratio(sc, key):
        rc, ng = med(runs, sc, "ringcast", key), med(runs, sc, "nginx", key)
        return rc / ng if rc is not None and ng else None

    def paired(sc, key):
        """ringcast/nginx within each round: the two runs of a round are back to back and share
        its conditions, which on a noisy machine move both servers' figures together."""
        by_round = {}
        for r in runs:
            if r["scenario"] == sc and r.get(key) is not None:
                by_round.setdefault(r["round"], {})[r["server"]] = r[key]
        return [v["ringcast"] / v["nginx"] for _, v in sorted(by_round.items())
                if "ringcast" in v and v.get("nginx")]

    checks = [
        ("1 KiB server CPU per request ≤ 0.6× nginx", ratio("1k", "cpu_us_per_req"), 0.6, True),
        ("1 KiB req/s ≥ 1.3× nginx", ratio("1k", "req_per_s"), 1.3, False),
        ("1 GiB server CPU per GB ≤ 0.8× nginx", ratio("1g", "cpu_s_per_gb"), 0.8, True),
        ("1 GiB throughput ≥ 1.0× nginx", ratio("1g", "mb_per_s"), 1.0, False),
        ("p99 at 50 % of nginx's max ≤ 0.8× nginx", ratio("rate50", "p99_ms"), 0.8, True),
        ("p99.9 at 50 % of nginx's max ≤ 0.8× nginx", ratio("rate50", "p999_ms"), 0.8, True),
    ]
    for key, how in (("p99_ms", "client"), ("wire_p99_ms", "server's own, on the wire")):
        beside, alone = med(runs, "cold-beside", "ringcast", key), med(runs, "cold-alone", "ringcast", key)
        if beside is not None and alone:
            checks.append((f"1 KiB p99 beside cold downloads ≤ 2× alone ({how}; ×, not a ratio to nginx)",
                           beside / alone, 2.0, True))
    checks += fair
    # HTTPS against nginx, bound 1.0: on a shared machine a median can fall on either side by
    # chance, so the verdict also says whether the two servers' per-round figures overlap.
    for label, sc, key, lower in (
            ("HTTPS 1 KiB server CPU per request ≤ nginx", "tls1k", "cpu_us_per_req", True),
            ("HTTPS 1 GiB server CPU per GB ≤ nginx", "tls1g", "cpu_s_per_gb", True),
            ("HTTPS full handshakes per second ≥ nginx", "tlsfull", "handshakes_per_s", False),
            ("HTTPS resumed handshakes per second ≥ nginx", "tlsresume", "handshakes_per_s", False)):
        checks.append((label, ratio(sc, key), 1.0, lower, (sc, key)))
    if ceiling and med(runs, "1g", "ringcast", "mb_per_s"):
        checks.append(("1 GiB throughput ≥ 0.9× the loopback sendfile ceiling",
                       med(runs, "1g", "ringcast", "mb_per_s") / statistics.median(ceiling), 0.9, False))
    idle = med(runs, "idle", "ringcast", "bytes_per_connection")
    if idle is not None:
        checks.append(("idle keep-alive connection ≤ 1 KiB (bytes, not a ratio)", idle, 1024, True))
    lines += ["", "| target | measured | verdict |", "|---|---:|---|"]
    for label, v, bound, lower, *per_round in checks:
        if v is None:
            continue
        met = v <= bound if lower else v >= bound
        verdict = "met" if met else f"missed by {abs(v / bound - 1) * 100:.0f} %"
        if per_round and overlap(runs, *per_round[0]):
            met = False
            verdict += " on the medians, but the rounds overlap: not established"
        lines.append(f"| {label} | {fmt(v, 2)} | {verdict} |")
        summary["targets"].append({"target": label, "measured": v, "bound": bound, "met": met})
    pairs = [(label, paired(sc, key)) for label, sc, key in (
        ("1 KiB server CPU per request", "1k", "cpu_us_per_req"),
        ("1 KiB req/s", "1k", "req_per_s"),
        ("1 GiB server CPU per GB", "1g", "cpu_s_per_gb"),
        ("1 GiB throughput", "1g", "mb_per_s"),
        ("HTTPS 1 KiB server CPU per request", "tls1k", "cpu_us_per_req"),
        ("HTTPS 1 KiB req/s", "tls1k", "req_per_s"),
        ("HTTPS 1 GiB server CPU per GB", "tls1g", "cpu_s_per_gb"),
        ("HTTPS 1 GiB throughput", "tls1g", "mb_per_s"),
        ("HTTPS full handshakes per second", "tlsfull", "handshakes_per_s"),
        ("HTTPS full handshake: server CPU per handshake", "tlsfull", "cpu_us_per_handshake"),
        ("HTTPS resumed handshakes per second", "tlsresume", "handshakes_per_s"),
        ("HTTPS resumed handshake: server CPU per handshake", "tlsresume", "cpu_us_per_handshake"),
    )]
    pairs = [(label, rs) for label, rs in pairs if rs]
    if pairs:
        lines += ["", "| ringcast/nginx within each round | rounds | median |", "|---|---|---:|"]
        for label, rs in pairs:
            lines.append(f"| {label} | {', '.join(f'{r:.2f}' for r in rs)} | {statistics.median(rs):.2f} |")
            summary.setdefault("paired_ratios", {})[label] = rs
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    plots(runs, out, load)
    return table


def plots(runs, out: Path, load: str):
    """One latency plot per scenario: the run nearest the median req/s of each server."""
    groups = {}
    for sc in ("1k", "16k", "256k", "1g", "ranges", "rate50", "rate90", "cold-alone", "disk-beside",
               "cold-beside", "hot-beside"):
        for srv in ("ringcast", "nginx"):
            rs = [r for r in runs if r["scenario"] == sc and r["server"] == srv and r.get("raw", "").endswith(".json")]
            if not rs:
                continue
            m = statistics.median(r["req_per_s"] for r in rs)
            pick = min(rs, key=lambda r: abs(r["req_per_s"] - m))
            dst = out / "plots" / f"{srv}-{sc}.json"
            shutil.copy(pick["raw"], dst)
            key = "cold" if sc.startswith("cold") or sc.endswith("-beside") else sc
            groups.setdefault(key, []).append(dst)
    for key, files in groups.items():
        if len(files) < 2:
            continue
        svg = out / "plots" / f"{key}.svg"
        subprocess.run([load, "plot"] + [str(f) for f in files] + ["-o", str(svg)], check=False,
                       capture_output=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=MODES, default="full")
    ap.add_argument("--only", default="")
    ap.add_argument("--load", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--www", required=True)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--server", action="append", required=True)
    ap.add_argument("--extra-server", action="append", help="NAME=PID=URL measured only against itself")
    ap.add_argument("--tls-url", action="append", help="NAME=https://HOST:PORT of a --server, for the TLS scenarios")
    ap.add_argument("--cacert", help="PEM of the CA the TLS servers' certificate chains to (else --insecure)")
    ap.add_argument("--report-only", action="store_true", help="rebuild the table from DIR/runs.json")
    args = ap.parse_args()
    out = Path(args.out)
    if args.report_only:
        print(report(json.loads((out / "runs.json").read_text()), out, args.load))
        return 0
    only = [x for s in args.only.split(",") if s for x in GROUPS.get(s, [s])] or SCENARIOS
    unknown = [s for s in only if s not in SCENARIOS]
    if unknown:
        sys.exit(f"bench: unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    only = [s for s in SCENARIOS if s in only]
    b = Bench(args)
    t0 = time.monotonic()
    b.go(only)
    print(f"bench: scenarios took {time.monotonic() - t0:.0f} s", file=sys.stderr)
    print(report(b.runs, out, args.load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
