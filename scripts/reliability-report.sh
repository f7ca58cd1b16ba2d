#!/usr/bin/env bash
# Runs the fault-injection suite and writes its figures into
# docs/reliability.md (the table between the reliability markers).
#
#   scripts/reliability-report.sh            # servers, build, suite, table
#   scripts/reliability-report.sh --render   # only rebuild the table from the
#                                            # rows of the last run
#
# The suite is crates/system-tests/tests/faults_system.rs (both binaries as
# processes on Apache Kafka 4.1.1 and the MongoDB-protocol server)
# and faults_bad_input.rs (randomized requests, embedded). Each test writes
# its row to target/reliability/<test>.json; this script renders them. It
# starts its own set of test servers (under target/, so a set already
# running from scripts/test-servers.sh is left alone) and stops it at exit.
# Exits with the test run's status: a failing fault test still gets its row.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${CARGO_TARGET_DIR:-target}/reliability
DOC=docs/reliability.md
status=0

if [ "${1:-}" != "--render" ]; then
  scripts/test-servers.sh install
  export TEST_SERVERS_DIR=$PWD/target/reliability-servers
  scripts/test-servers.sh start
  trap 'scripts/test-servers.sh stop' EXIT
  # shellcheck disable=SC1091
  . "$TEST_SERVERS_DIR/env"
  cargo build --workspace --bins
  cargo test -p system-tests --test faults_system --test faults_bad_input --no-run
  rm -rf "$ROWS"
  mkdir -p "$ROWS"
  started=$(date +%s)
  set +e
  CI=true cargo test -p system-tests --test faults_system --test faults_bad_input 2>&1 \
    | tee "$ROWS/run.log"
  status=${PIPESTATUS[0]}
  set -e
  echo $(($(date +%s) - started)) >"$ROWS/elapsed"
  git rev-parse --short HEAD >"$ROWS/commit" 2>/dev/null || echo unknown >"$ROWS/commit"
  if ! git diff --quiet HEAD 2>/dev/null; then echo "(with uncommitted changes)" >>"$ROWS/commit"; fi
fi

python3 - "$ROWS" "$DOC" <<'PY'
import glob, json, os, re, sys, datetime
rows_dir, doc = sys.argv[1], sys.argv[2]
rows = []
for path in glob.glob(os.path.join(rows_dir, "*.json")):
    with open(path) as f:
        rows.append(json.loads(f.readline()))
if not rows:
    sys.exit(f"no figures in {rows_dir}: run the suite first")
rows.sort(key=lambda r: (r["order"], r["id"]))

def read(name, default=""):
    try:
        with open(os.path.join(rows_dir, name)) as f:
            return f.read().strip()
    except OSError:
        return default

log = read("run.log")
results = re.findall(r"^test (\S+) \.\.\. (ok|FAILED)", log, re.M)
failed = [name for name, outcome in results if outcome == "FAILED"]
passed = len(results) - len(failed)
when = max(r["recorded_at"] for r in rows)[:19].replace("T", " ") + " UTC"

def cell(v):
    return str(v).replace("|", "\\|").replace("\n", " ")

def figure(r, key):
    # Randomized bad input has no "lost" or "duplicated": it checks answers.
    return "–" if r["id"] == "bad_input" and key in ("lost", "duplicated") else r[key]

out = []
out.append(f"Last run: {when}, commit {read('commit', 'unknown').replace(chr(10), ' ')}; "
           f"suite wall time {read('elapsed', '?')} s on this project's 2-core machine; "
           f"{passed} of {len(results)} tests passed"
           + (f" (failed: {', '.join('`' + f + '`' for f in failed)})" if failed else "") + ".")
out.append("")
out.append("| # | fault | how it is injected | in flight | acknowledged | lost | duplicated | also observed |")
out.append("|---|---|---|---:|---:|---:|---:|---|")
for i, r in enumerate(rows, 1):
    out.append("| " + " | ".join([
        str(i), cell(r["fault"]), cell(r["injection"]), cell(r["in_flight"]),
        cell(r["acknowledged"]), cell(figure(r, "lost")), cell(figure(r, "duplicated")),
        cell(r["notes"]),
    ]) + " |")
table = "\n".join(out)

begin, end = "<!-- reliability-figures:begin -->", "<!-- reliability-figures:end -->"
with open(doc) as f:
    text = f.read()
if begin not in text or end not in text:
    sys.exit(f"{doc} lacks the markers {begin} / {end}")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
with open(doc, "w") as f:
    f.write(head + begin + "\n" + table + "\n" + end + tail)
print(f"reliability-report: {len(rows)} rows written to {doc}", file=sys.stderr)
PY

exit "$status"
