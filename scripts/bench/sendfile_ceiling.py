#!/usr/bin/env python3
"""Loopback sendfile ceiling: the fastest a bare sender moves a cached file over 127.0.0.1.

The sender is this process, pinned to --server-cpu: it accepts one connection and calls
sendfile(2) on the whole file again and again for --seconds. The receiver is a child process
pinned to --client-cpu that drops the bytes with recv(MSG_TRUNC) (no copy to user memory), the
way `ringcast-load --discard` receives. No HTTP, no parsing, no event loop: what it reaches is
the bound any server's 1 GiB download on this machine is held against.

    sendfile_ceiling.py --file target/bench/www/1g.bin [--seconds 10] [--json FILE]

Prints one JSON line: bytes, seconds, mb_per_s, sender_cpu_s, sender_cpu_s_per_gb.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


def receive(port: int) -> int:
    s = socket.create_connection(("127.0.0.1", port))
    buf = bytearray(16 << 20)
    view = memoryview(buf)
    total = 0
    while True:
        # MSG_TRUNC on TCP: the kernel drops up to len queued bytes without copying them
        # (tcp(7)) and returns how many it dropped.
        n = s.recv_into(view, len(buf), socket.MSG_TRUNC)
        if n == 0:
            return total
        total += n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--json")
    ap.add_argument("--receive-port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.receive_port:
        print(receive(args.receive_port))
        return 0

    os.sched_setaffinity(0, {args.server_cpu})
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    port = lst.getsockname()[1]
    rx = subprocess.Popen(
        ["taskset", "-c", str(args.client_cpu), sys.executable, __file__, "--receive-port", str(port)],
        stdout=subprocess.PIPE,
    )
    conn, _ = lst.accept()
    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    sent = 0
    cpu0 = os.times()
    t0 = time.monotonic()
    deadline = t0 + args.seconds
    while time.monotonic() < deadline:
        off = 0
        while off < size and time.monotonic() < deadline:
            off += os.sendfile(conn.fileno(), fd, off, min(size - off, 64 << 20))
        sent += off
    elapsed = time.monotonic() - t0
    cpu1 = os.times()
    conn.close()
    received = int(rx.communicate(timeout=30)[0])
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    result = {
        "bytes": sent,
        "received": received,
        "seconds": round(elapsed, 3),
        "mb_per_s": round(sent / elapsed / 1e6, 1),
        "sender_cpu_s": round(cpu, 3),
        "sender_cpu_s_per_gb": round(cpu / (sent / 1e9), 4) if sent else None,
    }
    print(json.dumps(result))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
