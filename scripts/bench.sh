#!/usr/bin/env bash
# Benchmarks the booking system with booking-load (crates/load-generator):
#   1. the embedded mode (both services in one process, in-memory adapters);
#   2. both release binaries on fresh real test servers (Apache Kafka 4.1.1 +
#      SecantusDB),
#      with the production settings;
#   3. the same with the MongoDB driver's retryable writes off (see below);
#   4. kafka-memory: Apache Kafka 4.1.1 with each service's stores in memory
#      (the embedded runner pointed at the broker): our code and the broker,
#      without the test database.
# For each stack it also measures the database commands per second of the
# idle services (10 s before any load), the flow at increasing offered rates
# until the whole flow's p99 (POST -> owner's stream -> approve -> traveler's
# stream) first exceeds 1 s (the sustained rate is the step before), and
# prints a summary per stack at the end.
# Prints the figures and keeps them in target/bench/. Not a test: nothing is
# asserted about speed. Extra arguments go to booking-load in every main run, e.g.
#   scripts/bench.sh --clients 32 --bookings 10000 --rate 100 --flow-bookings 1000
# BENCH_STACKS picks some of "embedded real real-noretry kafka-memory"
# (default: all four); BENCH_RATES the rates of the search (default
# "100 200 400 800 1600 3200 6400", and "25 50 100 200 400" on the real
# stacks; 5 s of bookings each, the database commands by collection at 100/s);
# BENCH_EXTRA_ENV adds variables to both services on the real stack (e.g.
# MALLOC_ARENA_MAX=2); BENCH_BIN runs the binaries of another build (e.g. a
# worktree of an older commit) instead of target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench
mkdir -p "$OUT"
BIN=${BENCH_BIN:-target/release}
cargo build --release -p embedded-runner -p traveler-service -p owner-service -p load-generator

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_ready() { # url
  for _ in $(seq 300); do curl -sf "$1" >/dev/null && return 0; sleep 0.2; done
  echo "bench: $1 never became ready" >&2; return 1
}
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  TEST_SERVERS_DIR=$PWD/$OUT/servers scripts/test-servers.sh stop >/dev/null 2>&1 || true
}
trap cleanup EXIT
machine="$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"

stacks=" ${BENCH_STACKS:-embedded real real-noretry kafka-memory} "
# The load generator signs up every client from this one address, more than
# the production limit per address allows.
SIGNUPS=1000000
load_args=("$@")

# Sum of mongodb_command_duration_seconds_count over the services' /metrics.
db_commands() { # url...
  local total=0 n
  for u in "$@"; do
    n=$(curl -sf "$u/metrics" | awk '/^mongodb_command_duration_seconds_count/ {s += $NF} END {printf "%d", s}')
    total=$((total + ${n:-0}))
  done
  echo "$total"
}

# Every service's MongoDB command counts by command and collection
# (mongodb_command_duration_seconds_count), one "service command collection
# count" line each.
db_command_counts() { # url...
  local u
  for u in "$@"; do
    curl -sf "$u/metrics" | awk -v svc="${u##*:}" '
      /^mongodb_command_duration_seconds_count/ {
        match($0, /command="[^"]*"/); c = substr($0, RSTART + 9, RLENGTH - 10)
        match($0, /collection="[^"]*"/); k = substr($0, RSTART + 12, RLENGTH - 13)
        print svc, c, (k == "" ? "-" : k), $NF }'
  done
}
# What changed between two db_command_counts snapshots, per booking, the
# largest first: which reads and writes a flow booking costs.
db_command_breakdown() { # before-file after-file bookings label
  python3 - "$@" <<'PY'
import sys
before, after, bookings, label = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
def read(path):
    out = {}
    for line in open(path):
        port, command, collection, n = line.split()
        out[(port, command, collection)] = float(n)
    return out
b, a = read(before), read(after)
rows = sorted(((a[k] - b.get(k, 0)) / bookings, k) for k in a if a[k] - b.get(k, 0) > 0)
rows.reverse()
total = sum(r for r, _ in rows)
print(f"database commands per booking, {label}: {total:.2f} in all, from the services' metrics (port command collection: per booking)")
for r, (port, command, collection) in rows[:12]:
    print(f"  :{port} {command} {collection}: {r:.2f}")
PY
}

