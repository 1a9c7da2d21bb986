#!/usr/bin/env bash
# The unit tests under every OpenBLAS core this host can run (`make test`
# runs it after the release ctest). Floating point differs between OpenBLAS
# kernels (docs/CONVENTIONS: no BLAS promises bit-identical results), so a
# tolerance or a tie rule that holds for one core may not hold for another:
# this runs `ctest -L unit` once per core with OPENBLAS_CORETYPE set, and once
# with OpenBLAS's own choice ("default", OPENBLAS_CORETYPE removed).
#
# Cores this CPU cannot run (a SkylakeX kernel on a CPU or OS without
# AVX-512 would die of SIGILL) are skipped with a note. What it can run comes
# from `streamrec doctor --json` (cpuid, the OS state in XCR0 and the kernel
# tables the loaded OpenBLAS has), else from /proc/cpuinfo flags.
#
# Prints one line per core; the full ctest output only when a core fails
# (it is kept in BUILD/Testing/blas-matrix-CORE.log).
#
# usage: scripts/blas_matrix.sh [BUILD_DIR]
# env:   BLAS_MATRIX_CORES (default: default Prescott Sandybridge Haswell Zen
#        SkylakeX Cooperlake), JOBS (ctest -j, default 2)
set -uo pipefail

B=${1:-build}
BIN="$B/streamrec"
CORES=${BLAS_MATRIX_CORES:-default Prescott Sandybridge Haswell Zen SkylakeX Cooperlake}
J=${JOBS:-2}
[ -x "$BIN" ] || { echo "blas-matrix: $BIN not built" >&2; exit 2; }

# doctor --json without any inherited BLAS choice
doctor_json() { env -u OPENBLAS_CORETYPE -u SR_BLAS_TEST_DETECTED -u SR_BLAS_REEXEC "$@" "$BIN" doctor --json --no-probe 2>/dev/null; }
json_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1" 2>/dev/null; }

RUNNABLE=$(doctor_json | json_get '" ".join(d["openblas"]["cores_runnable"])')
FROM="streamrec doctor"
if [ -z "$RUNNABLE" ]; then
  FROM="/proc/cpuinfo"
  flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
  RUNNABLE=""
  has pni && RUNNABLE+=" Prescott"
  has pni avx && RUNNABLE+=" Sandybridge"
  has pni avx avx2 fma && RUNNABLE+=" Haswell Zen"
  has pni avx2 fma avx512f avx512bw avx512vl avx512dq && RUNNABLE+=" SkylakeX"
  has pni avx2 fma avx512f avx512bw avx512vl avx512dq avx512_bf16 && RUNNABLE+=" Cooperlake"
fi
RUNNABLE=$(echo $RUNNABLE) # one space between names
echo "blas-matrix: unit tests per OpenBLAS core; runnable here (from $FROM): ${RUNNABLE:-none known}"

ran=0 skipped=0 failed=0
for c in $CORES; do
  if [ "$c" = default ]; then
    run=(env -u OPENBLAS_CORETYPE)
  elif [[ " $RUNNABLE " != *" $c "* ]]; then
    echo "blas-matrix core=$c: skipped (this CPU or this OpenBLAS cannot run $c kernels)"
    skipped=$((skipped + 1))
    continue
  else
    run=(env OPENBLAS_CORETYPE="$c")
  fi
  got=$("${run[@]}" "$BIN" doctor --json --no-probe 2>/dev/null | json_get 'd["openblas"]["core"]')
  log="$B/Testing/blas-matrix-$c.log"
  mkdir -p "$B/Testing"
  t0=$(date +%s%N)
  (cd "$B" && "${run[@]}" ctest -L unit --output-on-failure -j "$J") >"$log" 2>&1
  rc=$?
  secs=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $t0) / 1e9 }")
  # ctest: "100% tests passed, 0 tests failed out of 15"
  total=$(sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
  nfail=$(sed -n 's/.*tests passed, \([0-9]*\) tests\{0,1\} failed out of.*/\1/p' "$log" | tail -1)
  # ctest counts a skipped test (exit 77) as passed; it lists it as "(Skipped)"
  nskip=$(grep -c ' (Skipped)$' "$log")
  skipnote=""
  [ "$nskip" -gt 0 ] && skipnote=", $nskip skipped"
  ran=$((ran + 1))
  if [ "$c" != default ] && [ "$got" != "$c" ]; then
    echo "blas-matrix core=$c: FAILED: OpenBLAS runs '${got:-?}' with OPENBLAS_CORETYPE=$c"
    failed=$((failed + 1))
    continue
  fi
  if [ "$rc" -eq 0 ]; then
    echo "blas-matrix core=$c (OpenBLAS runs ${got:-?}): $((${total:-0} - ${nfail:-0} - nskip))/${total:-?} unit tests ok$skipnote in $secs s"
  else
    echo "blas-matrix core=$c (OpenBLAS runs ${got:-?}): FAILED, ${nfail:-?} of ${total:-?} unit tests failed in $secs s; ctest output:"
    sed 's/^/    /' "$log"
    failed=$((failed + 1))
  fi
done
echo "blas-matrix: $ran core(s) run, $skipped skipped, $failed failed"
[ "$failed" -eq 0 ]
