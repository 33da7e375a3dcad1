#!/usr/bin/env python3
"""Two builds (or two settings) of ringcast, alternated: server CPU per request.

    scripts/bench/ab.py [--rounds 10] [--secs 5] [--path 1k.bin] A B

A and B are `label=command`, the command a ringcast binary with any flags, for example
`old=/tmp/old/ringcast` or `epoll="target/release/ringcast --driver epoll"`; the script adds
`--workers 1 --listen 127.0.0.1:PORT WWW`. Each round starts A and B in turn (the order
alternating between rounds) pinned to CPU 0, runs `ringcast-load -c 64` closed loop against it
from CPU 1 (1 s unrecorded, then --secs measured), and takes the server's utime + stime from
/proc/PID/stat around the measured run. Prints every run, then per side the minimum and median
CPU per request and the median and geometric mean of the per-round ratios B/A: on a noisy
machine the two runs of one round share its conditions, so the paired ratio is steadier than a
ratio of medians.

Needs the data set of scripts/bench.sh (target/bench/www) and target/release/ringcast-load.
Load goes to 127.0.0.1 only, every run is bounded by --secs, and only the servers this script
starts are stopped.
"""

import argparse
import importlib.util
import json
import math
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_CPU, CLIENT_CPU = "0", "1"


def _run_module():
    """scripts/bench/run.py, for its `Server` (CPU time of a server process)."""
    spec = importlib.util.spec_from_file_location("bench_run", Path(__file__).with_name("run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BenchServer = _run_module().Server


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            sys.exit(f"ab: server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"ab: nothing listening on {port} after {timeout} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(command: list, args, load: Path, www: Path) -> float:
    """CPU microseconds per request of one measured run."""
    port = free_port()
    server = subprocess.Popen(
        ["taskset", "-c", SERVER_CPU, *command, "--workers", "1", "--listen", f"127.0.0.1:{port}", str(www)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port, server)
        url = f"http://127.0.0.1:{port}/{args.path}"
        cpu = BenchServer(f"ab={server.pid}={url}")
        client = ["taskset", "-c", CLIENT_CPU, str(load), "-q", "-c", str(args.conns)]
        subprocess.run(client + ["-d", "1s", url], check=True, stdout=subprocess.DEVNULL, timeout=60)
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            before = cpu.cpu_s()
            subprocess.run(
                client + ["-d", f"{args.secs}s", "--json", out.name, url],
                check=True,
                stdout=subprocess.DEVNULL,
                timeout=args.secs + 60,
            )
            after = cpu.cpu_s()
            result = json.load(open(out.name))
        if result["errors"]:
            sys.exit(f"ab: {result['errors']} failed requests")
        return (after - before) * 1e6 / result["requests"]
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("a", help="label=command")
    p.add_argument("b", help="label=command")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--secs", type=int, default=5)
    p.add_argument("--path", default="1k.bin", help="file under the data set to request")
    p.add_argument("--conns", type=int, default=64)
    args = p.parse_args()
    sides = []
    for spec in (args.a, args.b):
        label, _, command = spec.partition("=")
        if not command:
            sys.exit(f"ab: {spec!r} is not label=command")
        sides.append((label, shlex.split(command)))
    load = ROOT / "target/release/ringcast-load"
    www = ROOT / "target/bench/www"
    if not load.exists() or not (www / args.path).exists():
        sys.exit("ab: needs target/release/ringcast-load and target/bench/www (run scripts/bench.sh --quick once)")

    per_side = {label: [] for label, _ in sides}
    ratios = []
    for rnd in range(args.rounds):
        order = sides if rnd % 2 == 0 else sides[::-1]
        got = {}
        for label, command in order:
            got[label] = one_run(command, args, load, www)
            print(f"round {rnd + 1:2}  {label:>10}  {got[label]:7.2f} µs/request", flush=True)
        for label in got:
            per_side[label].append(got[label])
        ratios.append(got[sides[1][0]] / got[sides[0][0]])

    print()
    for label, values in per_side.items():
        print(f"{label:>10}: min {min(values):.2f}  median {statistics.median(values):.2f} µs/request")
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(
        f"{sides[1][0]}/{sides[0][0]}: median of per-round ratios {statistics.median(ratios):.3f}, "
        f"geometric mean {geo:.3f} ({', '.join(f'{r:.2f}' for r in ratios)})"
    )


if __name__ == "__main__":
    main()