# Waits (at most 2 min) until both services' outboxes are empty and
# owner-service has stopped consuming, so that one run's backlog does not
# land on the next step of the search.
settle() { # url...
  local last="" now u still=0
  for _ in $(seq 120); do
    now=""
    for u in "$@"; do
      now+="$(curl -sf "$u/metrics" | awk '/^outbox_pending_events / {p += $NF} /^events_consumed_total/ {c += $NF} END {printf "%d/%d ", p, c}')"
    done
    if [ "$now" = "$last" ] && ! grep -qE '(^| )[1-9][0-9]*/' <<<"$now"; then
      still=$((still + 1))
      # Nothing consumed for 5 s: a batch the database is slow to take
      # has had time to land.
      [ "$still" -ge 5 ] && return 0
    else
      still=0
    fi
    last=$now; sleep 1
  done
}

# The offered rates of the sustained-rate search, unless BENCH_RATES says:
# from 100/s up for the stacks without the test database; from 25/s on the
# real stacks, where SecantusDB (one command at a time) saturates first.
FAST_RATES="100 200 400 800 1600 3200 6400"
REAL_RATES="25 50 100 200 400"

# The measurements every stack gets, against services already running.
#   $1: stack name; $2: label; $3: traveler URL; $4: owner URL; then the
#   booking-load options naming processes and the database.
measure() {
  local name=$1 label=$2 tu=$3 ou=$4; shift 4
  local extra=("$@") before after
  before=$(db_commands "$tu" "$ou"); sleep 10; after=$(db_commands "$tu" "$ou")
  echo "idle: $(python3 -c "print(f'{($after - $before) / 10 / 2:.2f}')") database commands per second per service (10 s, no load, no stream open)" \
    | tee "$OUT/$name-idle.txt"
  "$BIN/booking-load" --label "$label, $(date -u +%F)" --traveler "$tu" --owner "$ou" \
    "${extra[@]}" "${load_args[@]}" | tee "$OUT/$name.txt"
  curl -sf "$ou/metrics" | python3 -c '
import sys, re
count, total = {}, {}
for line in sys.stdin:
    m = re.match(r"consumer_batch_(size|duration_seconds)_(count|sum)[{]topic=.([^,}]*booking-requests).[}] (\S+)", line)
    if m:
        (count if m.group(2) == "count" else total)[m.group(1)] = float(m.group(4))
n = count.get("size", 0)
if n:
    size, took = total["size"] / n, 1000 * total["duration_seconds"] / n
    print(f"owner-service consumer: {n:.0f} batches of booking-requests, mean {size:.1f} events, mean {took:.1f} ms")
' | tee -a "$OUT/$name.txt" || true
  : >"$OUT/$name-rates.txt"
  rm -f "$OUT/$name-commands.txt"
  local rate p99
  local rates=${BENCH_RATES:-$RATES}
  for rate in $rates; do
    settle "$tu" "$ou"
    db_command_counts "$tu" "$ou" >"$OUT/$name-counts-before"
    "$BIN/booking-load" --label "$label, sustained-rate step $rate/s" --traveler "$tu" --owner "$ou" \
      "${extra[@]}" --bookings 0 --flow-bookings $((rate * 5)) --rate "$rate" >"$OUT/$name-rate-$rate.txt" 2>&1 || true
    db_command_counts "$tu" "$ou" >"$OUT/$name-counts-after"
    [ "$rate" = 100 ] && [ -s "$OUT/$name-counts-after" ] &&
      db_command_breakdown "$OUT/$name-counts-before" "$OUT/$name-counts-after" $((rate * 5)) \
        "flow at $rate/s" >"$OUT/$name-commands.txt"
    p99=$(sed -n 's/^whole flow .*p99 \([0-9.]*\) .*/\1/p' "$OUT/$name-rate-$rate.txt")
    echo "offered $rate bookings/s: whole flow p99 ${p99:-none} ms; $(grep '^end state' "$OUT/$name-rate-$rate.txt" | cut -c1-90 || true)" \
      | tee -a "$OUT/$name-rates.txt"
    [ -n "$p99" ] && python3 -c "import sys; sys.exit(0 if float('$p99') <= 1000 else 1)" || break
  done
}

