#!/usr/bin/env bash
# fuzz_smoke (CTest): builds the libFuzzer targets with clang in a separate
# build tree and runs each for a short while on a copy of its seed corpus
# (libFuzzer adds new inputs to the first corpus dir; the committed seeds
# must not grow). Exits non-zero if a target fails to build or finds a crash,
# sanitizer report, leak or oracle mismatch (the targets abort() on those).
# Exits 77 (skipped) when clang is missing.
#
# Env: SR_SOURCE_DIR, SR_FUZZ_BUILD (set by CTest), SR_FUZZ_SECONDS (default 20, per target).
set -u -o pipefail

src=${SR_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
build=${SR_FUZZ_BUILD:-$src/build-fuzz}
secs=${SR_FUZZ_SECONDS:-20}

if ! command -v clang >/dev/null; then
  echo "SKIP: fuzz_smoke: clang not found (libFuzzer needs clang; scripts/deps.sh installs it)" >&2
  exit 77
fi

mkdir -p "$build"
echo "fuzz_smoke: configuring $build"
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DSR_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  >"$build/configure.log" 2>&1 || { cat "$build/configure.log" >&2; exit 1; }
cmake --build "$build" --target fuzz_all -j 2 >"$build/build.log" 2>&1 \
  || { tail -n 60 "$build/build.log" >&2; echo "fuzz_smoke: build failed" >&2; exit 1; }

# UBSan recovers by default: make it fatal so libFuzzer records the input.
# Avro C packs generic record fields unaligned, so pointers inside Avro values
# sit at 4-byte offsets: LeakSanitizer must scan unaligned words or it reports
# live Avro strings as leaks.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-use_unaligned=1}

work=$(mktemp -d "${TMPDIR:-/tmp}/sr-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
status=0
# Every tests/fuzz/fuzz_<name>.c with its seeds in tests/fuzz/corpus_<name>/.
for f in "$src"/tests/fuzz/fuzz_*.c; do
  t=$(basename "$f" .c)
  name=${t#fuzz_}
  mkdir -p "$work/corpus_$name" "$build/artifacts"
  cp "$src/tests/fuzz/corpus_$name/"* "$work/corpus_$name/"
  log="$build/$t.log"
  "$build/$t" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$build/artifacts/$name-" "$work/corpus_$name" >"$log" 2>&1
  rc=$?
  runs=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
  echo "$t: ${runs:-no 'Done' line} (exit $rc, log $log)"
  if [ "$rc" -ne 0 ]; then
    grep -E 'ERROR|SUMMARY|fuzz_|Test unit written|runtime error' "$log" | head -n 20 >&2
    echo "reproduce: $build/$t $build/artifacts/$name-<crash file>" >&2
    status=1
  fi
done
exit $status
