#!/usr/bin/env bash
# Serves demo/ with ringcast and checks it with real clients:
#   - curl: the demo page, and the resume of an interrupted download with `-C -` (sha256 compared
#     with the file on disk)
#   - ffprobe / ffmpeg: the MP4 (whole, and a seek into the middle, which reads with ranges) and the
#     HLS ladder (`ffmpeg -i …/hls/master.m3u8 -map 0 -c copy -f null -`) with no error
#   - scripts/redbot-check.sh: no BAD finding from REDbot on the MP4, playlists and a segment
#   - scripts/browser-check.sh: headless Chromium plays the demo page's video
# then stops the server with SIGTERM and expects a clean exit 0.
#
# Usage: scripts/real-clients.sh [BIN]
#   BIN defaults to the newer of target/release/ringcast and target/debug/ringcast.
#   RINGCAST_ARGS  extra server options (word-split), e.g. "--driver epoll"
#   RINGCAST_URL   check an already running server that serves demo/ at this URL instead
#                  (for comparing with nginx; BIN is not started)
#   RINGCAST_CROSS_URL  with RINGCAST_URL: the same server under another origin, for the CORS
#                  checks (ringcast itself is started with --cors '*' and checked from
#                  http://localhost:PORT)
# Needs what scripts/install-test-deps.sh installs. Every step is bounded by a timeout.
# Prints one line per check and ends with "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
demo=$root/demo
work=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-clients.XXXXXX")
server_pid=
cross=

die() { echo "real-clients: $*" >&2; exit 1; }

cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for cmd in curl ffmpeg ffprobe sha256sum timeout; do
  command -v "$cmd" >/dev/null || die "$cmd not found; run scripts/install-test-deps.sh"
done
[ -f "$demo/media/demo.mp4" ] || die "no demo media; run scripts/make-demo-media.sh"

if [ -n "${RINGCAST_URL:-}" ]; then
  base=${RINGCAST_URL%/}
  cross=${RINGCAST_CROSS_URL:-}
  echo "real-clients: checking $base"
else
  bin=${1:-}
  if [ -z "$bin" ]; then
    # The newer of the release and debug builds, so a stale build is not checked by mistake.
    for b in "$root/target/release/ringcast" "$root/target/debug/ringcast"; do
      if [ -x "$b" ] && { [ -z "$bin" ] || [ "$b" -nt "$bin" ]; }; then bin=$b; fi
    done
  fi
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    die "no ringcast binary${bin:+ at $bin} (build it with: cargo build --release)"
  fi

  # With --cors '*' the browser check also plays the video from another origin.
  cors=()
  if "$bin" --help 2>/dev/null | grep -q -- '--cors'; then
    cors=(--cors '*')
  fi
  # shellcheck disable=SC2086 # RINGCAST_ARGS is a list of options
  "$bin" --listen 127.0.0.1:0 "${cors[@]}" ${RINGCAST_ARGS:-} "$demo" \
    >"$work/server.out" 2>"$work/server.err" &
  server_pid=$!
  base=
  for _ in $(seq 100); do
    line=$(grep -m1 '^listening on http://' "$work/server.out" 2>/dev/null) && {
      base=${line#listening on }
      break
    }
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$base" ]; then
    echo "--- server stdout ---" >&2; cat "$work/server.out" >&2
    echo "--- server stderr ---" >&2; tail -n 20 "$work/server.err" >&2
    if kill -0 "$server_pid" 2>/dev/null; then
      die "$bin did not print 'listening on http://IP:PORT' within 10 s"
    fi
    wait "$server_pid"
    rc=$?
    server_pid=
    die "$bin exited with code $rc before printing 'listening on http://IP:PORT'"
  fi
  echo "real-clients: $bin${cors:+ --cors '*'} serving $demo at $base (pid $server_pid)"
  # The same server under another origin: Chromium resolves localhost to loopback itself.
  if [ "${#cors[@]}" -gt 0 ]; then
    cross=${base/\/\/127.0.0.1:/\/\/localhost:}
  else
    echo "real-clients: $bin has no --cors option; skipping the cross-origin browser checks"
  fi
fi

passed=0
failed=0
failures=()
# check NAME COMMAND...: runs one check; its full output is shown on failure, its summary lines
# (indented, or from the REDbot and browser checks) on success.
check() {
  local name=$1 log
  shift
  log=$work/check-$((passed + failed)).log
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
    grep -E '^(  |redbot-check|browser-check)' "$log" | sed 's/^/     /' || true
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "FAIL $name"
    sed 's/^/     /' "$log"
  fi
}

# The demo page itself.
page() {
  local code type
  read -r code type < <(curl -sS -o "$work/index.html" -w '%{http_code} %{content_type}\n' \
    --max-time 10 "$base/")
  echo "GET / -> $code $type"
  [ "$code" = 200 ] || { echo "expected 200"; return 1; }
  case $type in text/html*) ;; *) echo "expected text/html"; return 1 ;; esac
  cmp "$work/index.html" "$demo/index.html" || { echo "body differs from demo/index.html"; return 1; }
}