# The lines of one stack's results worth comparing, from its files.
summary() { # name
  local f=$OUT/$1.txt
  echo "-- $1"
  grep -h -E '^idle:' "$OUT/$1-idle.txt" || true
  grep -E '^POST /api/travelers/bookings:|^owner catch-up|^arrival check|^database operations|^propagation|^whole flow|^end state|^owner-service consumer' "$f" | sed 's/^/  /' || true
  grep -E '^POST latency' "$f" | head -1 | sed 's/^/  create phase /' || true
  sed 's/^/  /' "$OUT/$1-rates.txt"
  [ -s "$OUT/$1-commands.txt" ] && sed 's/^/  /' "$OUT/$1-commands.txt"
  awk '/whole flow p99/ { if ($7 != "none" && $7 + 0 <= 1000) ok = $2; else over = $2 }
    END { print "  sustained rate: " (ok ? ok " bookings/s" : "below the first step") \
      (over ? " (whole-flow p99 first over 1 s at " over "/s)" : " (p99 within 1 s at every step tried)") }' "$OUT/$1-rates.txt"
}

if [[ $stacks == *" embedded "* ]]; then
echo "== embedded mode ($machine)"
tp=$(free_port); op=$(free_port)
TRAVELER_PORT=$tp OWNER_PORT=$op RUST_LOG=warn SIGNUP_LIMIT_PER_ADDRESS=$SIGNUPS "$BIN/booking-embedded" >"$OUT/embedded.log" 2>&1 &
embedded=$!; pids+=("$embedded")
wait_ready "http://127.0.0.1:$tp/health"; wait_ready "http://127.0.0.1:$op/health"
RATES=$FAST_RATES measure embedded "embedded mode" "http://127.0.0.1:$tp" "http://127.0.0.1:$op" --pid "booking-embedded=$embedded"
kill "$embedded"; wait "$embedded" 2>/dev/null || true
fi

