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
    client::DefaultClientContext,
    config::ClientConfig,
    consumer::{CommitMode, Consumer, StreamConsumer},
    error::{KafkaError, RDKafkaErrorCode},
    message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders},
    producer::{FutureProducer, FutureRecord, Producer},
    topic_partition_list::{Offset, TopicPartitionList},
    util::Timeout,
};
use tokio_util::sync::CancellationToken;

use futures::FutureExt;

use super::{
    consumer_status::{stranded, ConsumerStatus, GroupLook, PartitionProgress},
    dead_letter_headers, process_traced, EventPublisher, Outcome, Subscription, MAX_BATCH,
};
use crate::{
    backoff::Backoff,
    config::KafkaConfig,
    http::ReadinessCheck,
    metrics::{ConsumerStats, Metrics, STATISTICS_INTERVAL_MS},
    outbox::OutboxMessage,
    telemetry::{self, Consumed},
};

/// How long the producer keeps retrying one message before reporting failure
/// (the relay then retries the batch later; the event stays in the outbox).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Largest message the producer sends: room for dead-lettering a poison
/// message of about 1 MB with its headers.
const MAX_MESSAGE_BYTES: &str = "4000000";

/// The idempotent producer: `enable.idempotence=true`, `acks=all`, so retries
/// inside the client never duplicate or reorder a partition's messages.
///
/// After a delivery times out (the broker was away for longer than
/// [`DELIVERY_TIMEOUT`]) the producer is replaced by a new one, which starts
/// a new idempotent session (a new producer id from the broker), and the
/// callers publish the failed messages again (the outbox relay in key
/// order). librdkafka would otherwise bump the producer epoch on its own,
/// which tansu 0.6.0 (the test broker) cannot handle: it panics on the next
/// produce (`more or less than one row`, `lite.rs:503`) and then refuses
/// every client. A new session is as correct on Apache Kafka; see
/// docs/reliability.md.
#[derive(Clone)]
pub struct KafkaPublisher {
    producer: Arc<std::sync::RwLock<FutureProducer>>,
    config: ClientConfig,
}

impl KafkaPublisher {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .set("message.max.bytes", MAX_MESSAGE_BYTES);
        let producer = client.create()?;
        Ok(Self {
            producer: Arc::new(std::sync::RwLock::new(producer)),
            config: client,
        })
    }

    /// The producer of the current idempotent session.
    fn current(&self) -> FutureProducer {
        self.producer.read().expect("producer lock").clone()
    }

    /// Starts a new idempotent session if a delivery timed out in `of`
    /// (the session `current` returned before the sends): the old producer's
    /// queue is purged (those sends fail and are retried by their callers),
    /// and later sends use a new producer.
    fn renew_after_timeout(&self, of: &FutureProducer, errors: &[&KafkaError]) {
        let timed_out = errors.iter().any(|e| {
            matches!(
                e,
                KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut)
            )
        });
        if !timed_out {
            return;
        }
        let fresh = match self.config.create::<FutureProducer>() {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::warn!(error = %e, "cannot create a new producer; keeping the old one");
                return;
            }
        };
        {
            let mut current = self.producer.write().expect("producer lock");
            // Another caller may have renewed it already.
            if !std::ptr::eq(current.client().native_ptr(), of.client().native_ptr()) {
                return;
            }
            *current = fresh;
        }
        of.purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
        tracing::warn!("a delivery timed out: publishing continues in a new producer session");
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
        let producer = self.current();
        let result = producer
            .send(record, Timeout::After(DELIVERY_TIMEOUT))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e);
        if let Err(e) = &result {
            self.renew_after_timeout(&producer, &[e]);
        }
        result.map_err(|e| e.to_string())
    }
}

