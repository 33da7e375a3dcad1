#!/usr/bin/env bash
# Scans ringcast's HTTPS listener with testssl.sh (Debian package `testssl.sh`) and fails on any
# finding rated HIGH or CRITICAL, except `cert_revocation`: the local test CA made here publishes
# no CRL or OCSP responder, which says nothing about the server.
#
#   scripts/testssl-check.sh [RINGCAST_BINARY]     (default target/release/ringcast; about 1 min)
#
# The certificate is an ECDSA P-256 leaf for `localhost` signed by a throw-away CA that testssl
# is told to trust (--add-ca), so the chain and name checks are real. Only 127.0.0.1 is scanned;
# the server started here is stopped by PID.
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${1:-target/release/ringcast}
PORT=${TESTSSL_PORT:-18460}
DIR=$(mktemp -d "${TMPDIR:-/tmp}/ringcast-testssl.XXXXXX")
PID=''
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT
command -v testssl >/dev/null || { echo "testssl-check: testssl not found (apt-get install testssl.sh)" >&2; exit 1; }
[ -x "$BIN" ] || cargo build --release --quiet -p ringcast --bin ringcast

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj "/CN=testssl CA" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$DIR/leaf.key" -out "$DIR/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' >"$DIR/ext"
openssl x509 -req -days 90 -in "$DIR/leaf.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" \
  -CAcreateserial -extfile "$DIR/ext" -out "$DIR/leaf.pem" 2>/dev/null
cat "$DIR/leaf.pem" "$DIR/ca.pem" >"$DIR/chain.pem"
mkdir -p "$DIR/www"
echo ok >"$DIR/www/index.html"

"$BIN" --workers 1 --listen 127.0.0.1:0 --tls-listen "127.0.0.1:$PORT" \
  --tls-cert "$DIR/chain.pem" --tls-key "$DIR/leaf.key" "$DIR/www" >"$DIR/out" 2>"$DIR/log" &
PID=$!
for _ in $(seq 100); do
  grep -q https "$DIR/out" 2>/dev/null && break
  sleep 0.1
done

testssl --quiet --color 0 --warnings batch --add-ca "$DIR/ca.pem" --ip 127.0.0.1 \
  --jsonfile "$DIR/result.json" "https://localhost:$PORT/" >"$DIR/report.txt" 2>&1 || true
python3 - "$DIR/result.json" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))
allowed = {"cert_revocation"}
bad = [f for f in findings if f["severity"] in ("HIGH", "CRITICAL") and f["id"] not in allowed]
for f in findings:
    if f["severity"] in ("LOW", "MEDIUM", "HIGH", "CRITICAL"):
        print(f"testssl-check: {f['severity']:8} {f['id']}: {f['finding']}")
if bad:
    print(f"testssl-check: FAILED: {len(bad)} finding(s) rated HIGH or CRITICAL")
    sys.exit(1)
print(f"testssl-check: ok ({len(findings)} findings, none HIGH or CRITICAL beyond {sorted(allowed)})")
PY
