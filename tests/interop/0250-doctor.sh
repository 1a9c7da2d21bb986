#!/usr/bin/env bash
# 0250: `streamrec doctor` and the OpenBLAS core choice as a user meets them.
#  1. doctor --json: every field is there and the facts agree with each other
#     and with the host (affinity, pkg-config's avro-c, the version); the
#     probe ran; OpenBLAS runs the best core (streamrec fixed it if needed).
#  2. SR_BLAS_TEST_DETECTED=Prescott (test-only hook: "pretend OpenBLAS chose
#     Prescott"): the process re-executes itself with OPENBLAS_CORETYPE set to
#     the best core, reports source "reexec", and logs the decision once.
#  3. OPENBLAS_CORETYPE set by the user is never overridden (core Haswell,
#     source user), with a warning and its fix when it is weaker.
#  4. loop guard: a re-executed process whose request was not honoured warns
#     and carries on (no second exec).
#  5. text output, --help, usage errors.
#  6. only the dense-math commands re-execute (train, eval: yes; gen: no),
#     and their output survives the exec.
#  7. /metrics of serve carries the same facts (streamrec_build_info).
# With SR_TEST_BOOTSTRAP set (tests/interop/lib.sh) the serve of 7 runs on
# that real Kafka, in topics of this run's own, not on its embedded broker.
#
# env: SR_BIN (the streamrec binary), SR_TEST_TMP (scratch directory),
# SR_TEST_BOOTSTRAP (optional: a real cluster).
set -euo pipefail

SR_BIN=${SR_BIN:?set SR_BIN to the streamrec binary}
TMP="${SR_TEST_TMP:-/tmp}/0250.$$"
mkdir -p "$TMP"
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SPID=""
FAILS=0

cleanup() {
  if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
    kill -KILL "$SPID" 2>/dev/null || true
    wait "$SPID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok   $*"; }
command -v python3 >/dev/null || { echo "SKIP: python3 not installed (needed to read JSON)"; exit 77; }

# Every run starts from a clean BLAS environment (the caller's shell may set
# OPENBLAS_CORETYPE, as `make test`'s matrix does).
doctor() { env -u OPENBLAS_CORETYPE -u SR_BLAS_TEST_DETECTED -u SR_BLAS_REEXEC "$@"; }
blas_lines() { grep -c ' blas: ' "$1" || true; }

# jq-like helper: py FILE EXPR prints the Python expression over d = the JSON.
py() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# ---- 1. the report
set +e
doctor "$SR_BIN" doctor --json >"$TMP/a.json" 2>"$TMP/a.err"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then ok "doctor --json exits 0"; else fail "doctor --json: exit $rc"; cat "$TMP/a.err" >&2; exit 1; fi
VERSION=$("$SR_BIN" --version | awk '{print $2}')
AVRO_PC=$(pkg-config --modversion avro-c 2>/dev/null || echo "")
if python3 - "$TMP/a.json" "$VERSION" "$AVRO_PC" <<'EOF'; then ok "doctor --json: fields present and consistent"; else fail "doctor --json checks"; cat "$TMP/a.json" >&2; fi
import json, os, re, sys
d = json.load(open(sys.argv[1]))
version, avro_pc = sys.argv[2], sys.argv[3]
errs = []
def need(cond, what):
    if not cond:
        errs.append(what)
shape = {
    "cpu": ["vendor", "model_name", "family", "model", "stepping", "features", "xcr0", "os_avx", "os_avx512"],
    "cpus": ["online", "affinity", "cgroup_quota", "usable"],
    "openblas": ["config", "dynamic_arch", "core", "core_best", "core_best_cpu", "core_source",
                 "core_before", "coretype_env", "reexec_failed", "suboptimal", "cores_known",
                 "cores_runnable", "threads", "num_threads_env"],
    "libraries": ["librdkafka", "avro_c", "jansson"],
    "probe": ["status", "reason"],
}
for k, fields in shape.items():
    need(k in d, "missing " + k)
    for f in fields:
        need(f in d.get(k, {}), "missing %s.%s" % (k, f))
