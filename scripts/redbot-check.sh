#!/usr/bin/env bash
# Lints ringcast's answers for the demo media with REDbot: the MP4, the HLS master playlist, a
# media playlist and a segment. REDbot fetches each URL and probes it further (ranges, ETag and
# Last-Modified revalidation, content negotiation); its HAR output carries every finding with a
# level (GOOD, INFO, WARN, BAD). Prints a summary, lists the WARN and BAD findings, and fails on
# any BAD finding, on a non-200 status, or when REDbot itself fails.
# (REDbot 2.7.1 warns CONTENT_TYPE_MISMATCH on every video/* response: its sniffer, sniffpy,
# answers "undefined/undefined" for any declared video type. That WARN says nothing about the
# server.)
#
# Usage: scripts/redbot-check.sh BASE_URL     e.g. http://127.0.0.1:8080
# Needs: target/tools/venv with redbot (scripts/install-test-deps.sh installs it).
set -euo pipefail

base=${1:?usage: redbot-check.sh BASE_URL}
base=${base%/}
root=$(cd "$(dirname "$0")/.." && pwd)
tools=${RINGCAST_TOOLS:-$root/target/tools}
redbot=$tools/venv/bin/redbot
python=$tools/venv/bin/python

die() { echo "redbot-check: $*" >&2; exit 1; }
[ -x "$redbot" ] || die "redbot not found at $redbot; run scripts/install-test-deps.sh"

paths=(media/demo.mp4 hls/master.m3u8 hls/360p/index.m3u8 hls/360p/seg000.ts)

work=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-redbot.XXXXXX")
trap 'rm -rf "$work"' EXIT

i=0
hars=()
for p in "${paths[@]}"; do
  i=$((i + 1))
  har=$work/$i.har
  timeout -k 5 60 "$redbot" -o har "$base/$p" >"$har" 2>"$work/$i.err" ||
    die "redbot failed on $base/$p: $(tail -n 5 "$work/$i.err")"
  hars+=("$har")
done

"$python" - "${hars[@]}" <<'PY'
import json
import sys
from collections import Counter

bad = 0
problems = []
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        har = json.load(f)
    entries = har.get("log", {}).get("entries", [])
    if not entries:
        print(f"redbot-check: no entries in HAR {path}", file=sys.stderr)
        sys.exit(1)
    entry = entries[0]
    url = entry["request"]["url"]
    status = entry["response"]["status"]
    ctype = next((h["value"].strip() for h in entry["response"]["headers"]
                  if h["name"].lower() == "content-type"), "-")
    notes = entry.get("_red_messages", [])
    levels = Counter(n["level"] for n in notes)
    summary = ", ".join(f"{levels[l]} {l}" for l in ("GOOD", "INFO", "WARN", "BAD") if levels[l])
    print(f"  {status} {url} [{ctype}]: {summary or 'no findings'}")
    if status != 200:
        problems.append(f"{url} answered {status}, expected 200")
    for n in notes:
        if n["level"] in ("WARN", "BAD"):
            print(f"      {n['level']:4} {n['note_id']}: {n['summary']}")
        if n["level"] == "BAD":
            bad += 1
if bad:
    problems.append(f"{bad} BAD finding(s)")
if problems:
    print("redbot-check: FAILED: " + "; ".join(problems), file=sys.stderr)
    sys.exit(1)
print("redbot-check: no BAD findings")
PY