#[async_trait]
impl EventPublisher for KafkaPublisher {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        // All sends are enqueued before any is awaited, in batch order, so one
        // key's messages keep their order and the batch shares round trips.
        let producer = self.current();
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
            producer.send(record, Timeout::After(DELIVERY_TIMEOUT))
        });
        let results: Vec<Result<(), KafkaError>> = futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|(e, _)| e))
            .collect();
        let errors: Vec<&KafkaError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        if !errors.is_empty() {
            self.renew_after_timeout(&producer, &errors);
        }
        results
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }

    async fn flush(&self, timeout: Duration) {
        let producer = self.current();
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
        let producer = self.publisher.current();
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

/// The group consumer, reporting statistics (lag, assignment) to metrics.
type GroupConsumer = StreamConsumer<ConsumerStats>;

/// Builds the consumer: offsets are stored by hand after each durable effect
/// and committed in the background and at shutdown.
fn consumer(config: &KafkaConfig, metrics: Arc<Metrics>) -> Result<GroupConsumer, KafkaError> {
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
        // How long the broker may hold a fetch waiting for data. With
        // librdkafka's 500 ms default, propagation on the test broker took
        // about half a second per hop; 10 ms bounds it at the cost of more
        // (cheap) fetch requests while idle.
        .set("fetch.wait.max.ms", "10")
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS)
        .create_with_context(ConsumerStats::new(metrics))
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
/// Every [`membership_period`] the consumer looks at its group (see
/// [`look_at_group`]) and records what it holds in `status`. A consumer
/// found stranded (see [`stranded`]) twice in a row — three looks, at least
/// two periods without anyone consuming events that wait — leaves the group
/// and joins it again as a new member, and readiness shows why meanwhile.
/// librdkafka's statistics feed `metrics` (consumer lag, assigned partitions).
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
    let topics: Vec<String> = by_topic.keys().cloned().collect();
    let mut consumer = Arc::new(joined_consumer(&config, &topics, &metrics)?);
    tracing::info!(group = %config.group_id, ?topics, "consumer started");
    let mut backoff = Backoff::default();
    let period = membership_period(&config);
    let mut looks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    looks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stranded_before = false;
    let mut previous = GroupLook::default();
    // A look waits for several answers from the broker, which take long
    // when it is busy: it runs beside the loop, which keeps applying
    // messages meanwhile.
    let mut in_flight: Option<tokio::task::JoinHandle<Option<GroupLook>>> = None;

    loop {
        let woken = tokio::select! {
            _ = stop.cancelled() => break,
            _ = looks.tick(), if in_flight.is_none() => {
                in_flight = Some(tokio::spawn(look_at_group(
                    consumer.clone(),
                    topics.clone(),
                    status.clone(),
                )));
                continue;
            }
            looked = async { in_flight.as_mut().expect("a look in flight").await }, if in_flight.is_some() => {
                in_flight = None;
                Woken::Looked(looked.unwrap_or_else(|e| {
                    tracing::warn!(error = %e, "looking at the consumer group failed");
                    None
                }))
            }
            m = consumer.recv() => Woken::Message(m),
        };
        let first = match woken {
            Woken::Message(m) => m,
            Woken::Looked(None) => continue,
            Woken::Looked(Some(look)) => {
                let reason = stranded(&previous, &look);
                previous = look;
                match reason {
                    Some(reason) if stranded_before => {
                        status.set_stranded(Some(reason.clone()));
                        consumer = rejoin(consumer, &config, &topics, &metrics, &reason).await?;
                        status.rejoined();
                        stranded_before = false;
                        previous = GroupLook::default();
                    }
                    Some(reason) => {
                        tracing::warn!(group = %config.group_id, %reason, "consumer holds no partitions");
                        stranded_before = true;
                    }
                    None => {
                        status.set_stranded(None);
                        stranded_before = false;
                    }
                }
                continue;
            }
        };
        let first = match first {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "consumer error");
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        };
        backoff.reset();
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
            let Some(outcomes) = process_traced(sub, &values, traced, &stop).await else {
                return commit(consumer).await;
            };
            for (&i, outcome) in indexes.iter().zip(outcomes) {
                if let Outcome::DeadLetter { code, reason } = outcome {
                    if !dead_letter(&dead_letters, &batch[i], &sub.topic, code, &reason, &stop)
                        .await
                    {
                        return commit(consumer).await;
                    }
                }
            }
        }
        for m in &batch {
            if let Err(e) = consumer.store_offset_from_message(m) {
                tracing::warn!(error = %e, "cannot store offset");
            }
        }
    }
    commit(consumer).await
}

