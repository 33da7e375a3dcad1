#!/usr/bin/env bash
# Verifies ringcast-load against nginx on loopback (docs/loadtest.md, "Verification").
#
# Needs: nginx, wrk, oha (cargo install oha), python3, taskset; the release binary
# (cargo build --release -p ringcast-load). nginx is pinned to CPU 0, every client to CPU 1.
# Everything stays on 127.0.0.1 and every load is bounded by time. Run from the repository root.
# Results go to $OUT (default /tmp/ringcast-load-verify); a summary is printed at the end.
set -euo pipefail

BIN=${BIN:-${CARGO_TARGET_DIR:-target}/release/ringcast-load}
OUT=${OUT:-/tmp/ringcast-load-verify}
PORT=${PORT:-18431}
SECS=${SECS:-10}
RATE=${RATE:-5000}
ROUNDS=${ROUNDS:-3}
# oha's scheduler wakes on tokio's 1 ms timer ticks and releases every request due by then at
# once, timing each from the tick: above 1000 req/s it sends bursts and measures them. At or
# below one request per tick both tools send one request at a time, so they measure the same
# thing; this is the rate at which their percentiles are compared (section 1a).
OHA_RATE=${OHA_RATE:-1000}
OHA_ROUNDS=${OHA_ROUNDS:-6}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
URL_1K=http://127.0.0.1:$PORT/1k.bin
URL_1G=http://127.0.0.1:$PORT/1g.bin

mkdir -p "$OUT/www" "$OUT/logs" "$OUT/tmp"
[ -s "$OUT/www/1k.bin" ] || head -c 1024 /dev/urandom > "$OUT/www/1k.bin"
[ -s "$OUT/www/1g.bin" ] || head -c 1073741824 /dev/zero > "$OUT/www/1g.bin"
cat "$OUT/www/1g.bin" > /dev/null   # into the page cache

cat > "$OUT/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $OUT/nginx.pid;
error_log $OUT/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    client_body_temp_path $OUT/tmp;
    proxy_temp_path $OUT/tmp;
    fastcgi_temp_path $OUT/tmp;
    uwsgi_temp_path $OUT/tmp;
    scgi_temp_path $OUT/tmp;
    server {
        listen 127.0.0.1:$PORT reuseport backlog=4096;
        root $OUT/www;
    }
}
CONF
# Never measure somebody else's server: the port must be free before nginx starts.
if ss -Htln "sport = :$PORT" | grep -q .; then
    echo "port $PORT is already in use; set PORT to a free one" >&2
    exit 1
fi
taskset -c "$SERVER_CPU" nginx -c "$OUT/nginx.conf" -p "$OUT" &
NGINX_PID=$!
trap 'kill "$NGINX_PID" 2>/dev/null || true' EXIT
sleep 1
kill -0 "$NGINX_PID" || { echo "nginx did not start; see $OUT/logs/error.log" >&2; exit 1; }

