#!/usr/bin/env bash
# Server CPU per GB of an HTTPS download, kernel TLS against user-space TLS, in one run inside
# the kTLS VM (scripts/ktls-vm.sh: Debian 6.1 kernel under QEMU TCG).
#
#   scripts/bench/ktls-vm-bench.sh [BINARY] [MIB] [ROUNDS]
#
# BINARY: the ringcast to measure (default target/release/ringcast). A MIB-MiB file (default
# 128) is downloaded ROUNDS times (default 4) with curl over TLS 1.3 AES-128-GCM from a
# one-worker server, first with `--ktls on --body-strategy sendfile`, then with `--ktls off`
# (rustls, pread + encrypt). The server's utime+stime (/proc/PID/stat) over the downloads,
# per GB, and the ratio are printed. Under TCG every instruction is emulated, so only the ratio
# of the two figures means anything, not the figures themselves.
set -euo pipefail

if [ -z "${RINGCAST_KTLS_VM:-}" ]; then
  root=$(cd "$(dirname "$0")/../.." && pwd)
  bin=$(realpath "${1:-$root/target/release/ringcast}")
  exec bash "$root/scripts/ktls-vm.sh" "$root/scripts/bench/ktls-vm-bench.sh" "$bin" "${2:-128}" "${3:-4}"
fi

bin=$1
mib=${2:-128}
rounds=${3:-4}
dir=$(mktemp -d /tmp/ktls-bench.XXXXXX)
mkdir -p "$dir/root"
head -c "$((mib * 1024 * 1024))" /dev/urandom >"$dir/root/big.bin"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
tick=$(getconf CLK_TCK)

# cpu_seconds PID: utime+stime of the process (fields 14 and 15 of /proc/PID/stat).
cpu_ticks() {
  sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

# measure MODE ARGS...: prints "cpu_seconds_per_gb"
measure() {
  local mode=$1
  shift
  "$bin" --listen 127.0.0.1:0 --tls-listen 127.0.0.1:0 --workers 1 --driver uring \
    --tls-cert "$dir/cert.pem" --tls-key "$dir/key.pem" "$@" "$dir/root" \
    >"$dir/$mode.out" 2>"$dir/$mode.log" &
  local pid=$!
  local port=
  for _ in $(seq 100); do
    port=$(sed -n 's#^listening on https://127.0.0.1:\([0-9]*\)$#\1#p' "$dir/$mode.out")
    [ -n "$port" ] && break
    sleep 0.2
  done
  [ -n "$port" ] || { cat "$dir/$mode.log" >&2; exit 1; }
  local url="https://localhost:$port/big.bin"
  # One warm-up download (page cache, first handshake), not counted.
  curl -sS --fail --http1.1 --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256 --cacert "$dir/cert.pem" -o /dev/null "$url"
  local before after
  before=$(cpu_ticks "$pid")
  for _ in $(seq "$rounds"); do
    curl -sS --fail --http1.1 --tlsv1.3 --tls13-ciphers TLS_AES_128_GCM_SHA256 --cacert "$dir/cert.pem" -o /dev/null "$url"
  done
  after=$(cpu_ticks "$pid")
  kill "$pid"
  wait "$pid" || true
  awk -v t="$((after - before))" -v hz="$tick" -v mib="$mib" -v n="$rounds" \
    'BEGIN { printf "%.3f\n", (t / hz) / (mib * n / 1024) }'
}

grep -E 'TlsTxSw|TlsCurrTxSw' /proc/net/tls_stat | tr '\n' ' '
echo
kernel=$(measure ktls --ktls on --body-strategy sendfile)
grep -E 'TlsTxSw' /proc/net/tls_stat
user=$(measure user --ktls off)
echo "ktls-bench: ${mib} MiB x ${rounds} over TLS 1.3 AES-128-GCM, server CPU s per GB: kTLS+sendfile ${kernel}, user-space TLS ${user}"
awk -v k="$kernel" -v u="$user" 'BEGIN { if (k > 0) printf "ktls-bench: user-space / kTLS CPU ratio %.2f\n", u / k; else print "ktls-bench: kTLS CPU below clock resolution" }'
rm -rf "$dir"
