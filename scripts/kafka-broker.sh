#!/usr/bin/env bash
# Apache Kafka 4.1.1 (the version docker-compose.yml and k8s/kafka pin) for
# the tests and benchmarks: one combined broker+controller in KRaft mode on
# loopback, from the jars Maven Central publishes (no Docker, no tarball).
#
#   scripts/kafka-broker.sh install          # jars into $BOOKING_TOOLS_DIR/kafka-4.1.1 (idempotent)
#   scripts/kafka-broker.sh run DIR [PORT]   # broker in the foreground (exec: its PID is the JVM's)
#   scripts/kafka-broker.sh bin              # prints the directory of the kafka-*.sh tools
#
# `run` formats DIR on first use (a fresh KRaft log directory, a
# `server.properties` with PORT for clients and a free port for the
# controller) and starts the broker on it; a later `run DIR` restarts it on
# the same ports and data, as a broker restart would. Its log goes to
# standard output. KAFKA_HEAP_OPTS bounds the heap (default -Xms256m
# -Xmx512m, as docker-compose.yml's broker).
#
# The settings are production's (docker-compose.yml, k8s/kafka) except what
# one node forces: replication factors 1, and a small offsets topic and no
# initial rebalance delay so that a test's consumer group forms at once.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
VERSION=4.1.1
TOOLS=${BOOKING_TOOLS_DIR:-$HOME/.cache/booking-test-servers}
HOME_DIR=${TEST_KAFKA_HOME:-$TOOLS/kafka-$VERSION}
LIB=$HOME_DIR/lib

log() { echo "kafka-broker: $*" >&2; }

install() {
  if [ -f "$HOME_DIR/.installed" ]; then
    log "Apache Kafka $VERSION already installed in $HOME_DIR"
    return 0
  fi
  log "installing Apache Kafka $VERSION from Maven Central into $HOME_DIR"
  rm -rf "$HOME_DIR"
  mkdir -p "$HOME_DIR/bin"
  # The cache keeps Maven's own repository too, so nothing lands elsewhere.
  mvn -B -q -Dstyle.color=never -f "$HERE/kafka/pom.xml" -Dmaven.repo.local="$TOOLS/maven-repository" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$LIB" >&2
  cp "$HERE/kafka/log4j2.properties" "$HERE/kafka/tools-log4j2.properties" "$HOME_DIR/"
  # The command-line tools k8s/kafka/create-topics.sh calls, by the names
  # the Apache Kafka distribution gives them.
  tool kafka-topics.sh org.apache.kafka.tools.TopicCommand
  tool kafka-consumer-groups.sh org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
  tool kafka-storage.sh kafka.tools.StorageTool
  touch "$HOME_DIR/.installed"
}

tool() { # name main-class
  cat >"$HOME_DIR/bin/$1" <<TOOL
#!/usr/bin/env bash
exec java -Xmx256m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" -cp "$LIB/*" $2 "\$@"
TOOL
  chmod +x "$HOME_DIR/bin/$1"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

format() { # dir port
  local dir=$1 port=$2 controller
  controller=$(free_port)
  mkdir -p "$dir/data"
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$controller
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=1
min.insync.replicas=1
unclean.leader.election.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  java -cp "$LIB/*" -Dlog4j2.configurationFile="$HOME_DIR/tools-log4j2.properties" \
    kafka.tools.StorageTool format --standalone \
    -t "$(java -cp "$LIB/*" kafka.tools.StorageTool random-uuid)" \
    -c "$dir/server.properties" >&2
}

run() { # dir [port]
  local dir=${1:?usage: $0 run DIR [PORT]}
  [ -f "$HOME_DIR/.installed" ] || install
  if [ ! -f "$dir/data/meta.properties" ]; then
    format "$dir" "${2:?a new broker directory needs a PORT}"
  elif [ -n "${2:-}" ] && ! grep -q "^advertised.listeners=PLAINTEXT://127.0.0.1:$2\$" "$dir/server.properties"; then
    log "$dir was formatted for another port"; exit 2
  fi
  # shellcheck disable=SC2086
  exec java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$HOME_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$dir" -cp "$LIB/*" kafka.Kafka "$dir/server.properties"
}

case "${1:-}" in
  install) install ;;
  run) shift; run "$@" ;;
  bin) echo "$HOME_DIR/bin" ;;
  *) echo "usage: $0 install|run DIR [PORT]|bin" >&2; exit 2 ;;
esac
