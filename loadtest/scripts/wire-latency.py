#!/usr/bin/env python3
"""Compares ringcast-load's and oha's latency percentiles with the latency seen on the wire.

Each round runs ringcast-load, then oha, at the same fixed rate against one server, each while
tcpdump captures the loopback traffic of the server's port. From the capture, every response's
wire latency is the time from the first byte of a request to the first byte of its response on
the same connection (requests are not pipelined). What a tool adds on top of the wire latency is
its own cost: timer wake-ups, scheduling, system calls. The server's tail moves from run to run;
comparing each tool with the wire of its own run separates that from the tools.

    loadtest/scripts/wire-latency.py --url http://127.0.0.1:18431/1k.bin [--rate 1000]
        [--connections 16] [--secs 10] [--rounds 6] [--bin target/release/ringcast-load]

Needs tcpdump (apt-get install tcpdump), oha (cargo install oha) and root for the capture. The
server must already run (pinned to CPU 0, as in verify-against-nginx.sh); both clients are pinned
to CPU 1 and tcpdump to CPU 0. Every run is bounded by --secs.
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlparse


def wire_latencies(pcap, port):
    """Request-to-response latencies in µs from a classic pcap file of one TCP port."""
    with open(pcap, "rb") as f:
        header = f.read(24)
        magic = struct.unpack("<I", header[:4])[0]
        nano = magic == 0xA1B23C4D
        link = struct.unpack("<I", header[20:24])[0]
        offset = {1: 14, 113: 16, 0: 4}.get(link, 14)
        pending, out = {}, []
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                break
            sec, frac, incl, _ = struct.unpack("<IIII", rec)
            data = f.read(incl)
            t = sec * 1e6 + (frac / 1000 if nano else frac)
            ip = data[offset:]
            if len(ip) < 20 or ip[0] >> 4 != 4:
                continue
            ihl = (ip[0] & 15) * 4
            total = struct.unpack(">H", ip[2:4])[0]
            tcp = ip[ihl:]
            sport, dport = struct.unpack(">HH", tcp[:4])
            payload = total - ihl - (tcp[12] >> 4) * 4
            if payload <= 0:
                continue
            if dport == port:
                pending.setdefault(sport, t)
            elif sport == port and dport in pending:
                out.append(t - pending.pop(dport))
    return sorted(out)


def pct(values, p):
    return values[min(len(values) - 1, int(p * len(values)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "ringcast-load"))
    a = ap.parse_args()
    port = urlparse(a.url).port
    if not port:
        sys.exit("the URL needs an explicit port")
    tmp = tempfile.mkdtemp(prefix="wire-latency-")
    pcap, out = os.path.join(tmp, "cap.pcap"), os.path.join(tmp, "tool.json")
    tools = {
        "ringcast-load": [a.bin, "-q", "-R", str(a.rate), "-c", str(a.connections), "-d", f"{a.secs}s",
                          "--warmup", "0s", "--json", out, a.url],
        "oha": ["oha", "--no-tui", "-z", f"{a.secs}s", "-q", str(a.rate), "-c", str(a.connections),
                "--latency-correction", "--output-format", "json", a.url],
    }
    added = {name: {"p50": [], "p99": []} for name in tools}
    print(f"{a.rounds} rounds, {a.rate} req/s, {a.connections} connections, {a.secs} s each; µs")
    print("| round | tool | tool p50 / p99 | wire p50 / p99 | added p50 / p99 |")
    print("|---|---|---|---|---|")
    for r in range(1, a.rounds + 1):
        for name, cmd in tools.items():
            cap = subprocess.Popen(["taskset", "-c", "0", "tcpdump", "-i", "lo", "-s", "96", "-B", "65536",
                                    "-w", pcap, f"tcp port {port}"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            if name == "oha":
                with open(out, "w") as f:
                    subprocess.run(["taskset", "-c", "1"] + cmd, stdout=f, check=True)
                o = json.load(open(out))["latencyPercentiles"]
                t50, t99 = o["p50"] * 1e6, o["p99"] * 1e6
            else:
                subprocess.run(["taskset", "-c", "1"] + cmd, stdout=subprocess.DEVNULL, check=True)
                lat = json.load(open(out))["latency_us"]
                t50, t99 = lat["p50"], lat["p99"]
            time.sleep(0.3)
            cap.terminate()
            cap.wait()
            wire = wire_latencies(pcap, port)
            if not wire:
                sys.exit("the capture holds no request/response pairs (is the port right? root?)")
            w50, w99 = pct(wire, 0.5), pct(wire, 0.99)
            added[name]["p50"].append(t50 - w50)
            added[name]["p99"].append(t99 - w99)
            print(f"| {r} | {name} | {t50:.0f} / {t99:.0f} | {w50:.0f} / {w99:.0f} | {t50 - w50:.0f} / {t99 - w99:.0f} |")
    print()
    for name, d in added.items():
        print(f"{name}: added latency, median over rounds: p50 {statistics.median(d['p50']):.0f} µs, "
              f"p99 {statistics.median(d['p99']):.0f} µs")


if __name__ == "__main__":
    main()
