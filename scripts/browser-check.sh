#!/usr/bin/env bash
# Opens the demo page served at BASE_URL in headless Chromium and fails unless the video plays
# (its currentTime advances). Also plays the MP4 and the WebM sources on their own, and the HLS
# master playlist where the browser supports HLS natively (reported, not required).
#
# With CROSS_ORIGIN_URL, the same server under another origin, it also checks CORS from the page:
# a cross-origin `<video crossorigin>` plays, a Range fetch reads Content-Range, and a fetch with
# If-None-Match passes its preflight and gets 304 (the server must run with --cors '*').
#
# Usage: scripts/browser-check.sh BASE_URL [CROSS_ORIGIN_URL]
#        e.g. scripts/browser-check.sh http://127.0.0.1:8080 http://localhost:8080
# Needs: /usr/bin/chromium (or CHROMIUM=...), node, and playwright-core under target/tools
#        (scripts/install-test-deps.sh installs all three).
set -euo pipefail

base=${1:?usage: browser-check.sh BASE_URL [CROSS_ORIGIN_URL]}
cross=${2:-}
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${RINGCAST_TOOLS:-$root/target/tools}
chromium=${CHROMIUM:-/usr/bin/chromium}
pw=$tools/node_modules/playwright-core

die() { echo "browser-check: $*" >&2; exit 1; }
command -v node >/dev/null || die "node not found; run scripts/install-test-deps.sh"
[ -x "$chromium" ] || die "$chromium not found; run scripts/install-test-deps.sh"
[ -f "$pw/package.json" ] || die "playwright-core not in $tools; run scripts/install-test-deps.sh"

profile=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-chromium.XXXXXX")
trap 'rm -rf "$profile"' EXIT

# The whole check is bounded: a browser that hangs must not hang CI.
PLAYWRIGHT_CORE=$pw CHROMIUM=$chromium USER_DATA_DIR=$profile CROSS_ORIGIN_URL=$cross \
  timeout -k 5 120 node "$root/scripts/browser/play-check.cjs" "$base" ||
  die "failed against $base (exit $?)"
