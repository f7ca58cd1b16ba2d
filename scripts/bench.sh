#!/usr/bin/env bash
# Benchmarks the booking system with booking-load (crates/load-generator):
#   1. the embedded mode (both services in one process, in-memory adapters);
#   2. both release binaries on fresh real test servers (Apache Kafka 4.1.1 +
#      SecantusDB),
#      with the production settings;
#   3. the same with the MongoDB driver's retryable writes off (see below).
# Prints the figures and keeps them in target/bench/. Not a test: nothing is
# asserted about speed. Extra arguments go to booking-load in every run, e.g.
#   scripts/bench.sh --clients 32 --bookings 10000 --rate 100 --flow-bookings 1000
# BENCH_STACKS picks some of "embedded real real-noretry" (default: all three);
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

stacks=" ${BENCH_STACKS:-embedded real real-noretry} "
# The load generator signs up every client from this one address, more than
# the production limit per address allows.
SIGNUPS=1000000

if [[ $stacks == *" embedded "* ]]; then
echo "== embedded mode ($machine)"
tp=$(free_port); op=$(free_port)
TRAVELER_PORT=$tp OWNER_PORT=$op RUST_LOG=warn SIGNUP_LIMIT_PER_ADDRESS=$SIGNUPS "$BIN/booking-embedded" >"$OUT/embedded.log" 2>&1 &
embedded=$!; pids+=("$embedded")
wait_ready "http://127.0.0.1:$tp/health"; wait_ready "http://127.0.0.1:$op/health"
"$BIN/booking-load" --label "embedded mode, $(date -u +%F)" \
  --traveler "http://127.0.0.1:$tp" --owner "http://127.0.0.1:$op" \
  --pid "booking-embedded=$embedded" "$@" | tee "$OUT/embedded.txt"
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
  "$BIN/booking-load" --label "$label, $(date -u +%F)" \
    --traveler "http://127.0.0.1:$tp" --owner "http://127.0.0.1:$op" \
    --pid "traveler-service=$traveler" --pid "owner-service=$owner" \
    --mongodb-uri "$TEST_MONGODB_URI" "${load_args[@]}" | tee "$OUT/$name.txt"
  kill "$owner" "$traveler"; wait "$owner" "$traveler" 2>/dev/null || true
  scripts/test-servers.sh stop >/dev/null 2>&1
}
load_args=("$@")

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
