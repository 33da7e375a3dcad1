#!/usr/bin/env bash
# Every test of ringcast, in one command: installs what the tests need (Debian packages, REDbot,
# playwright-core; see scripts/install-test-deps.sh), then runs the unit, property and
# integration tests of the whole workspace (the server's on both the io_uring and the epoll
# driver), then the real-client checks on the demo (curl, ffprobe/ffmpeg, REDbot, Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace
# `cargo test` built target/debug/ringcast for the integration tests; the checks reuse it.
scripts/real-clients.sh target/debug/ringcast