need(isinstance(d.get("warnings"), list), "warnings is not a list")
need(isinstance(d.get("environment"), dict), "environment is not an object")
if errs:
    print("\n".join(errs)); sys.exit(1)
need(d["streamrec"] == version, "streamrec %s != --version %s" % (d["streamrec"], version))
c, ob, cp, pr = d["cpu"], d["openblas"], d["cpus"], d["probe"]
f = set(c["features"])
need(ob["core_source"] in ("detected", "reexec"), "source %s without OPENBLAS_CORETYPE" % ob["core_source"])
need(ob["coretype_env"] is None or ob["core_source"] == "reexec", "coretype_env without a user value")
need(ob["dynamic_arch"] == ("DYNAMIC_ARCH" in ob["config"]), "dynamic_arch vs config")
need(ob["threads"] >= 1, "threads")
need(1 <= cp["usable"] <= cp["online"], "usable CPUs %s of %s" % (cp["usable"], cp["online"]))
need(cp["affinity"] == len(os.sched_getaffinity(0)), "affinity %s != %d" % (cp["affinity"], len(os.sched_getaffinity(0))))
known, run = ob["cores_known"], ob["cores_runnable"]
need(set(run) <= set(known), "runnable not a subset of known")
if ob["dynamic_arch"] and known:
    need(ob["core"] in known, "core %s not known" % ob["core"])
    need(ob["core"] in ob["config"], "core not in openblas_get_config()")
    need(ob["core_best"] in run, "best %s not runnable" % ob["core_best"])
    need(not ob["suboptimal"], "suboptimal core %s (best %s)" % (ob["core"], ob["core_best"]))
    skx = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= f
    need(("SkylakeX" in run) == (skx and "SkylakeX" in known), "SkylakeX runnable vs features")
    need(("Cooperlake" in run) == (skx and "avx512_bf16" in f and "Cooperlake" in known), "Cooperlake vs features")
    need(("Haswell" in run) == ({"avx2", "fma"} <= f and "Haswell" in known), "Haswell vs features")
if c["os_avx512"]:
    need(c["os_avx"], "os_avx512 without os_avx")
if not c["os_avx"]:
    need(not ({"avx", "avx2", "fma", "avx512f"} & f), "AVX features without OS AVX state")
for k in ("librdkafka", "jansson"):
    need(re.match(r"^\d+\.\d+(\.\d+)?", d["libraries"][k]), "%s version %r" % (k, d["libraries"][k]))
if avro_pc:
    need(d["libraries"]["avro_c"] == avro_pc, "avro_c %s != pkg-config %s" % (d["libraries"]["avro_c"], avro_pc))
need(pr["status"] == "ok", "probe %s: %s" % (pr["status"], pr["reason"]))
if pr["status"] == "ok":
    need((pr["m"], pr["n"], pr["k"], pr["ref_n"], pr["threads"]) == (64, 10000, 64, 1024, 1), "probe shape")
    need(pr["score_gflops"] > 0 and pr["ref_gflops"] > 0, "probe rates")
    need(abs(pr["ratio"] - pr["score_gflops"] / pr["ref_gflops"]) < 0.02, "probe ratio")
    need(pr["max_rel_err"] < 1e-4, "probe error %g" % pr["max_rel_err"])
ids = [w.get("id") for w in d["warnings"]]
need(len(ids) == len(set(ids)), "duplicate warnings")
for w in d["warnings"]:
    need(w.get("id") and w.get("message") and w.get("fix"), "incomplete warning %r" % w)
need(not any(i.startswith("core") for i in ids), "core warning without a user value: %r" % ids)
if errs:
    print("\n".join(errs)); sys.exit(1)
