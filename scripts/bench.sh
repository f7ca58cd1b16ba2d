#!/usr/bin/env bash
# Benchmarks the booking system with booking-load (crates/load-generator):
#   1. the embedded mode (both services in one process, in-memory adapters);
#   2. both release binaries on the real test servers (tansu + SecantusDB).
# Prints the figures and keeps them in target/bench/. Not a test: nothing is
# asserted about speed. Extra arguments go to booking-load in both runs, e.g.
#   scripts/bench.sh --clients 32 --bookings 10000 --rate 100 --flow-bookings 1000
# BENCH_STACKS=real (or embedded) runs one of the two; BENCH_EXTRA_ENV adds
# variables to both services on the real stack (e.g. MALLOC_ARENA_MAX=2).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=target/bench
mkdir -p "$OUT"
BIN=target/release
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

stacks=" ${BENCH_STACKS:-embedded real} "

if [[ $stacks == *" embedded "* ]]; then
echo "== embedded mode ($machine)"
tp=$(free_port); op=$(free_port)
TRAVELER_PORT=$tp OWNER_PORT=$op RUST_LOG=warn "$BIN/booking-embedded" >"$OUT/embedded.log" 2>&1 &
embedded=$!; pids+=("$embedded")
wait_ready "http://127.0.0.1:$tp/health"; wait_ready "http://127.0.0.1:$op/health"
"$BIN/booking-load" --label "embedded mode, $(date -u +%F)" \
  --traveler "http://127.0.0.1:$tp" --owner "http://127.0.0.1:$op" \
  --pid "booking-embedded=$embedded" "$@" | tee "$OUT/embedded.txt"
kill "$embedded"; wait "$embedded" 2>/dev/null || true
fi

[[ $stacks == *" real "* ]] || exit 0

echo; echo "== real stack: tansu + SecantusDB ($machine)"
export TEST_SERVERS_DIR=$PWD/$OUT/servers
# The broker keeps messages in memory here: durability across broker
# restarts is what the fault tests check, not what this measures.
KAFKA_STORAGE=memory scripts/test-servers.sh start
# shellcheck disable=SC1091
. "$TEST_SERVERS_DIR/env"
run=bench$(date +%s)
common=(MONGODB_URI="$TEST_MONGODB_URI" KAFKA_BROKERS="$TEST_KAFKA_BROKERS"
  JWT_SECRET=bench-secret-0123456789abcdef0123456789 RUST_LOG=warn LOG_FORMAT=json
  KAFKA_SESSION_TIMEOUT_MS=6000 ${BENCH_EXTRA_ENV:-})
tp=$(free_port); op=$(free_port)
env "${common[@]}" PORT="$op" MONGODB_DATABASE="${run}_owner" KAFKA_GROUP_ID="owner-$run" \
  KAFKA_REQUEST_TOPIC="$run.booking-requests" KAFKA_RESPONSE_TOPIC="$run.booking-updates" \
  KAFKA_PROPERTY_TOPIC="$run.property-listings" "$BIN/owner-service" >"$OUT/owner.log" 2>&1 &
owner=$!; pids+=("$owner")
env "${common[@]}" PORT="$tp" MONGODB_DATABASE="${run}_traveler" KAFKA_GROUP_ID="traveler-$run" \
  KAFKA_REQUEST_TOPIC="$run.booking-requests" KAFKA_RESPONSE_TOPIC="$run.booking-updates" \
  KAFKA_PROPERTY_TOPIC="$run.property-listings" "$BIN/traveler-service" >"$OUT/traveler.log" 2>&1 &
traveler=$!; pids+=("$traveler")
wait_ready "http://127.0.0.1:$tp/health/ready"; wait_ready "http://127.0.0.1:$op/health/ready"
"$BIN/booking-load" --label "real stack (tansu + SecantusDB), $(date -u +%F)" \
  --traveler "http://127.0.0.1:$tp" --owner "http://127.0.0.1:$op" \
  --pid "traveler-service=$traveler" --pid "owner-service=$owner" \
  --mongodb-uri "$TEST_MONGODB_URI" "$@" | tee "$OUT/real.txt"