# ffprobe reads the MP4 without a complaint and finds both streams and the whole duration.
ffprobe_mp4() {
  local out
  out=$(timeout -k 5 30 ffprobe -v error -show_entries format=duration:stream=codec_name \
    -of default=nw=1 "$base/media/demo.mp4" 2>"$work/ffprobe.err") || {
    cat "$work/ffprobe.err"; return 1; }
  echo "$out"
  [ ! -s "$work/ffprobe.err" ] || { cat "$work/ffprobe.err"; return 1; }
  if ! grep -qx 'codec_name=h264' <<<"$out" || ! grep -qx 'codec_name=aac' <<<"$out"; then
    echo "expected h264 and aac streams"
    return 1
  fi
  awk -F= '/^duration=/ { exit !($2 > 9.5 && $2 < 10.5) }' <<<"$out" ||
    { echo "expected a duration of about 10 s"; return 1; }
}

# ffmpeg seeks into the MP4 over HTTP (range requests), then reads to the end.
ffmpeg_mp4_seek() {
  timeout -k 5 60 ffmpeg -nostdin -hide_banner -v error -xerror -ss 6 -i "$base/media/demo.mp4" \
    -map 0 -c copy -f null - 2>"$work/seek.err" || { cat "$work/seek.err"; return 1; }
  [ ! -s "$work/seek.err" ] || { cat "$work/seek.err"; return 1; }
}

# ffmpeg reads every variant of the HLS ladder, all segments, with no error.
ffmpeg_hls() {
  timeout -k 5 90 ffmpeg -nostdin -hide_banner -v error -xerror -i "$base/hls/master.m3u8" \
    -map 0 -c copy -f null - 2>"$work/hls.err" || { cat "$work/hls.err"; return 1; }
  [ ! -s "$work/hls.err" ] || { cat "$work/hls.err"; return 1; }
  local d
  d=$(timeout -k 5 30 ffprobe -v error -show_entries format=duration -of csv=p=0 \
    "$base/hls/master.m3u8") || return 1
  echo "HLS duration $d s"
  awk -v d="$d" 'BEGIN { exit !(d > 9.5 && d < 10.5) }' || { echo "expected about 10 s"; return 1; }
}

# curl resumes an interrupted download: the first transfer is cut off after 100,000 bytes (the
# reader goes away, so curl aborts mid-body and closes the connection), the second continues it
# with `-C -` (a Range request) and must be answered 206.
curl_resume() {
  local file=$demo/media/demo.mp4 out=$work/resume.mp4 size got code
  size=$(stat -c %s "$file")
  curl -sS --max-time 30 "$base/media/demo.mp4" 2>/dev/null | head -c 100000 >"$out"
  got=$(stat -c %s "$out")
  [ "$got" -eq 100000 ] || { echo "first transfer gave $got bytes, expected 100000"; return 1; }
  echo "interrupted after $got of $size bytes"
  code=$(curl -sS --max-time 30 -C - -o "$out" -w '%{http_code}' "$base/media/demo.mp4") ||
    { echo "curl -C - failed"; return 1; }
  echo "resume answered $code"
  [ "$code" = 206 ] || { echo "expected 206 Partial Content"; return 1; }
  local want have
  want=$(sha256sum <"$file" | cut -d' ' -f1)
  have=$(sha256sum <"$out" | cut -d' ' -f1)
  echo "sha256 $have"
  [ "$want" = "$have" ] || { echo "sha256 differs from the file on disk ($want)"; return 1; }
}

check "curl GET / (demo page)" page
check "ffprobe media/demo.mp4" ffprobe_mp4
check "ffmpeg seek into media/demo.mp4 (ranges)" ffmpeg_mp4_seek
check "ffmpeg hls/master.m3u8, every variant" ffmpeg_hls
check "curl -C - resumes an interrupted download" curl_resume
check "REDbot: no BAD finding" "$root/scripts/redbot-check.sh" "$base"
check "headless Chromium plays the demo video${cross:+ (and cross-origin)}" \
  "$root/scripts/browser-check.sh" "$base" ${cross:+"$cross"}

if [ -n "$server_pid" ]; then
  # SIGTERM: stop accepting, drain, exit 0.
  kill -TERM "$server_pid"
  for _ in $(seq 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$server_pid" 2>/dev/null; then
    failed=$((failed + 1)); failures+=("clean exit on SIGTERM")
    echo "FAIL server still running 15 s after SIGTERM"
  else
    wait "$server_pid"; rc=$?
    server_pid=
    if [ "$rc" -eq 0 ]; then
      passed=$((passed + 1)); echo "ok   server exits 0 on SIGTERM"
    else
      failed=$((failed + 1)); failures+=("clean exit on SIGTERM")
      echo "FAIL server exited $rc on SIGTERM"
    fi
  fi
  if grep -q 'panicked' "$work/server.err"; then
    failed=$((failed + 1)); failures+=("no panic in the server log")
    echo "FAIL the server log has a panic:"; grep -A3 'panicked' "$work/server.err" | sed 's/^/     /'
  fi
fi

if [ "$failed" -gt 0 ] && [ -s "$work/server.err" ]; then
  echo "--- server stderr (last 20 lines) ---"
  tail -n 20 "$work/server.err"
fi
echo "$passed passed, $failed failed"
if [ "$failed" -gt 0 ]; then
  echo "real-clients: FAILED: ${failures[*]}" >&2
  exit 1
fi