EOF
n=$(blas_lines "$TMP/a.err")
if [ "$n" -eq 1 ]; then ok "the decision is logged once"; else fail "$n blas log lines:"; cat "$TMP/a.err" >&2; fi
CORE=$(py "$TMP/a.json" 'd["openblas"]["core"]')
BEST=$(py "$TMP/a.json" 'd["openblas"]["core_best"]')
DYN=$(py "$TMP/a.json" 'd["openblas"]["dynamic_arch"]')
RUNNABLE=$(py "$TMP/a.json" '" ".join(d["openblas"]["cores_runnable"])')
echo "     this host: core $CORE, best $BEST, runnable: $RUNNABLE; probe $(py "$TMP/a.json" 'd["probe"].get("score_gflops")') GFLOP/s at the scoring shape, $(py "$TMP/a.json" 'd["probe"].get("ref_gflops")') at 1024^3"

# rank of a core in the ladder the re-exec uses (0: SSE level)
above_sse() { case "$1" in Sandybridge | Haswell | Zen | SkylakeX | Cooperlake) return 0 ;; *) return 1 ;; esac; }
above_avx2() { case "$1" in SkylakeX | Cooperlake) return 0 ;; *) return 1 ;; esac; }

# ---- 2. the re-exec path, through the test-only hook
if [ "$DYN" = True ] && above_sse "$BEST"; then
  doctor SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" doctor --json --no-probe >"$TMP/r.json" 2>"$TMP/r.err" \
    || fail "doctor with the hook: exit $?"
  got=$(py "$TMP/r.json" '"%s %s %s %s" % (d["openblas"]["core"], d["openblas"]["core_source"], d["openblas"]["core_before"], d["openblas"]["coretype_env"])')
  if [ "$got" = "$BEST reexec Prescott $BEST" ]; then ok "pretending OpenBLAS chose Prescott: re-executed, runs $BEST"; else fail "hook: got '$got', want '$BEST reexec Prescott $BEST'"; fi
  [ "$(py "$TMP/r.json" '[w["id"] for w in d["warnings"] if w["id"].startswith("core")]')" = "[]" ] \
    && ok "no core warning after a successful re-exec" || fail "core warnings after re-exec: $(py "$TMP/r.json" 'd["warnings"]')"
  [ "$(py "$TMP/r.json" '"OPENBLAS_CORETYPE" in d["environment"]')" = False ] \
    && ok "the re-executed process removed its OPENBLAS_CORETYPE (children decide for themselves)" \
    || fail "OPENBLAS_CORETYPE left in the environment: $(py "$TMP/r.json" 'd["environment"]')"
  n=$(blas_lines "$TMP/r.err")
  if [ "$n" -eq 1 ] && grep -q "blas: OpenBLAS core $BEST: re-executed with OPENBLAS_CORETYPE=$BEST because OpenBLAS had chosen Prescott" "$TMP/r.err"; then
    ok "re-exec logged once"
  else
    fail "re-exec log ($n lines):"; cat "$TMP/r.err" >&2
  fi
else
  echo "SKIP re-exec checks: best core '$BEST' is not above Prescott's level or no DYNAMIC_ARCH"
fi

