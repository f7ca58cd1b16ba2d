#!/usr/bin/env bash
# Installs and runs the real protocol servers the integration tests talk to,
# on free loopback ports (no Docker needed):
#   - Apache Kafka 4.1.1 (from Maven Central; scripts/kafka-broker.sh), one
#     KRaft broker+controller, with the topics k8s/kafka's job creates
#   - SecantusDB, a MongoDB-protocol server (from PyPI), in memory
#
#   scripts/test-servers.sh install   # idempotent; tools go to $BOOKING_TOOLS_DIR
#   scripts/test-servers.sh start     # starts both, writes .test-servers/env
#   scripts/test-servers.sh stop
#
# `start` writes TEST_MONGODB_URI and TEST_KAFKA_BROKERS (plus the servers'
# PIDs and where their programs are) to .test-servers/env; `source` it
# before `cargo test`. Each start has a fresh broker log directory and an
# empty database.
# TEST_SERVERS_DIR moves that directory (a second, independent set).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TOOLS=${BOOKING_TOOLS_DIR:-$HOME/.cache/booking-test-servers}
# Where logs, data and the env file go (override to run a second set).
STATE=${TEST_SERVERS_DIR:-$ROOT/.test-servers}
KAFKA=$ROOT/scripts/kafka-broker.sh
KAFKA_HOME=$TOOLS/kafka-4.1.1
VENV=$TOOLS/venv
SECANTUS=$VENV/bin/secantusd-py

log() { echo "test-servers: $*" >&2; }

install() {
  mkdir -p "$TOOLS"
  BOOKING_TOOLS_DIR=$TOOLS "$KAFKA" install
  if [ -x "$SECANTUS" ]; then
    log "SecantusDB already installed"
  else
    log "installing SecantusDB into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet SecantusDB >&2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # port name pid
  for _ in $(seq 300); do
    if python3 -c "import socket,sys; s=socket.socket(); s.settimeout(0.2); sys.exit(s.connect_ex(('127.0.0.1',$1)))" 2>/dev/null; then
      return 0
    fi
    kill -0 "$3" 2>/dev/null || { log "$2 exited; see $STATE/$2.log"; tail -20 "$STATE/$2.log" >&2; return 1; }
    sleep 0.2
  done
  log "$2 did not open port $1"; return 1
}

start() {
  [ -f "$KAFKA_HOME/.installed" ] && [ -x "$SECANTUS" ] || install
  stop_quietly
  mkdir -p "$STATE"
  local mongo_port kafka_port
  mongo_port=$(free_port); kafka_port=$(free_port)
  "$SECANTUS" --host 127.0.0.1 --port "$mongo_port" --storage-path :memory: >"$STATE/mongodb.log" 2>&1 &
  local mongo_pid=$!
  rm -rf "$STATE/kafka"
  BOOKING_TOOLS_DIR=$TOOLS "$KAFKA" run "$STATE/kafka" "$kafka_port" >"$STATE/kafka.log" 2>&1 &
  local kafka_pid=$!
  wait_port "$mongo_port" mongodb "$mongo_pid"
  wait_port "$kafka_port" kafka "$kafka_pid"
  # The same script, partitions and cleanup policies as the topics job of
  # k8s/kafka (and docker-compose.yml's kafka-topics), with one replica; it
  # waits until the broker answers metadata.
  BOOTSTRAP_SERVERS=127.0.0.1:$kafka_port PARTITIONS=6 REPLICATION_FACTOR=1 MIN_INSYNC_REPLICAS=1 \
    KAFKA_BIN=$KAFKA_HOME/bin bash "$ROOT/k8s/kafka/create-topics.sh" >"$STATE/topics.log" 2>&1 ||
    { log "creating the topics failed; see $STATE/topics.log"; tail -20 "$STATE/topics.log" >&2; return 1; }
  cat >"$STATE/env" <<ENV
export TEST_MONGODB_URI=mongodb://127.0.0.1:$mongo_port/?directConnection=true
export TEST_KAFKA_BROKERS=127.0.0.1:$kafka_port
export TEST_MONGODB_PID=$mongo_pid
export TEST_KAFKA_PID=$kafka_pid
export TEST_KAFKA_HOME=$KAFKA_HOME
export TEST_SECANTUS_BIN=$SECANTUS
export TEST_SERVERS_DIR=$STATE
ENV
  log "MongoDB protocol (SecantusDB) on 127.0.0.1:$mongo_port, Apache Kafka 4.1.1 on 127.0.0.1:$kafka_port"
}

stop_quietly() {
  [ -f "$STATE/env" ] || return 0
  # shellcheck disable=SC1091
  . "$STATE/env"
  kill "$TEST_MONGODB_PID" "$TEST_KAFKA_PID" 2>/dev/null || true
  # Until both have exited (a broker still flushing its log directory
  # would race the next start's fresh one), SIGKILL after 30 s.
  local _
  for _ in $(seq 300); do
    kill -0 "$TEST_MONGODB_PID" 2>/dev/null || kill -0 "$TEST_KAFKA_PID" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$TEST_MONGODB_PID" "$TEST_KAFKA_PID" 2>/dev/null || true
  rm -f "$STATE/env"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop_quietly; log "stopped" ;;
  *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
