#!/usr/bin/env bash
# Installs what ringcast's tests and real-client checks need on a fresh Debian machine, and
# nothing when it is all there already (idempotent; quiet on success, loud on failure).
#   Debian: ffmpeg, curl, chromium, nginx-light, wrk, node + npm, python3 venv,
#           qemu-system-x86 + busybox-static (the kTLS VM of scripts/ktls-vm.sh, which fetches
#           its kernel package itself with apt-get download)
#   PyPI:   redbot (HTTP lint, used by scripts/redbot-check.sh) in target/tools/venv
#           moto[server], boto3, botocore (the S3 store and the SigV4 known answers of src/s3/)
#           in the same venv
#   npm:    playwright-core (drives Debian's Chromium, scripts/browser-check.sh) in target/tools
#   crates.io: cargo-fuzz (scripts/fuzz.sh) in ~/.cargo/bin
# No browser is downloaded: playwright-core drives /usr/bin/chromium.
# Usage (as root for the Debian part): scripts/install-test-deps.sh
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools=${RINGCAST_TOOLS:-$root/target/tools}
redbot_version=2.7.1
moto_version=5.2.5
botocore_version=1.44.5
playwright_version=1.65.1

log=$(mktemp "${TMPDIR:-/tmp}/ringcast-install.XXXXXX")
trap 'rm -f "$log"' EXIT
die() {
  echo "install-test-deps: $*" >&2
  if [ -s "$log" ]; then
    echo "--- last output ---" >&2
    tail -n 40 "$log" >&2
  fi
  exit 1
}
run() { "$@" >>"$log" 2>&1 || die "failed: $*"; }

# Debian packages, each checked by the command it provides, so a machine that has the command
# from another package (nginx instead of nginx-light, Node.js from elsewhere) is left alone.
missing=()
need() { command -v "$2" >/dev/null 2>&1 || missing+=("$1"); }
need ffmpeg ffmpeg
need ffmpeg ffprobe
need curl curl
# openssl (CLI) and testssl.sh: tests/tls.rs and scripts/testssl-check.sh.
need openssl openssl
need testssl.sh testssl
need chromium chromium
need nginx-light nginx
need wrk wrk
need nodejs node
need npm npm
need python3 python3
need qemu-system-x86 qemu-system-x86_64
# The kTLS VM's initramfs needs the static busybox (Debian's `busybox` package is dynamic).
if ! command -v busybox >/dev/null 2>&1 || ldd "$(command -v busybox)" >/dev/null 2>&1; then
  missing+=(busybox-static)
fi
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root to install them"
  export DEBIAN_FRONTEND=noninteractive
  run apt-get update -q
  run apt-get install -y -q --no-install-recommends "${missing[@]}"
  for cmd in ffmpeg ffprobe curl chromium nginx wrk node npm python3 qemu-system-x86_64 busybox; do
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after apt-get install"
  done
fi

# scripts/ktls-vm.sh downloads Debian's linux-image-6.1 package: apt needs its lists.
if [ -z "$(apt-cache depends linux-image-amd64 2>/dev/null | grep 'Depends: linux-image-6\.1\.')" ]; then
  [ "$(id -u)" -eq 0 ] || die "apt knows no linux-image-6.1 package; run as root to apt-get update"
  run apt-get update -q
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "Node.js $(node --version) is too old; playwright-core $playwright_version needs 20 or newer"

mkdir -p "$tools"

# REDbot in its own venv.
venv=$tools/venv
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("redbot"))' 2>/dev/null)" != "$redbot_version" ]; then
  [ -x "$venv/bin/python" ] || run python3 -m venv "$venv"
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check "redbot==$redbot_version"
  [ -x "$venv/bin/redbot" ] || die "redbot did not install into $venv"
fi

# moto's S3 server and botocore, pinned (src/s3/moto_store.rs, src/s3/botocore_kat.rs).
if [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"), m.version("botocore"))' 2>/dev/null)" != "$moto_version $botocore_version" ]; then
  run "$venv/bin/python" -m pip install -q --disable-pip-version-check \
    "moto[server]==$moto_version" "boto3==$botocore_version" "botocore==$botocore_version"
  "$venv/bin/python" -c 'import moto.server, boto3' >>"$log" 2>&1 || die "moto did not install into $venv"
fi

# playwright-core, pinned; it never downloads a browser by itself.
pw=$tools/node_modules/playwright-core/package.json
if [ "$(node -p "require('$pw').version" 2>/dev/null)" != "$playwright_version" ]; then
  [ -f "$tools/package.json" ] || echo '{ "private": true }' >"$tools/package.json"
  (cd "$tools" && run npm install --no-audit --no-fund --loglevel=error "playwright-core@$playwright_version")
  [ -f "$pw" ] || die "playwright-core did not install into $tools"
fi

# cargo-fuzz, pinned, for scripts/fuzz.sh (stable toolchain, RUSTC_BOOTSTRAP=1 for its -Z flags).
cargo_fuzz_version=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]; then
  run cargo install --locked --quiet cargo-fuzz --version "$cargo_fuzz_version"
  [ "$(cargo fuzz --version 2>/dev/null)" = "cargo-fuzz $cargo_fuzz_version" ] || die "cargo-fuzz did not install"
fi
