#!/usr/bin/env python3
"""Server memory per idle keep-alive connection.

Opens N connections to a running server, sends one GET on each and reads the whole response
(so every connection has been through a request and sits idle in keep-alive), then reads the
server's resident memory (VmRSS of PID, all threads) and prints the growth per connection.

    scripts/idle-memory.py --pid PID --url http://127.0.0.1:PORT/path [-n 10000] [--json FILE]

Loopback only; the connections are closed when it exits.
"""
import argparse
import json
import resource
import socket
import sys
import time
from urllib.parse import urlsplit


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_response(sock: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the head")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("closed mid-body")
        rest += chunk


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--url", required=True)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--json")
    args = ap.parse_args()
    u = urlsplit(args.url)
    if u.hostname not in ("127.0.0.1", "localhost", "::1"):
        print("loopback targets only", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.n + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    req = f"GET {u.path or '/'} HTTP/1.1\r\nHost: {u.netloc}\r\n\r\n".encode()
    # Warm the server (first-request allocations) before the baseline.
    warm = socket.create_connection((u.hostname, u.port))
    warm.sendall(req)
    read_response(warm)
    warm.close()
    time.sleep(0.5)
    before = rss_kib(args.pid)
    conns = []
    for _ in range(args.n):
        s = socket.create_connection((u.hostname, u.port))
        s.sendall(req)
        read_response(s)
        conns.append(s)
    time.sleep(1.0)
    after = rss_kib(args.pid)
    per_conn = (after - before) * 1024 / args.n
    result = {"connections": args.n, "rss_before_kib": before, "rss_after_kib": after,
              "bytes_per_connection": round(per_conn, 1)}
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
