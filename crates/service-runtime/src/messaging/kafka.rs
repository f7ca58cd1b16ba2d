//! The Kafka adapter: an idempotent producer, a consumer that stores offsets
//! only after the effect is durable, topic creation, and a readiness check.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::{ClientContext, DefaultClientContext},
    config::ClientConfig,
    consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    statistics::Statistics,
    topic_partition_list::TopicPartitionList,
    util::Timeout,
};
use tokio_util::sync::CancellationToken;

use futures::FutureExt;

use super::{
    consumer_status::ConsumerStatus, dead_letter_headers, process_traced, EventPublisher, Outcome,
    Subscription, MAX_BATCH,
};
use crate::{
    backoff::Backoff,
    config::KafkaConfig,
    http::ReadinessCheck,
    metrics::{ConsumerStats, Metrics, STATISTICS_INTERVAL_MS},
    outbox::OutboxMessage,
    telemetry::{self, Consumed},
};

/// Largest message the producer sends: room for dead-lettering a poison
/// message of about 1 MB with its headers.
const MAX_MESSAGE_BYTES: &str = "4000000";

/// The idempotent producer: `enable.idempotence=true`, `acks=all`, so retries
/// inside the client never duplicate or reorder a partition's messages.
///
/// Within `KAFKA_DELIVERY_TIMEOUT_MS` (default 60 s) the producer retries a
/// send with the same producer id and sequence number, so a broker that
/// restarts meanwhile writes it once. When a delivery times out (the broker
/// was away for longer), librdkafka fails the message back to its caller
/// (the outbox relay keeps it and retries its batch later, in key order)
/// and bumps the producer epoch itself before it sends again (KIP-360), so
/// the session's sequence numbers stay consistent with the broker's; see
/// docs/reliability.md ("Workarounds for the former test broker").
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: FutureProducer,
    /// How long a send may wait for room in the producer's queue.
    enqueue_timeout: Duration,
}

impl KafkaPublisher {
    /// The service's one producer, shared by the relay and dead-lettering.
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .set("message.max.bytes", MAX_MESSAGE_BYTES)
            .create()?;
        Ok(Self {
            producer,
            enqueue_timeout: Duration::from_millis(u64::from(config.delivery_timeout_ms)),
        })
    }

    /// Sends raw bytes (dead letters carry whatever arrived, even non-UTF-8).
    pub async fn send_raw(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &[u8],
        headers: &[(String, Vec<u8>)],
    ) -> Result<(), String> {
        let mut owned = OwnedHeaders::new();
        for (k, v) in headers {
            owned = owned.insert(Header {
                key: k,
                value: Some(v),
            });
        }
        let mut record = FutureRecord::to(topic).payload(value).headers(owned);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::After(self.enqueue_timeout))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e.to_string())
    }
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        // All sends are enqueued before any is awaited, in batch order, so one
        // key's messages keep their order and the batch shares round trips.
        let producer = &self.producer;
        let sends = batch.iter().map(|m| {
            let mut headers = OwnedHeaders::new_with_capacity(m.headers.len());
            for (k, v) in &m.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v),
                });
            }
            let record = FutureRecord::to(&m.topic)
                .key(&m.key)
                .payload(&m.payload)
                .headers(headers);
            producer.send(record, Timeout::After(self.enqueue_timeout))
        });
        futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|(e, _)| e.to_string()))
            .collect()
    }

    async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(Timeout::After(timeout))).await;
    }
}

/// Readiness: the broker answers a metadata request.
pub struct KafkaReadiness {
    publisher: KafkaPublisher,
}

impl KafkaReadiness {
    pub fn new(publisher: &KafkaPublisher) -> Self {
        Self {
            publisher: publisher.clone(),
        }
    }
}

#[async_trait]
impl ReadinessCheck for KafkaReadiness {
    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn check(&self) -> Result<(), String> {
        let producer = self.publisher.producer.clone();
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(None, Duration::from_millis(1500))
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// A topic the service needs, with its dead-letter twin.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub compacted: bool,
}

/// Creates missing topics (and each one's `.dlq`); existing ones are left as they are.
pub async fn ensure_topics(config: &KafkaConfig, topics: &[TopicSpec]) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .map_err(|e| e.to_string())?;
    let mut specs = Vec::new();
    for t in topics {
        specs.push((t.name.clone(), t.compacted));
        specs.push((events::topics::dead_letter(&t.name), false));
    }
    let new_topics: Vec<NewTopic> = specs
        .iter()
        .map(|(name, compacted)| {
            let topic = NewTopic::new(
                name,
                config.topic_partitions,
                TopicReplication::Fixed(config.topic_replication_factor),
            );
            if *compacted {
                topic.set("cleanup.policy", "compact")
            } else {
                topic
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| e.to_string())?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("cannot create topic {name}: {code}")),
        }
    }
    Ok(())
}

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

/// Publishes `message` to its topic's `.dlq` with the reason in headers,
/// retrying until it is delivered; false if `stop` came first.
async fn dead_letter(
    publisher: &KafkaPublisher,
    message: &BorrowedMessage<'_>,
    topic: &str,
    code: &str,
    reason: &str,
    stop: &CancellationToken,
) -> bool {
    tracing::warn!(%topic, offset = message.offset(), code, %reason, "dead-lettering message");
    let mut headers: Vec<(String, Vec<u8>)> = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    headers.extend(
        dead_letter_headers(code, reason, topic, message.partition(), message.offset())
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    let dlq = events::topics::dead_letter(topic);
    let value = message.payload().unwrap_or_default();
    let mut retry = Backoff::default();
    loop {
        match publisher
            .send_raw(&dlq, message.key(), value, &headers)
            .await
        {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, %dlq, "cannot dead-letter; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(retry.next_delay()) => {}
                    _ = stop.cancelled() => return false,
                }
            }
        }
    }
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
