#!/usr/bin/env bash
# HTTPS: ringcast (rustls, user-space TLS) against nginx (OpenSSL, user-space TLS), same
# certificate, both pinned to CPU 0 with one worker, wrk pinned to CPU 1.
#
#   scripts/bench/tls.sh [SECONDS] [ROUNDS]     (defaults: 10 s, 3 rounds; about 3 minutes)
#
# Scenarios, each run against both servers in every round (alternating which goes first):
#   tls1k   wrk -t1 -c64 over keep-alive connections, GET of a 1 KiB file: server CPU per request
#   tls256m wrk -t1 -c1, GET of a 256 MiB file again and again: server CPU per GB
#   tlsnew  wrk -t1 -c16 with `Connection: close`: a full handshake (ECDHE + ECDSA signature, no
#           resumption: wrk does not keep sessions) per 1 KiB request: server CPU per handshake
# Server CPU is utime + stime from /proc/PID/stat (nginx: master and worker summed), read
# before and after each run; bytes and requests come from wrk's own summary (a Lua `done`).
# Everything stays on 127.0.0.1; only the processes started here are stopped, by PID.
set -euo pipefail

cd "$(dirname "$0")/../.."
ROOT=$PWD
SECS=${1:-10}
ROUNDS=${2:-3}
DIR=${BENCH_DIR:-$ROOT/target/bench}/tls
WWW=$DIR/www
RC_PORT=${RC_TLS_PORT:-18443}
NGX_PORT=${NGX_TLS_PORT:-18444}
log() { printf 'bench-tls: %s\n' "$*" >&2; }
command -v wrk >/dev/null || { log "wrk not found (apt-get install wrk)"; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || { log "nginx not found (apt-get install nginx-light)"; exit 1; }

cargo build --release --quiet -p ringcast --bin ringcast
mkdir -p "$WWW" "$DIR/nginx/logs" "$DIR/nginx/tmp"
[ -f "$WWW/1k.bin" ] || head -c 1024 /dev/urandom >"$WWW/1k.bin"
[ -f "$WWW/256m.bin" ] || head -c $((256 * 1024 * 1024)) /dev/urandom >"$WWW/256m.bin"
cat "$WWW"/*.bin >/dev/null
if [ ! -f "$DIR/cert.pem" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null
fi
cat >"$DIR/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d\n", summary.requests, summary.bytes, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/logs/error.log warn;
events { worker_connections 16384; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 60s;
    keepalive_requests 1000000000;
    open_file_cache max=1024 inactive=60s;
    open_file_cache_valid 1s;
    client_body_temp_path $DIR/nginx/tmp;
    proxy_temp_path $DIR/nginx/tmp;
    fastcgi_temp_path $DIR/nginx/tmp;
    uwsgi_temp_path $DIR/nginx/tmp;
    scgi_temp_path $DIR/nginx/tmp;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:10m;
    ssl_certificate $DIR/cert.pem;
    ssl_certificate_key $DIR/key.pem;
    server {
        listen 127.0.0.1:$NGX_PORT ssl reuseport backlog=4096;
        root $WWW;
    }
}
CONF

RC_PID='' NGX_PID=''
cleanup() {
  [ -n "$RC_PID" ] && kill "$RC_PID" 2>/dev/null && wait "$RC_PID" 2>/dev/null
  [ -n "$NGX_PID" ] && kill "$NGX_PID" 2>/dev/null && wait "$NGX_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT
taskset -c 0 "$ROOT/target/release/ringcast" --workers 1 --listen 127.0.0.1:0 \
  --tls-listen "127.0.0.1:$RC_PORT" --tls-cert "$DIR/cert.pem" --tls-key "$DIR/key.pem" \
  "$WWW" >"$DIR/ringcast.out" 2>"$DIR/ringcast.log" &
RC_PID=$!
taskset -c 0 "$NGINX" -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" >"$DIR/nginx.log" 2>&1 &
NGX_PID=$!
for port in $RC_PORT $NGX_PORT; do
  for _ in $(seq 100); do
    curl -sk -o /dev/null "https://127.0.0.1:$port/1k.bin" && break
    sleep 0.1
  done
done

cpu_ticks() { # pid and its children (nginx's worker)
  local total=0 p
  for p in $1 $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
    total=$((total + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
  done
  echo "$total"
}
HZ=$(getconf CLK_TCK)

run() { # name pid port scenario
  local before after out
  local args=(-t1 -c64 "https://127.0.0.1:$3/1k.bin")
  [ "$4" = tls256m ] && args=(-t1 -c1 "https://127.0.0.1:$3/256m.bin")
  [ "$4" = tlsnew ] && args=(-t1 -c16 -H "Connection: close" "https://127.0.0.1:$3/1k.bin")
  before=$(cpu_ticks "$2")
  out=$(taskset -c 1 wrk -d"${SECS}s" --timeout 60s -s "$DIR/report.lua" "${args[@]}" | grep '^RESULT')
  after=$(cpu_ticks "$2")
  read -r _ reqs bytes errors <<<"$out"
  local cpu_s
  cpu_s=$(echo "scale=6; ($after - $before) / $HZ" | bc)
  if [ "$4" = tls1k ] || [ "$4" = tlsnew ]; then
    printf '%s\t%s\t%s req/s\t%s µs CPU/request\terrors %s\n' "$4" "$1" "$((reqs / SECS))" \
      "$(echo "scale=2; $cpu_s * 1000000 / $reqs" | bc)" "$errors"
  else
    printf '%s\t%s\t%s MB/s\t%s s CPU/GB\terrors %s\n' "$4" "$1" "$((bytes / SECS / 1000000))" \
      "$(echo "scale=3; $cpu_s * 1000000000 / $bytes" | bc)" "$errors"
  fi
}

echo "# $(date -u +%FT%TZ), $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# ringcast $(git rev-parse --short HEAD), $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), $(openssl version)"
for round in $(seq "$ROUNDS"); do
  for scenario in tls1k tls256m tlsnew; do
    if [ $((round % 2)) -eq 1 ]; then
      run ringcast "$RC_PID" "$RC_PORT" "$scenario"
      run nginx "$NGX_PID" "$NGX_PORT" "$scenario"
    else
      run nginx "$NGX_PID" "$NGX_PORT" "$scenario"
      run ringcast "$RC_PID" "$RC_PORT" "$scenario"
    fi
  done
done