/// What woke the consumer loop: a message, or a finished look at the group
/// (`None` when the broker could not be asked).
enum Woken<M> {
    Message(M),
    Looked(Option<GroupLook>),
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

/// A consumer subscribed to `topics`: it joins the group as a new member.
fn joined_consumer(
    config: &KafkaConfig,
    topics: &[String],
    metrics: &Arc<Metrics>,
) -> Result<GroupConsumer, KafkaError> {
    let consumer = consumer(config, metrics.clone())?;
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok(consumer)
}

/// How often the consumer looks at its group: twice per session timeout
/// (a stranded consumer is so rejoined about one session after it was
/// stranded), between 1 and 5 seconds.
fn membership_period(config: &KafkaConfig) -> Duration {
    Duration::from_millis(u64::from(config.session_timeout_ms / 2))
        .clamp(Duration::from_secs(1), Duration::from_secs(5))
}

/// How long one look at the group may wait for the broker.
const LOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Records which partitions `consumer` holds and, from the broker, how far
/// the group has read every partition of `topics` (committed offsets and
/// partition ends); a successful answer counts as a successful poll.
/// `None` when the broker could not be asked.
async fn look_at_group(
    consumer: Arc<GroupConsumer>,
    topics: Vec<String>,
    status: ConsumerStatus,
) -> Option<GroupLook> {
    let mut held: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if let Ok(list) = consumer.assignment() {
        for e in list.elements() {
            held.entry(e.topic().to_string())
                .or_default()
                .push(e.partition());
        }
    }
    status.set_assigned(held.clone());
    let looked = tokio::task::spawn_blocking(move || -> Result<GroupLook, KafkaError> {
        let mut wanted = TopicPartitionList::new();
        for topic in &topics {
            let metadata = consumer.fetch_metadata(Some(topic), LOOK_TIMEOUT)?;
            for t in metadata.topics() {
                for p in t.partitions() {
                    wanted.add_partition(topic, p.id());
                }
            }
        }
        let committed = consumer.committed_offsets(wanted, LOOK_TIMEOUT)?;
        let mut progress: BTreeMap<String, Vec<PartitionProgress>> = BTreeMap::new();
        for e in committed.elements() {
            let (low, high) = consumer.fetch_watermarks(e.topic(), e.partition(), LOOK_TIMEOUT)?;
            let committed = match e.offset() {
                Offset::Offset(n) => n,
                _ => low,
            };
            progress
                .entry(e.topic().to_string())
                .or_default()
                .push(PartitionProgress {
                    partition: e.partition(),
                    committed,
                    high,
                });
        }
        Ok(GroupLook { held, progress })
    })
    .await;
    match looked {
        Ok(Ok(look)) => {
            status.polled();
            Some(look)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "cannot look at the consumer group");
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "looking at the consumer group panicked");
            None
        }
    }
}

/// Leaves the group (closing `old`) and joins it again as a new member,
/// which makes the coordinator rebalance the group with this member in it.
/// `old` holds no partitions, so it has nothing to commit.
async fn rejoin(
    old: Arc<GroupConsumer>,
    config: &KafkaConfig,
    topics: &[String],
    metrics: &Arc<Metrics>,
    reason: &str,
) -> Result<Arc<GroupConsumer>, KafkaError> {
    tracing::error!(
        group = %config.group_id,
        %reason,
        "consumer stranded on three looks in a row; leaving and rejoining the group"
    );
    // Closing sends LeaveGroup; it may wait for the broker, so off the runtime.
    let closed = tokio::task::spawn_blocking(move || drop(old));
    if tokio::time::timeout(LOOK_TIMEOUT * 2, closed)
        .await
        .is_err()
    {
        tracing::warn!("the stranded consumer did not close in time; joining anyway");
    }
    Ok(Arc::new(joined_consumer(config, topics, metrics)?))
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