# ---- 3. a user's OPENBLAS_CORETYPE is kept
if [[ " $RUNNABLE " == *" Haswell "* ]]; then
  doctor OPENBLAS_CORETYPE=Haswell SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" doctor --json --no-probe \
    >"$TMP/u.json" 2>"$TMP/u.err" || fail "doctor with OPENBLAS_CORETYPE=Haswell: exit $?"
  got=$(py "$TMP/u.json" '"%s %s %s" % (d["openblas"]["core"], d["openblas"]["core_source"], d["openblas"]["coretype_env"])')
  if [ "$got" = "Haswell user Haswell" ]; then ok "OPENBLAS_CORETYPE=Haswell kept (source user)"; else fail "user value: got '$got'"; fi
  if above_avx2 "$BEST"; then
    fix=$(py "$TMP/u.json" '[w["fix"] for w in d["warnings"] if w["id"] == "core_weak"]')
    if [[ "$fix" == *"OPENBLAS_CORETYPE=$BEST"* && "$fix" == *"unset OPENBLAS_CORETYPE"* ]]; then
      ok "weaker user value: core_weak warning, fix: $fix"
    else
      fail "no core_weak warning with a fix to $BEST: $(py "$TMP/u.json" 'd["warnings"]')"
    fi
    [ "$(py "$TMP/u.json" 'd["openblas"]["suboptimal"]')" = True ] || fail "suboptimal not set"
    grep -q "WARN  blas: OPENBLAS_CORETYPE=Haswell" "$TMP/u.err" && ok "and logged as a warning" \
      || { fail "no WARN log line:"; cat "$TMP/u.err" >&2; }
  else
    [ "$(py "$TMP/u.json" '[w["id"] for w in d["warnings"] if w["id"].startswith("core")]')" = "[]" ] \
      || fail "core warning for Haswell although best is $BEST"
  fi
else
  echo "SKIP user-value checks: this CPU cannot run Haswell kernels"
fi

# ---- 4. the loop guard: the request was not honoured after the exec
set +e
doctor SR_BLAS_REEXEC=Prescott OPENBLAS_CORETYPE=NoSuchCore timeout 30 "$SR_BIN" doctor --json --no-probe \
  >"$TMP/g.json" 2>"$TMP/g.err"
rc=$?
set -e
if [ "$rc" -eq 0 ]; then ok "re-executed process with an unhonoured request carries on (exit 0)"; else fail "loop guard: exit $rc"; fi
got=$(py "$TMP/g.json" '"%s %s" % (d["openblas"]["core_source"], [w["id"] for w in d["warnings"] if w["id"] == "core_mismatch"])')
if [ "$got" = "reexec ['core_mismatch']" ]; then ok "loop guard: core_mismatch warning"; else fail "loop guard: got '$got'"; fi
if [ "$(blas_lines "$TMP/g.err")" -eq 1 ] && grep -q "WARN  blas: streamrec re-executed with OPENBLAS_CORETYPE=NoSuchCore" "$TMP/g.err"; then
  ok "loop guard: one WARN line"
else
  fail "loop guard log:"; cat "$TMP/g.err" >&2
fi

# ---- 5. text, help, usage
doctor "$SR_BIN" doctor --no-probe >"$TMP/t.out" 2>/dev/null || fail "doctor (text): exit $?"
if grep -q "^  core          $CORE " "$TMP/t.out" && grep -q "^OpenBLAS$" "$TMP/t.out" && grep -q "^  librdkafka " "$TMP/t.out" \
  && grep -q "^Warnings" "$TMP/t.out"; then
  ok "text report"
else
  fail "text report:"; cat "$TMP/t.out" >&2
fi
"$SR_BIN" doctor --help | grep -q "^usage: streamrec doctor" && ok "doctor --help" || fail "doctor --help"
set +e
"$SR_BIN" doctor --bogus >/dev/null 2>&1
rc1=$?
"$SR_BIN" doctor --probe-seconds 0 >/dev/null 2>&1
rc2=$?
set -e
if [ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ]; then ok "usage errors exit 2"; else fail "usage errors: exit $rc1, $rc2"; fi

# ---- 6. who re-executes: the dense-math commands only
doctor SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" gen --users 30 --items 50 --events 400 --seed 5 \
  --out "$TMP/ev.csv" 2>"$TMP/gen.err" || fail "gen: exit $?"
