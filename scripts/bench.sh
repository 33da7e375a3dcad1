#!/usr/bin/env bash
# ringcast against nginx, side by side, on one machine, in one run (docs/benchmarks.md).
#
#   scripts/bench.sh            full run (3 rounds of 10 s per scenario; about 25 minutes)
#   scripts/bench.sh --quick    1 round of short runs (under 3 minutes once the data set exists)
#   scripts/bench.sh --only 1k,16k,rate50   a subset of the scenarios (names below)
#
# What it does:
#   1. builds the release binaries (ringcast, ringcast-load);
#   2. makes the data set under target/bench/www (1 KiB, 16 KiB, 256 KiB, 4 MiB and 1 GiB files of
#      random bytes, and an HLS ladder of real H.264 segments made with ffmpeg: 5, 2.5 and 1 Mbit/s);
#   3. installs nginx from Debian's packages if it is missing (apt-get install nginx-light);
#   4. starts ringcast and nginx configured alike, both pinned to CPU 0 (`taskset -c 0`) with one
#      worker each: sendfile, TCP_NOPUSH/TCP_CORK, an open-file cache of 1024 entries revalidated
#      every second, keep-alive for 60 s without a request cap, no access log;
#   5. runs every scenario against both servers, alternating which goes first, for several rounds,
#      with the client (ringcast-load, or wrk for the cross-check) pinned to CPU 1;
#   6. prints a Markdown table of medians and ringcast/nginx ratios and writes raw JSON and
#      latency plots (`ringcast-load plot`) under target/bench/results.
#
# Scenarios (scripts/bench/run.py has the exact client command of each):
#   1k, 16k, 256k   closed loop, 64 connections, as many requests as the server answers
#   1g              one connection downloading the cached 1 GiB file, bodies discarded (MSG_TRUNC)
#   ranges          64 connections, random aligned 64 KiB ranges of the 1 GiB file
#   rate50, rate90  open loop at 50 % and 90 % of nginx's measured 1 KiB maximum, 64 connections:
#                   corrected p50 / p99 / p99.9
#   wrk1k, wrk16k   the 1k and 16k scenarios with wrk (-t1 -c64) as an outside check of the client
#   idle            10,000 idle keep-alive connections: server memory per connection
#   hls             HLS viewers of the 5 Mbit/s rendition: most viewers with < 1 % late segments
#   cold            a 1 KiB stream at a fixed rate, alone; beside direct-I/O reads of the 1 GiB
#                   file on the client CPU only (the server untouched: what the disk's interrupts
#                   and reads do to the client's own timing); beside downloads of the 1 GiB file
#                   evicted from the page cache before each download; beside downloads of the
#                   same file cached: the stream's p99, and with tcpdump the server's own p99 on
#                   the wire (first request byte to first response byte, captured on lo)
#   fair            the cold scenario's 1 KiB stream alone and beside back-to-back cached 1 GiB
#                   downloads, on ringcast's io_uring driver and on a second ringcast started with
#                   --driver epoll (port RC_EPOLL_PORT): p99 beside ÷ alone, target ≤ 2× on each
#   ceiling         loopback sendfile ceiling: the 1g scenario against a bare HTTP responder that
#                   only calls sendfile(2) (scripts/bench/sendfile_ceiling.py), also on CPU 0
#   tls1k           HTTPS: the 1k scenario over TLS keep-alive connections: server CPU per request
#   tls1g           HTTPS: the 1g scenario over TLS (bodies decrypted, then dropped): CPU per GB
#   tlsfull         HTTPS: a new connection per 1 KiB request, 16 connections, no resumption
#                   (--new-conn --no-resume): full handshakes per second, server CPU per handshake
#   tlsresume       HTTPS: the same with resumption (--new-conn): resumed handshakes per second
#   tls             all four TLS scenarios (`--only tls`)
#
# HTTPS: both servers also listen with TLS (user-space TLS on both sides where the kernel has no
# kTLS: ringcast with rustls, nginx with OpenSSL), on the same ECDSA P-256 certificate issued by
# a throw-away CA made here (target/bench/tls; the client verifies it with --cacert); nginx keeps
# `ssl_session_cache shared:SSL:10m` and its default session tickets, ringcast its own tickets.
#
# Server CPU is utime + stime from /proc/PID/stat (the process line counts every thread; for
# nginx, master and workers summed), read before and after each client run.
#
# Needs root only to install nginx and tcpdump when they are missing and for the capture; the
# cold-cache scenario evicts just the 1 GiB file with posix_fadvise(POSIX_FADV_DONTNEED), on the
# client CPU, rather than dropping every cache
# (`sync; echo 3 > /proc/sys/vm/drop_caches` would need root and slow every other process).
# Everything stays on 127.0.0.1, every load is bounded by time, and only the processes this
# script starts are stopped (by PID) when it exits. Run from anywhere; paths are repo-relative.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=${BENCH_DIR:-$ROOT/target/bench}
WWW=$BENCH/www
OUT=$BENCH/results
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
RC_PORT=${RC_PORT:-18181}
NGX_PORT=${NGX_PORT:-18182}
RC_EPOLL_PORT=${RC_EPOLL_PORT:-18183}
RC_TLS_PORT=${RC_TLS_PORT:-18443}
NGX_TLS_PORT=${NGX_TLS_PORT:-18444}
MODE=full
ONLY=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) MODE=quick ;;
    --only) ONLY=$2; shift ;;
    --only=*) ONLY=${1#--only=} ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done

log() { printf 'bench: %s\n' "$*" >&2; }

if [ "$(nproc)" -lt 2 ]; then
  log "needs at least 2 CPUs (server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU)"
  exit 1
fi

# 1. Build ------------------------------------------------------------------------------------
log "building release binaries"
cargo build --release --quiet -p ringcast -p ringcast-load --bins
RINGCAST=$ROOT/target/release/ringcast
LOAD=$ROOT/target/release/ringcast-load

# 2. Data set ---------------------------------------------------------------------------------
mkdir -p "$WWW" "$OUT"
make_file() { # name bytes
  local path=$WWW/$1
  if [ ! -f "$path" ] || [ "$(stat -c %s "$path")" -ne "$2" ]; then
    log "writing $path ($2 bytes)"
    head -c "$2" /dev/urandom >"$path.tmp" && mv "$path.tmp" "$path"
  fi
}
make_file 1k.bin 1024
make_file 16k.bin 16384
make_file 256k.bin 262144
make_file 4m.bin 4194304
make_file 1g.bin 1073741824

# HLS ladder: 20 s of a moving test pattern with noise (so the encoder has real detail to spend
# bits on), 2 s MPEG-TS segments (keyframe every 2 s), three renditions at constant bit rate
# (x264 nal-hrd=cbr pads with filler), so a 5 Mbit/s viewer really pulls 5 Mbit/s. The approach
# is scripts/make-demo-media.sh's, at streaming bit rates.
# Made only when the hls scenario runs (it is the only one that reads it).
case ",${ONLY:-hls}," in *,hls,*) NEED_HLS=1 ;; *) NEED_HLS= ;; esac
if [ -n "$NEED_HLS" ] && [ ! -s "$WWW/hls/master.m3u8" ]; then
  command -v ffmpeg >/dev/null || { log "ffmpeg not found (apt-get install ffmpeg)"; exit 1; }
  log "encoding the HLS ladder (ffmpeg)"
  rm -rf "$WWW/hls.tmp" && mkdir -p "$WWW/hls.tmp"
  fps=25 gop=50
  ffmpeg -hide_banner -loglevel error -nostdin -y \
    -f lavfi -i "testsrc2=size=1280x720:rate=$fps:duration=20" \
    -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=20" \
    -filter_complex "[0:v]noise=alls=12:allf=t,split=3[a][b][c];[a]null[v720];[b]scale=854:480[v480];[c]scale=640:360[v360]" \
    -map "[v720]" -map 1:a -map "[v480]" -map 1:a -map "[v360]" -map 1:a \
    -c:v libx264 -preset veryfast -profile:v main -pix_fmt yuv420p \
    -g "$gop" -keyint_min "$gop" -sc_threshold 0 -x264-params nal-hrd=cbr \
    -b:v:0 4800k -minrate:v:0 4800k -maxrate:v:0 4800k -bufsize:v:0 4800k \
    -b:v:1 2400k -minrate:v:1 2400k -maxrate:v:1 2400k -bufsize:v:1 2400k \
    -b:v:2 900k -minrate:v:2 900k -maxrate:v:2 900k -bufsize:v:2 900k \
    -c:a aac -ac 2 -ar 48000 -b:a 128k \
    -f hls -hls_time 2 -hls_playlist_type vod -hls_flags independent_segments \
    -hls_segment_type mpegts -master_pl_name master.m3u8 \
    -var_stream_map "v:0,a:0,name:720p v:1,a:1,name:480p v:2,a:2,name:360p" \
    -hls_segment_filename "$WWW/hls.tmp/%v/seg%03d.ts" "$WWW/hls.tmp/%v/index.m3u8"
  rm -rf "$WWW/hls" && mv "$WWW/hls.tmp" "$WWW/hls"
