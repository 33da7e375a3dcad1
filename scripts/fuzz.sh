#!/usr/bin/env bash
# Runs every cargo-fuzz target (`cargo fuzz list`: the request, range, conditional and
# configuration parsers and any target added later) for SECONDS each, on the stable toolchain
# (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags: sanitizer-coverage and AddressSanitizer).
#   scripts/fuzz.sh SECONDS_PER_TARGET [TARGET...]
# Each target starts from its corpus kept in the repository, fuzz/corpus/TARGET (read only);
# what the run finds goes to target/fuzz/corpus/TARGET. A crash, a failed assertion, a leak,
# a timeout or running out of memory fails the script (exit 1) with the path of the input that
# caused it under target/fuzz/artifacts/TARGET/; `cargo fuzz fmt TARGET FILE` shows it, and
# `RUSTC_BOOTSTRAP=1 cargo fuzz run TARGET FILE` replays it.
#   FUZZ_UPDATE_CORPUS=1 scripts/fuzz.sh SECONDS   also merges what was found into
#   fuzz/corpus/TARGET, keeping only inputs that add coverage (libFuzzer -merge=1).
# Needs cargo-fuzz (scripts/install-test-deps.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
seconds=$1
shift
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz missing (scripts/install-test-deps.sh)" >&2; exit 1; }
export RUSTC_BOOTSTRAP=1
work=$PWD/target/fuzz

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz: no targets" >&2; exit 1; }

# Optimised builds (debug assertions stay on): all targets in one cargo run, or those named.
if [ $# -gt 0 ]; then
  for t in "${targets[@]}"; do cargo fuzz build -O "$t"; done
else
  cargo fuzz build -O
fi

failed=()
for t in "${targets[@]}"; do
  seeds=fuzz/corpus/$t
  found=$work/corpus/$t
  artifacts=$work/artifacts/$t
  mkdir -p "$seeds" "$found" "$artifacts"
  log=$work/$t.log
  echo "== fuzz $t: ${seconds}s, seeds $seeds ($(find "$seeds" -type f | wc -l) inputs)"
  # -timeout: one input taking longer than this is a hang; -rss_limit_mb bounds memory;
  # -max_len keeps inputs (and so the corpus) small: heads and files longer than this add
  # nothing a parser has not seen.
  if cargo fuzz run -O "$t" "$found" "$seeds" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 >"$log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done ' "$log" | sed 's/^/   /' || true
  else
    echo "fuzz: $t FAILED; last lines of $log:" >&2
    tail -n 40 "$log" >&2
    crash=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -n 1 | sed 's/Test unit written to //')
    echo "fuzz: $t: crashing input: ${crash:-(none written; see $log)}" >&2
    failed+=("$t")
    continue
  fi
  if [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
    # Into the kept corpus, in place: its named inputs stay, and of what was found only the
    # inputs that add coverage to them are added.
    cargo fuzz run -O "$t" "$seeds" "$found" -- -merge=1 -max_len=4096 >"$work/$t.merge.log" 2>&1
    echo "   corpus $seeds: $(find "$seeds" -type f | wc -l) inputs, $(du -sb "$seeds" | cut -f1) bytes"
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: FAIL: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds}s each: no crash"
