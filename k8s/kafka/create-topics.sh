#!/usr/bin/env bash
# Creates the Kafka topics that traveler-service and owner-service use.
#
# Run by the `kafka-topics` service in docker-compose.yml and by the
# `kafka-create-topics` Job in k8s/. Idempotent (--if-not-exists): re-running it
# never touches a topic that already exists, so it does not change partition
# counts or configs of existing topics (see docs/operations.md).
#
# Environment:
#   BOOTSTRAP_SERVERS    comma-separated brokers, e.g. kafka:9092
#   PARTITIONS           partitions per topic; the services' KAFKA_TOPIC_PARTITIONS
#                        and the HPA maximum must not exceed it
#   REPLICATION_FACTOR   copies of each partition (1 in compose, 3 in k8s)
#   MIN_INSYNC_REPLICAS  replicas that must acknowledge a write (1 in compose, 2 in k8s)
#
# The `create <topic>` lines below are parsed by crates/deploy-checks, which
# fails if they drift from the topic names in crates/events/src/topics.rs.
set -euo pipefail

: "${BOOTSTRAP_SERVERS:?BOOTSTRAP_SERVERS is required}"
: "${PARTITIONS:?PARTITIONS is required}"
: "${REPLICATION_FACTOR:?REPLICATION_FACTOR is required}"
: "${MIN_INSYNC_REPLICAS:?MIN_INSYNC_REPLICAS is required}"

KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"

echo "waiting for Kafka at ${BOOTSTRAP_SERVERS}"
for attempt in $(seq 1 60); do
  if "${KAFKA_BIN}/kafka-topics.sh" --bootstrap-server "${BOOTSTRAP_SERVERS}" --list >/dev/null 2>&1; then
    break
  fi
  if [ "${attempt}" -eq 60 ]; then
    echo "Kafka did not answer after 60 attempts" >&2
    exit 1
  fi
  sleep 5
done

# create TOPIC [--config key=value ...]
create() {
  local topic="$1"
  shift
  echo "ensuring topic ${topic} (partitions=${PARTITIONS}, replication=${REPLICATION_FACTOR}) $*"
  "${KAFKA_BIN}/kafka-topics.sh" --bootstrap-server "${BOOTSTRAP_SERVERS}" \
    --create --if-not-exists \
    --topic "${topic}" \
    --partitions "${PARTITIONS}" \
    --replication-factor "${REPLICATION_FACTOR}" \
    --config "min.insync.replicas=${MIN_INSYNC_REPLICAS}" \
    "$@"
}

# Event topics (events::topics).
create booking-requests
create booking-updates
# The property catalog is keyed by property id and only the latest snapshot
# matters, so it is compacted instead of expiring.
create property-listings --config cleanup.policy=compact

# Dead-letter topics (events::topics::dead_letter): plain delete policy, so a
# dead letter is never compacted away by a later one with the same key.
create booking-requests.dlq
create booking-updates.dlq
create property-listings.dlq

"${KAFKA_BIN}/kafka-topics.sh" --bootstrap-server "${BOOTSTRAP_SERVERS}" --describe \
  --topic 'booking-requests|booking-updates|property-listings|.*\.dlq'
echo "topics ready"
