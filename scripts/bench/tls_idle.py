#!/usr/bin/env python3
"""Memory per idle HTTPS keep-alive connection: RSS growth of a ringcast process over N
connections that each made one request and then wait.

    scripts/bench/tls_idle.py [--connections 2000] [--path /1k.bin] PID PORT

PID is a running ringcast with `--tls-listen 127.0.0.1:PORT` (any certificate: it is not
verified). 200 connections are opened first and kept, so allocator and runtime warm-up are not
counted; then N more, and the RSS (VmRSS) difference is divided by N. Load goes to 127.0.0.1
only; the connections close when the script exits.
"""

import argparse
import resource
import socket
import ssl
import time


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for {pid}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--path", default="/1k.bin")
    p.add_argument("pid", type=int)
    p.add_argument("port", type=int)
    a = p.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    request = f"GET {a.path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()

    def one() -> ssl.SSLSocket:
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", a.port)), server_hostname="localhost")
        s.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(65536)
        return s

    warm = [one() for _ in range(200)]
    time.sleep(0.5)
    before = rss_kb(a.pid)
    conns = [one() for _ in range(a.connections)]
    time.sleep(1)
    after = rss_kb(a.pid)
    print(
        f"{a.connections} idle HTTPS connections ({conns[0].version()}): RSS {before} -> {after} kB, "
        f"{(after - before) * 1024 / a.connections:.0f} bytes per connection"
    )
    del warm, conns


if __name__ == "__main__":
    main()