# One run against both release binaries on fresh private test servers.
#   $1: stack name (output in $OUT/$1.txt); $2: options appended to the
#   services' MONGODB_URI; $3: label.
run_real() {
  local name=$1 uri_options=$2 label=$3
  echo; echo "== $label ($machine)"
  export TEST_SERVERS_DIR=$PWD/$OUT/servers
  scripts/test-servers.sh start
  # shellcheck disable=SC1091
  . "$TEST_SERVERS_DIR/env"
  local run tp op owner traveler
  run=bench$(date +%s)
  local common=(MONGODB_URI="$TEST_MONGODB_URI$uri_options" KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
    JWT_SECRET=bench-secret-0123456789abcdef0123456789 RUST_LOG=warn LOG_FORMAT=json
    SIGNUP_LIMIT_PER_ADDRESS=$SIGNUPS
    KAFKA_SESSION_TIMEOUT_MS=6000 ${BENCH_EXTRA_ENV:-})
  tp=$(free_port); op=$(free_port)
  env "${common[@]}" PORT="$op" MONGODB_DATABASE="${run}_owner" KAFKA_GROUP_ID="owner-$run" \
    KAFKA_REQUEST_TOPIC="$run.booking-requests" KAFKA_RESPONSE_TOPIC="$run.booking-updates" \
    KAFKA_PROPERTY_TOPIC="$run.property-listings" "$BIN/owner-service" >"$OUT/$name-owner.log" 2>&1 &
  owner=$!; pids+=("$owner")
  env "${common[@]}" PORT="$tp" MONGODB_DATABASE="${run}_traveler" KAFKA_GROUP_ID="traveler-$run" \
    KAFKA_REQUEST_TOPIC="$run.booking-requests" KAFKA_RESPONSE_TOPIC="$run.booking-updates" \
    KAFKA_PROPERTY_TOPIC="$run.property-listings" "$BIN/traveler-service" >"$OUT/$name-traveler.log" 2>&1 &
  traveler=$!; pids+=("$traveler")
  wait_ready "http://127.0.0.1:$tp/health/ready"; wait_ready "http://127.0.0.1:$op/health/ready"
  RATES=$REAL_RATES measure "$name" "$label" "http://127.0.0.1:$tp" "http://127.0.0.1:$op" \
    --pid "traveler-service=$traveler" --pid "owner-service=$owner" --mongodb-uri "$TEST_MONGODB_URI"
  kill "$owner" "$traveler"; wait "$owner" "$traveler" 2>/dev/null || true
  scripts/test-servers.sh stop >/dev/null 2>&1
}

# Production settings: the MongoDB driver's retryable writes are on.
if [[ $stacks == *" real "* ]]; then
  run_real real "" "real stack (Apache Kafka 4.1.1 + SecantusDB)"
fi
# The same with retryable writes off. SecantusDB keeps a record of every
# retryable write in a Python dict that it scans on each write and, past
# 10,000 records, sorts on each write (0.3 ms per insert without, 0.7 ms
# at 10,000 records, 3.9 ms beyond: scripts/db-costs.py); a real mongod
# keeps one record per session. This run shows the system without that
# cost of the test server.
if [[ $stacks == *" real-noretry "* ]]; then
  run_real real-noretry "&retryWrites=false" "real stack, retryable writes off (Apache Kafka 4.1.1 + SecantusDB)"
fi

# Apache Kafka with in-memory stores: the embedded runner on the broker,
# with the production producer and consumer settings.
if [[ $stacks == *" kafka-memory "* ]]; then
  echo; echo "== kafka-memory: Apache Kafka 4.1.1, each service's stores in memory ($machine)"
  export TEST_SERVERS_DIR=$PWD/$OUT/servers
  scripts/test-servers.sh start
  # shellcheck disable=SC1091
  . "$TEST_SERVERS_DIR/env"
  tp=$(free_port); op=$(free_port)
  KAFKA_BROKERS=$TEST_KAFKA_BROKERS TRAVELER_PORT=$tp OWNER_PORT=$op RUST_LOG=warn LOG_FORMAT=json \
    SIGNUP_LIMIT_PER_ADDRESS=$SIGNUPS ${BENCH_EXTRA_ENV:-} "$BIN/booking-embedded" >"$OUT/kafka-memory.log" 2>&1 &
  embedded=$!; pids+=("$embedded")
  wait_ready "http://127.0.0.1:$tp/health/ready"; wait_ready "http://127.0.0.1:$op/health/ready"
  RATES=$FAST_RATES measure kafka-memory "kafka-memory (Apache Kafka 4.1.1, in-memory stores)" "http://127.0.0.1:$tp" "http://127.0.0.1:$op" \
    --pid "booking-embedded=$embedded"
  kill "$embedded"; wait "$embedded" 2>/dev/null || true
  scripts/test-servers.sh stop >/dev/null 2>&1
fi

echo; echo "== summary ($machine, $(date -u +%F))"
for s in embedded real real-noretry kafka-memory; do
  [[ $stacks == *" $s "* ]] && summary "$s"
done | tee "$OUT/summary.txt"