fi
if [ -n "$NEED_HLS" ]; then
  # short.m3u8: the first 4 segments (8 s) of the 5 Mbit/s rendition, for --quick.
  awk '/^#EXTINF/ { n++ } n > 4 { exit } { print } END { print "#EXT-X-ENDLIST" }' \
    "$WWW/hls/720p/index.m3u8" >"$WWW/hls/720p/short.m3u8"
  hls_bytes=$(du -cb "$WWW"/hls/720p/*.ts | tail -1 | cut -f1)
  log "HLS 720p rendition: $((hls_bytes * 8 / 20 / 1000)) kbit/s measured over 20 s"
  cat "$WWW"/hls/*/* >/dev/null # into the page cache
fi
cat "$WWW"/*.bin >/dev/null # into the page cache

# 3. nginx ------------------------------------------------------------------------------------
NGINX=$(command -v nginx || true)
[ -z "$NGINX" ] && [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx
if [ -z "$NGINX" ]; then
  log "installing nginx from Debian (apt-get install nginx-light)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null
  NGINX=/usr/sbin/nginx
fi
if ! command -v tcpdump >/dev/null && [ "$(id -u)" = 0 ]; then
  log "installing tcpdump from Debian (for the cold scenario's on-the-wire latencies)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q tcpdump >/dev/null
fi

# The HTTPS certificate: a CA and an ECDSA P-256 leaf for localhost and 127.0.0.1 it signs
# (webpki refuses a self-signed certificate used as its own CA), the same for both servers.
TLS=$BENCH/tls
if [ ! -s "$TLS/cert.pem" ]; then
  log "making the HTTPS test CA and certificate under $TLS"
  mkdir -p "$TLS"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj /CN=ringcast-bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    -keyout "$TLS/ca-key.pem" -out "$TLS/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$TLS/key.pem" -out "$TLS/cert.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
    >"$TLS/leaf.ext"
  openssl x509 -req -in "$TLS/cert.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca-key.pem" -CAcreateserial \
    -days 3650 -extfile "$TLS/leaf.ext" -out "$TLS/cert.pem" 2>/dev/null
fi

# 4. Servers ----------------------------------------------------------------------------------
NGX_DIR=$BENCH/nginx
mkdir -p "$NGX_DIR/logs" "$NGX_DIR/tmp"
cat >"$NGX_DIR/nginx.conf" <<CONF
# Written by scripts/bench.sh: nginx configured like ringcast's defaults.
worker_processes 1;            # one worker per CPU it is given (taskset -c $SERVER_CPU)
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid $NGX_DIR/nginx.pid;
error_log $NGX_DIR/logs/error.log warn;
events { worker_connections 16384; }   # ringcast --max-connections default
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    types { video/mp2t ts; application/vnd.apple.mpegurl m3u8; }
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 60s;               # ringcast --keepalive-timeout
    keepalive_requests 1000000000;       # no request cap (ringcast has none)
    send_timeout 60s;                    # ringcast --send-timeout
    client_header_timeout 10s;           # ringcast --header-timeout
    open_file_cache max=1024 inactive=60s;  # ringcast --file-cache-entries
    open_file_cache_valid 1s;               # ringcast --file-cache-revalidate
    open_file_cache_errors on;
    client_body_temp_path $NGX_DIR/tmp;
    proxy_temp_path $NGX_DIR/tmp;
    fastcgi_temp_path $NGX_DIR/tmp;
    uwsgi_temp_path $NGX_DIR/tmp;
    scgi_temp_path $NGX_DIR/tmp;
    server {
        listen 127.0.0.1:$NGX_PORT reuseport backlog=4096;
        root $WWW;
    }
    server {                              # HTTPS, OpenSSL in user space (no kTLS here)
        listen 127.0.0.1:$NGX_TLS_PORT ssl reuseport backlog=4096;
        root $WWW;
        ssl_certificate $TLS/cert.pem;
        ssl_certificate_key $TLS/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;    # ringcast's versions
        ssl_session_cache shared:SSL:10m;
    }
}
CONF

RC_PID='' NGX_PID='' RC_EPOLL_PID=''
cleanup() {
  [ -n "$RC_PID" ] && kill "$RC_PID" 2>/dev/null && wait "$RC_PID" 2>/dev/null
  [ -n "$RC_EPOLL_PID" ] && kill "$RC_EPOLL_PID" 2>/dev/null && wait "$RC_EPOLL_PID" 2>/dev/null
  [ -n "$NGX_PID" ] && kill "$NGX_PID" 2>/dev/null && wait "$NGX_PID" 2>/dev/null
  return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

taskset -c "$SERVER_CPU" "$RINGCAST" --workers 1 --listen "127.0.0.1:$RC_PORT" \
  --tls-listen "127.0.0.1:$RC_TLS_PORT" --tls-cert "$TLS/cert.pem" --tls-key "$TLS/key.pem" "$WWW" \
  >"$OUT/ringcast.log" 2>&1 &
RC_PID=$!
# The same ringcast on its epoll fallback, for the fair scenario only (idle otherwise).
taskset -c "$SERVER_CPU" "$RINGCAST" --workers 1 --driver epoll --listen "127.0.0.1:$RC_EPOLL_PORT" "$WWW" \
  >"$OUT/ringcast-epoll.log" 2>&1 &
RC_EPOLL_PID=$!
taskset -c "$SERVER_CPU" "$NGINX" -c "$NGX_DIR/nginx.conf" -p "$NGX_DIR" >"$OUT/nginx.log" 2>&1 &
NGX_PID=$!

wait_port() { # pid port name [scheme]
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || { log "$3 exited at start:"; cat "$OUT/$3.log" >&2; exit 1; }
    curl -fsS --cacert "$TLS/ca.pem" -o /dev/null "${4:-http}://127.0.0.1:$2/1k.bin" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$3 did not answer on ${4:-http} port $2"; exit 1
}
wait_port "$RC_PID" "$RC_PORT" ringcast
wait_port "$RC_PID" "$RC_TLS_PORT" ringcast https
wait_port "$RC_EPOLL_PID" "$RC_EPOLL_PORT" ringcast-epoll
wait_port "$NGX_PID" "$NGX_PORT" nginx
wait_port "$NGX_PID" "$NGX_TLS_PORT" nginx https

# 5. and 6. Scenarios, table, JSON, plots -----------------------------------------------------
{
  echo "date: $(date -u +%FT%TZ)"
  echo "command: scripts/bench.sh $MODE${ONLY:+ --only $ONLY}"
  echo "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -1), Linux $(uname -r)"
  echo "ringcast: $("$RINGCAST" --version) ($(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ', uncommitted changes in the tree'))"
  echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
  echo "wrk: $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "TLS: ringcast rustls (ring), nginx $(openssl version | cut -d' ' -f1-2), kernel TLS: $(grep -q '^tls ' /proc/modules 2>/dev/null && echo loaded || echo absent); negotiated by each: $(for p in $RC_TLS_PORT $NGX_TLS_PORT; do openssl s_client -connect 127.0.0.1:$p -CAfile "$TLS/ca.pem" </dev/null 2>/dev/null | sed -n 's/^New, \(.*\), Cipher is \(.*\)/\1 \2/p' | head -1 | tr '\n' ';'; done)"
  echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

python3 "$ROOT/scripts/bench/run.py" \
  --mode "$MODE" ${ONLY:+--only "$ONLY"} \
  --load "$LOAD" --out "$OUT" --www "$WWW" \
  --server-cpu "$SERVER_CPU" --client-cpu "$CLIENT_CPU" \
  --server "ringcast=$RC_PID=http://127.0.0.1:$RC_PORT" \
  --server "nginx=$NGX_PID=http://127.0.0.1:$NGX_PORT" \
  --tls-url "ringcast=https://127.0.0.1:$RC_TLS_PORT" --tls-url "nginx=https://127.0.0.1:$NGX_TLS_PORT" \
  --cacert "$TLS/ca.pem" \
  --extra-server "ringcast-epoll=$RC_EPOLL_PID=http://127.0.0.1:$RC_EPOLL_PORT"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

for name in ringcast nginx ringcast-epoll; do
  pid=$RC_PID; [ $name = nginx ] && pid=$NGX_PID; [ $name = ringcast-epoll ] && pid=$RC_EPOLL_PID
  kill -0 "$pid" 2>/dev/null || { log "$name is no longer running (log: $OUT/$name.log)"; exit 1; }
done
