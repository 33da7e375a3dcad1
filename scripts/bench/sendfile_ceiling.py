#!/usr/bin/env python3
"""Loopback sendfile ceiling: the least a server can do to send a cached file over 127.0.0.1.

A bare HTTP/1.1 responder for one file: it accepts one connection at a time, reads a request
head, writes a fixed response head with Content-Length and then the whole file with blocking
sendfile(2) calls, and waits for the next request. No parsing beyond the blank line, no event
loop, no headers to compute: what `ringcast-load --discard` reaches against it is the bound a
server's 1 GiB download on this machine is held against (scripts/bench/run.py, scenario
`ceiling`). The client is the same as in the 1 GiB scenario, so the receiving side is equal.

    taskset -c 0 sendfile_ceiling.py --file target/bench/www/1g.bin

Prints `listening on http://127.0.0.1:PORT` when ready (port chosen by the kernel) and serves
until it is killed. Loopback only.
"""
import argparse
import os
import socket
import sys


def serve(conn: socket.socket, fd: int, size: int) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nContent-Type: application/octet-stream\r\n\r\n"
    pending = b""
    while True:
        while b"\r\n\r\n" not in pending:
            chunk = conn.recv(65536)
            if not chunk:
                return
            pending += chunk
        pending = pending.split(b"\r\n\r\n", 1)[1]
        conn.sendall(head.encode())
        off = 0
        while off < size:
            off += os.sendfile(conn.fileno(), fd, off, size - off)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", required=True)
    args = ap.parse_args()
    fd = os.open(args.file, os.O_RDONLY)
    size = os.fstat(fd).st_size
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)
    print(f"listening on http://127.0.0.1:{lst.getsockname()[1]}", flush=True)
    while True:
        conn, _ = lst.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            serve(conn, fd, size)
        except OSError:
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    sys.exit(main())