[ "$(blas_lines "$TMP/gen.err")" -eq 0 ] && ok "gen does not touch the BLAS core" || fail "gen logged a blas line"
if [ "$DYN" = True ] && above_sse "$BEST"; then
  doctor SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" train --events "$TMP/ev.csv" --out "$TMP/m.snap" --dim 8 \
    --epochs 1 --no-progress >"$TMP/train.out" 2>"$TMP/train.err" || { fail "train: exit $?"; cat "$TMP/train.err" >&2; }
  if [ "$(blas_lines "$TMP/train.err")" -eq 1 ] && grep -q "re-executed with OPENBLAS_CORETYPE=$BEST" "$TMP/train.err" \
    && [ -s "$TMP/m.snap" ]; then
    ok "train re-executed once and wrote its snapshot"
  else
    fail "train:"; cat "$TMP/train.err" >&2
  fi
  doctor SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" eval --snapshot "$TMP/m.snap" --events "$TMP/ev.csv" --json \
    >"$TMP/eval.json" 2>"$TMP/eval.err" || fail "eval: exit $?"
  if python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$TMP/eval.json" && grep -q "re-executed" "$TMP/eval.err"; then
    ok "eval --json re-executed and its JSON is intact"
  else
    fail "eval after re-exec:"; cat "$TMP/eval.err" >&2
  fi
else
  doctor "$SR_BIN" train --events "$TMP/ev.csv" --out "$TMP/m.snap" --dim 8 --epochs 1 --no-progress \
    >/dev/null 2>&1 || fail "train: exit $?"
fi

# ---- 7. /metrics carries the same facts
http_get() { python3 -c 'import sys,urllib.request
r=urllib.request.urlopen(sys.argv[1],timeout=5); print(r.read().decode())' "$1"; }
if [ "$DYN" = True ] && above_sse "$BEST"; then WANT_SRC=reexec; else WANT_SRC=$(py "$TMP/a.json" 'd["openblas"]["core_source"]'); fi
sr_serve_cluster 4 || exit 1
doctor SR_BLAS_TEST_DETECTED=Prescott "$SR_BIN" serve "${SR_SERVE_ARGS[@]}" --snapshot "$TMP/m.snap" --admin-port -1 \
  >"$TMP/serve.out" 2>"$TMP/serve.log" &
SPID=$!
PORT=""
for _ in $(seq 100); do
  PORT=$(sed -n 's|.*admin HTTP on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$TMP/serve.log")
  [ -n "$PORT" ] && break
  sleep 0.1
done
if [ -z "$PORT" ]; then
  fail "serve: no admin port"; cat "$TMP/serve.log" >&2
else
  http_get "http://127.0.0.1:$PORT/metrics" >"$TMP/metrics.txt" || fail "GET /metrics"
  line=$(grep '^streamrec_build_info{' "$TMP/metrics.txt" || true)
  want="openblas_core=\"$BEST\",openblas_core_best=\"$BEST\",openblas_core_source=\"$WANT_SRC\",openblas_threads=\"1\""
  if [[ "$line" == *"version=\"$VERSION\""* && "$line" == *"$want"* && "$line" == *"avro_c=\"$(py "$TMP/a.json" 'd["libraries"]["avro_c"]')\""* \
    && "$line" == *"librdkafka=\"$(py "$TMP/a.json" 'd["libraries"]["librdkafka"]')\""* && "$line" == *'} 1' ]]; then
    ok "/metrics: $line"
  else
    fail "/metrics build_info: '$line', want $want"
  fi
  grep -q '^streamrec_blas_core_suboptimal 0$' "$TMP/metrics.txt" && ok "/metrics: streamrec_blas_core_suboptimal 0" \
    || fail "suboptimal gauge: $(grep suboptimal "$TMP/metrics.txt")"
fi
kill -TERM "$SPID" 2>/dev/null || true
wait "$SPID" 2>/dev/null || true
SPID=""

if [ "$FAILS" -ne 0 ]; then
  echo "0250-doctor: $FAILS check(s) failed" >&2
  exit 1
fi
echo "0250-doctor: all checks passed"
