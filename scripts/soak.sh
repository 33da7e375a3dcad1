#!/usr/bin/env bash
# Soak test: DURATION (e.g. 60s, 30m) of mixed load with injected faults (aborted and slow
# clients, files replaced and truncated while served, a restart on the same port in the middle)
# against a real ringcast on 127.0.0.1, checking that its RSS and open descriptors return to
# their baseline and that no request failed that should not. Details: scripts/soak/soak.py.
#   scripts/soak.sh DURATION [--driver uring|epoll] [--workers N] [--dir DIR (default target/soak)]
# RINGCAST_BIN picks the binary (default target/release/ringcast, built when missing).
# Exit status 0 on a pass, 1 on a failure (the reason is printed last), 2 on bad usage.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
bin=${RINGCAST_BIN:-target/release/ringcast}
if [ -z "${RINGCAST_BIN:-}" ] && [ ! -x "$bin" ]; then
  cargo build --release --bin ringcast
fi
exec python3 scripts/soak/soak.py --binary "$bin" "$@"
