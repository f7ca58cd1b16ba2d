//! [`run_consumer`]: the group consumer, which stores offsets only after a
//! batch's effects are durable (applied or dead-lettered) and commits them
//! at shutdown.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use futures::FutureExt;
use rdkafka::{
    client::ClientContext,
    config::ClientConfig,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{BorrowedMessage, Headers, Message},
    statistics::Statistics,
    topic_partition_list::TopicPartitionList,
};
use tokio_util::sync::CancellationToken;

use super::{dead_letters::dead_letter, producer::KafkaPublisher};
use crate::{
    config::KafkaConfig,
    messaging::{
        consumer_status::ConsumerStatus, process_traced, Outcome, Subscription, MAX_BATCH,
    },
    metrics::{ConsumerStats, Metrics, STATISTICS_INTERVAL_MS},
    telemetry::{self, Consumed},
};

/// The group consumer's client context: librdkafka's statistics feed the
/// metrics (lag, assignment) and show that the group coordinator is
/// reachable; rebalances record which partitions the consumer holds. All of
/// it comes from callbacks the client makes anyway: readiness costs the
/// broker no request of its own.
struct GroupContext {
    stats: ConsumerStats,
    status: ConsumerStatus,
}

impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        if statistics.cgrp.as_ref().is_some_and(|g| g.state == "up") {
            self.status.polled();
        }
        self.stats.stats(statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => self.status.assigned(&by_topic(partitions)),
            Rebalance::Revoke(partitions) => self.status.revoked(&by_topic(partitions)),
            Rebalance::Error(e) => tracing::warn!(error = %e, "consumer group rebalance failed"),
        }
    }
}

/// The partitions of `list`, per topic.
fn by_topic(list: &TopicPartitionList) -> BTreeMap<String, Vec<i32>> {
    let mut partitions: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    for e in list.elements() {
        partitions
            .entry(e.topic().to_string())
            .or_default()
            .push(e.partition());
    }
    partitions
}

/// The group consumer.
type GroupConsumer = StreamConsumer<GroupContext>;

/// Builds the consumer: offsets are stored by hand after each durable effect
/// and committed in the background and at shutdown.
fn consumer(
    config: &KafkaConfig,
    metrics: Arc<Metrics>,
    status: ConsumerStatus,
) -> Result<GroupConsumer, KafkaError> {
    let session = config.session_timeout_ms;
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session.to_string())
        .set("heartbeat.interval.ms", (session / 3).max(100).to_string())
        .set(
            "max.poll.interval.ms",
            (session * 3).max(10_000).to_string(),
        )
        // librdkafka prefetches up to 64 MB per partition by default; a few
        // MB keep batches full without holding a backlog in memory.
        .set("queued.max.messages.kbytes", "4096")
        // `fetch.wait.max.ms` stays librdkafka's 500 ms: Apache Kafka holds
        // an empty fetch only until data arrives (`fetch.min.bytes` 1), so
        // the wait adds no latency, and an idle consumer sends two fetches
        // a second instead of the hundred the former 10 ms (set for the
        // previous test broker, which answered held fetches late) cost.
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(GroupContext {
            stats: ConsumerStats::new(metrics),
            status,
        })
}