# Runs a command pinned to the client CPU; prints its output, then "CPU_S <utime+stime>" read
# from /proc/PID/stat while the process is a zombie (all threads included), before reaping.
cpu_run() {
    python3 - "$CLIENT_CPU" "$@" <<'PY'
import os, subprocess, sys, threading, time
hz = os.sysconf("SC_CLK_TCK")
p = subprocess.Popen(["taskset", "-c", sys.argv[1]] + sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
out = []
t = threading.Thread(target=lambda: out.append(p.stdout.read())); t.start()
cpu = 0.0
while True:
    try:
        with open(f"/proc/{p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        break
    cpu = (int(fields[11]) + int(fields[12])) / hz
    if fields[0] == "Z":
        break
    time.sleep(0.01)
p.wait(); t.join()
sys.stdout.write(out[0].decode(errors="replace"))
print(f"CPU_S {cpu:.2f}")
PY
}

{
echo "date: $(date -u +%FT%TZ)  machine: $(nproc) CPUs, Linux $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== 1. rate accuracy and agreement with oha: $RATE req/s, 16 connections, ${SECS}s"
for r in $(seq "$ROUNDS"); do
    taskset -c "$CLIENT_CPU" "$BIN" -q -R "$RATE" -c 16 -d "${SECS}s" --json "$OUT/rate-$r.json" "$URL_1K" > /dev/null
    taskset -c "$CLIENT_CPU" oha --no-tui -z "${SECS}s" -q "$RATE" -c 16 --latency-correction --output-format json "$URL_1K" > "$OUT/oha-$r.json"
    python3 - "$OUT/rate-$r.json" "$OUT/oha-$r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2]))
op = o["latencyPercentiles"]
print(f"  ringcast-load: achieved {r['rate_achieved']:.1f}/{r['rate_target']:.0f} req/s ({(r['rate_achieved']/r['rate_target']-1)*100:+.2f}%), "
      f"p50 {r['latency_us']['p50']} us, p99 {r['latency_us']['p99']} us, errors {r['errors']}, missed {r['missed']}")
print(f"  oha:           achieved {o['summary']['requestsPerSec']:.1f} req/s, p50 {op['p50']*1e6:.0f} us, p99 {op['p99']*1e6:.0f} us, "
      f"success {o['summary']['successRate']}")
PY
done

echo "== 1a. agreement with oha: $OHA_RATE req/s, 16 connections, ${SECS}s, $OHA_ROUNDS alternating rounds"
for r in $(seq "$OHA_ROUNDS"); do
    taskset -c "$CLIENT_CPU" "$BIN" -q -R "$OHA_RATE" -c 16 -d "${SECS}s" --json "$OUT/agree-$r.json" "$URL_1K" > /dev/null
    taskset -c "$CLIENT_CPU" oha --no-tui -z "${SECS}s" -q "$OHA_RATE" -c 16 --latency-correction --output-format json "$URL_1K" > "$OUT/oha-agree-$r.json"
done
python3 - "$OUT" "$OHA_ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
rows = []
for r in range(1, rounds + 1):
    l = json.load(open(f"{out}/agree-{r}.json"))["latency_us"]
    o = json.load(open(f"{out}/oha-agree-{r}.json"))["latencyPercentiles"]
    rows.append((l["p50"], l["p99"], o["p50"] * 1e6, o["p99"] * 1e6))
    print(f"  round {r}: ringcast-load p50 {l['p50']} us, p99 {l['p99']} us | oha p50 {o['p50']*1e6:.0f} us, p99 {o['p99']*1e6:.0f} us")
med = [statistics.median(c) for c in zip(*rows)]
for name, mine, theirs in (("p50", med[0], med[2]), ("p99", med[1], med[3])):
    ratio = mine / theirs
    verdict = "within 15 %" if abs(ratio - 1) <= 0.15 else "NOT within 15 %"
    print(f"  median {name}: ringcast-load {mine:.0f} us, oha {theirs:.0f} us, ratio {ratio:.2f} ({verdict})")
PY

echo "== 1b. the same percentiles without pacing: closed loop, one connection, 1 KiB, ${SECS}s"
for r in $(seq "$ROUNDS"); do
    taskset -c "$CLIENT_CPU" "$BIN" -q -c 1 -d "${SECS}s" --json "$OUT/one-$r.json" "$URL_1K" > /dev/null
    taskset -c "$CLIENT_CPU" oha --no-tui -z "${SECS}s" -c 1 --output-format json "$URL_1K" > "$OUT/oha-one-$r.json"
    python3 - "$OUT/one-$r.json" "$OUT/oha-one-$r.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); o = json.load(open(sys.argv[2]))
op = o["latencyPercentiles"]
print(f"  ringcast-load: {r['rate_achieved']:.0f} req/s, p50 {r['latency_us']['p50']} us, p99 {r['latency_us']['p99']} us | "
      f"oha: {o['summary']['requestsPerSec']:.0f} req/s, p50 {op['p50']*1e6:.0f} us, p99 {op['p99']*1e6:.0f} us")
PY
done

echo "== 2. client CPU per request, closed loop, 64 connections, 1 KiB, ${SECS}s"
for r in $(seq "$ROUNDS"); do
    w=$(cpu_run wrk -t1 -c64 -d"${SECS}s" "$URL_1K")
    l=$(cpu_run "$BIN" -q -c 64 -d "${SECS}s" --json "$OUT/closed-$r.json" "$URL_1K")
    wreq=$(echo "$w" | awk '/requests in/ {print $1}'); wcpu=$(echo "$w" | awk '/^CPU_S/ {print $2}')
    lreq=$(python3 -c "import json;print(json.load(open('$OUT/closed-$r.json'))['requests'])"); lcpu=$(echo "$l" | awk '/^CPU_S/ {print $2}')
    python3 -c "
w=$wcpu*1e6/$wreq; l=$lcpu*1e6/$lreq
print(f'  wrk: {$wreq} req, {$wcpu} s CPU, {w:.2f} us/req | ringcast-load: {$lreq} req, {$lcpu} s CPU, {l:.2f} us/req | ratio {l/w:.2f}')"
done

echo "== 3. 1 GiB downloads, one connection, ${SECS}s: --discard vs wrk"
for r in $(seq "$ROUNDS"); do
    w=$(cpu_run wrk -t1 -c1 -d"${SECS}s" "$URL_1G")
    l=$(cpu_run "$BIN" -q --discard -c 1 -d "${SECS}s" --json "$OUT/discard-$r.json" "$URL_1G")
    python3 - "$OUT/discard-$r.json" <<PY
import json, re, sys
d = json.load(open(sys.argv[1]))
w = """$w"""
m = re.search(r"(\d+) requests in ([\d.]+)s, ([\d.]+)GB read", w)
wgb, ws = float(m.group(3)), float(m.group(2))
wcpu = float(re.search(r"CPU_S ([\d.]+)", w).group(1)); lcpu = float(re.search(r"CPU_S ([\d.]+)", """$l""").group(1))
wrate = wgb * 1024**3 / ws / 1e6
print(f"  wrk: {wrate:.0f} MB/s, {wcpu} s CPU | ringcast-load --discard: {d['mb_per_s']:.0f} MB/s, {lcpu} s CPU, errors {d['errors']} | speed ratio {d['mb_per_s']/wrate:.2f}")
PY
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/summary.txt"