/// Consumes `subscriptions` in the configured group until `stop`.
///
/// Messages already fetched are taken together (up to [`MAX_BATCH`]) and
/// applied per topic as one batch, so a burst costs a few database round
/// trips instead of a few per event. Offsets are stored only after the whole
/// batch is durable (applied or dead-lettered); a transient failure is
/// retried without moving on, so a database outage pauses consumption instead
/// of skipping events. On stop, stored offsets are committed synchronously.
///
/// Group membership is the broker's: a member that joins while another's
/// session is still open (a SIGKILLed replica restarted at once) waits in
/// the rebalance until the coordinator expires the dead one, then gets its
/// share; `status` records what it holds for readiness. librdkafka's
/// statistics feed `metrics` (consumer lag, assigned partitions).
pub async fn run_consumer(
    config: KafkaConfig,
    subscriptions: Vec<Subscription>,
    dead_letters: KafkaPublisher,
    status: ConsumerStatus,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
) -> Result<(), KafkaError> {
    let by_topic: HashMap<String, Subscription> = subscriptions
        .into_iter()
        .map(|s| (s.topic.clone(), s))
        .collect();
    let topics: Vec<&str> = by_topic.keys().map(String::as_str).collect();
    // Shared with the final commit, which blocks and so runs off the runtime.
    let consumer = Arc::new(consumer(&config, metrics.clone(), status.clone())?);
    consumer.subscribe(&topics)?;
    tracing::info!(group = %config.group_id, ?topics, "consumer started");

    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => break,
            m = consumer.recv() => m,
        };
        let first = match first {
            Ok(m) => m,
            // An error here is an event librdkafka queued (a broker
            // connection failed, all brokers are down); the client
            // reconnects on its own, and its error callback has already
            // logged it. The loop takes the next event at once: waiting
            // after each one left a consumer draining a backlog of stale
            // errors, one per backoff, long after the broker was back
            // (docs/reliability.md, "Stale client errors").
            Err(e) => {
                tracing::debug!(error = %e, "consumer error");
                continue;
            }
        };
        status.received();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => batch.push(m),
                _ => break,
            }
        }

        // One batch per topic, each in arrival order.
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            match groups.iter_mut().find(|(t, _)| *t == m.topic()) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((m.topic(), vec![i])),
            }
        }
        for (topic, indexes) in groups {
            let Some(sub) = by_topic.get(topic) else {
                continue;
            };
            let values: Vec<&[u8]> = indexes
                .iter()
                .map(|&i| batch[i].payload().unwrap_or_default())
                .collect();
            let traced = || indexes.iter().map(|&i| traced(&batch[i])).collect();
            let began = std::time::Instant::now();
            let Some(outcomes) = process_traced(sub, &values, traced, &stop).await else {
                return commit(consumer.clone()).await;
            };
            for (&i, outcome) in indexes.iter().zip(outcomes) {
                if let Outcome::DeadLetter { code, reason } = outcome {
                    if !dead_letter(&dead_letters, &batch[i], &sub.topic, code, &reason, &stop)
                        .await
                    {
                        return commit(consumer.clone()).await;
                    }
                }
            }
            metrics.consumer_batch(topic, indexes.len(), began.elapsed());
        }
        for m in &batch {
            if let Err(e) = consumer.store_offset_from_message(m) {
                tracing::warn!(error = %e, "cannot store offset");
            }
        }
    }
    commit(consumer).await
}

/// What the consumer's span of `message` needs: its key and trace headers.
fn traced<'a>(message: &'a BorrowedMessage<'_>) -> Consumed<'a> {
    let key = message
        .key()
        .and_then(|k| std::str::from_utf8(k).ok())
        .unwrap_or_default();
    let headers = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter(|h| telemetry::is_trace_header(h.key))
                .filter_map(|h| {
                    let value = std::str::from_utf8(h.value?).ok()?;
                    Some((h.key.to_string(), value.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Consumed { key, headers }
}

/// How long the final offset commit may take: with the broker gone, a
/// synchronous commit would otherwise block shutdown indefinitely.
const FINAL_COMMIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Commits stored offsets synchronously, within [`FINAL_COMMIT_TIMEOUT`].
/// Uncommitted offsets are not lost work: those events are delivered again
/// and the idempotent handlers absorb them.
async fn commit(consumer: Arc<GroupConsumer>) -> Result<(), KafkaError> {
    let attempt =
        tokio::task::spawn_blocking(move || consumer.commit_consumer_state(CommitMode::Sync));
    match tokio::time::timeout(FINAL_COMMIT_TIMEOUT, attempt).await {
        Ok(Ok(Ok(()))) => Ok(()),
        // Nothing consumed since the last commit.
        Ok(Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)))) => Ok(()),
        Ok(Ok(Err(e))) => {
            tracing::warn!(error = %e, "final offset commit failed");
            Err(e)
        }
        Ok(Err(join)) => {
            tracing::warn!(error = %join, "final offset commit panicked");
            Ok(())
        }
        Err(_) => {
            tracing::warn!(timeout = ?FINAL_COMMIT_TIMEOUT, "final offset commit timed out; the last events will be redelivered");
            Ok(())
        }
    }
}
