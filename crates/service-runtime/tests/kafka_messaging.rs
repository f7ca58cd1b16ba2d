//! The messaging runtime against the real Kafka-protocol broker: the outbox
//! relay publishes with headers and empties the outbox; the consumer applies
//! good events, dead-letters poison with the reason in headers and keeps
//! going, retries transient failures without skipping, and commits offsets
//! so a restarted consumer does not apply anything twice. Each path is also
//! checked in the metrics it records.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use async_trait::async_trait;
use chrono::Utc;
use events::{BookingCancellationRequested, BookingRequestEvent, Envelope, EventId};
use service_runtime::{
    config::KafkaConfig,
    messaging::{
        consumer_status::ConsumerStatus,
        kafka::{ensure_topics, run_consumer, KafkaPublisher, TopicSpec},
        Applied, EventHandler, HandleError, Handled, Subscription,
    },
    metrics::Metrics,
    outbox::{run_relay, InMemoryOutbox, OutboxMessage, OutboxSignal, RelayConfig},
};
use test_support::{eventually, metric_sum, produce_raw, read_topic, real_servers, unique};
use tokio_util::sync::CancellationToken;

fn kafka_config(brokers: &str, topic: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.into(),
        group_id: unique("group"),
        request_topic: topic.into(),
        response_topic: unique("unused"),
        property_topic: unique("unused"),
        topic_partitions: 2,
        topic_replication_factor: 1,
        session_timeout_ms: 6000,
        delivery_timeout_ms: 60_000,
    }
}

async fn create(config: &KafkaConfig, topic: &str) {
    ensure_topics(
        config,
        &[TopicSpec {
            name: topic.into(),
            compacted: false,
        }],
    )
    .await
    .expect("create topics");
}

fn cancellation(booking: &str) -> Envelope<BookingRequestEvent> {
    Envelope::new(
        "test",
        BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
            booking_id: booking.into(),
            traveler_id: "t".into(),
            reason: None,
            requested_at: Utc::now(),
        }),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_publishes_the_outbox_with_cloudevents_headers_and_empties_it() {
    let Some(servers) = real_servers("relay_publishes_the_outbox") else {
        return;
    };
    let topic = unique("relay");
    let config = kafka_config(&servers.kafka_brokers, &topic);
    create(&config, &topic).await;

    let signal = OutboxSignal::default();
    let outbox = Arc::new(InMemoryOutbox::new(signal.clone()));
    let sent: Vec<_> = (0..5).map(|i| cancellation(&format!("b{i}"))).collect();
    for e in &sent {
        outbox.push(OutboxMessage::new(&topic, e));
    }
    let stop = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let relay = tokio::spawn(run_relay(
        outbox.clone(),
        Arc::new(KafkaPublisher::new(&config).unwrap()),
        signal,
        RelayConfig::default(),
        stop.clone(),
        metrics.clone(),
    ));
    eventually("outbox drained", Duration::from_secs(30), || async {
        outbox.is_empty().then_some(())
    })
    .await;
    stop.cancel();
    relay.await.unwrap();

    let messages = read_topic(&servers.kafka_brokers, &topic, Duration::from_secs(10));
    assert_eq!(messages.len(), 5);
    for e in &sent {
        let m = messages
            .iter()
            .find(|m| m.header("ce_id").as_deref() == Some(e.event_id.as_str()))
            .expect("every event published");
        assert_eq!(m.key.as_deref(), Some(e.key().as_bytes()));
        assert_eq!(
            m.header("ce_type").as_deref(),
            Some("booking.cancellation_requested")
        );
        assert_eq!(m.header("ce_source").as_deref(), Some("test"));
        assert_eq!(m.json()["event_id"], e.event_id.as_str());
    }
    assert_eq!(
        metric_sum(
            &metrics.encode(),
            "events_published_total",
            &[
                ("topic", topic.as_str()),
                ("type", "booking.cancellation_requested")
            ]
        ),
        Some(5.0),
        "each acknowledged event counted once"
    );
}

/// Records applied event ids; fails transiently the first `fail_first` times.
#[derive(Default)]
struct Recorder {
    applied: Mutex<Vec<EventId>>,
    fail_first: AtomicUsize,
    attempts: AtomicUsize,
}

#[async_trait]
impl EventHandler<BookingRequestEvent> for Recorder {
    async fn handle(&self, event: Envelope<BookingRequestEvent>) -> Handled {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        if attempt < self.fail_first.load(Ordering::SeqCst) {
            return Err(HandleError::Transient("database down (simulated)".into()));
        }
        self.applied.lock().unwrap().push(event.event_id);
        Ok(Applied::Changed)
    }
}

fn start_consumer(
    config: &KafkaConfig,
    topic: &str,
    recorder: Arc<Recorder>,
    metrics: Arc<Metrics>,
) -> (CancellationToken, tokio::task::JoinHandle<()>) {
    let stop = CancellationToken::new();
    let subs = vec![Subscription::new(topic.to_string(), recorder).observed_by(metrics.clone())];
    let (config, publisher, s) = (
        config.clone(),
        KafkaPublisher::new(config).unwrap(),
        stop.clone(),
    );
    let status = ConsumerStatus::new(&config.group_id);
    let handle = tokio::spawn(async move {
        run_consumer(config, subs, publisher, status, s, metrics)
            .await
            .expect("consumer ran");
    });
    (stop, handle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_dead_letters_poison_keeps_going_and_does_not_reapply_after_restart() {
    let Some(servers) = real_servers("consumer_dead_letters_poison") else {
        return;
    };
    let brokers = servers.kafka_brokers.clone();
    let topic = unique("requests");
    let config = kafka_config(&brokers, &topic);
    create(&config, &topic).await;

    let good_a = cancellation("a");
    let good_b = cancellation("b");
    let mut unknown_version: serde_json::Value = serde_json::from_str(&good_a.to_json()).unwrap();
    unknown_version["schema_version"] = 42.into();
    let mut missing_field: serde_json::Value = serde_json::from_str(&good_a.to_json()).unwrap();
    missing_field["data"]
        .as_object_mut()
        .unwrap()
        .remove("traveler_id");
    // A message as produce_raw takes it: key, value, headers.
    type Raw<'a> = (&'a [u8], Vec<u8>, &'a [(&'a str, &'a str)]);
    // In this order on the topic: a good event, one poisoned message per way
    // the consumer refuses one (not JSON, an unknown schema version, a
    // missing field), then another good event.
    let messages: [Raw; 5] = [
        (b"a", good_a.to_json().into_bytes(), &[]),
        (b"x", b"{not json".to_vec(), &[("origin", "fuzzer")]),
        (b"y", unknown_version.to_string().into_bytes(), &[]),
        (b"z", missing_field.to_string().into_bytes(), &[]),
        (b"b", good_b.to_json().into_bytes(), &[]),
    ];
    for (key, value, headers) in &messages {
        produce_raw(&brokers, &topic, key, value, headers).await;
    }

    let recorder = Arc::new(Recorder::default());
    recorder.fail_first.store(3, Ordering::SeqCst);
    let metrics = Arc::new(Metrics::new());
    let (stop, handle) = start_consumer(&config, &topic, recorder.clone(), metrics.clone());
    eventually(
        "both good events applied",
        Duration::from_secs(60),
        || async { (recorder.applied.lock().unwrap().len() >= 2).then_some(()) },
    )
    .await;
    stop.cancel();
    handle.await.unwrap();

    let mut applied = recorder.applied.lock().unwrap().clone();
    applied.sort();
    let mut expected = vec![good_a.event_id.clone(), good_b.event_id.clone()];
    expected.sort();
    assert_eq!(
        applied, expected,
        "each good event applied once, after the transient failures"
    );
    assert!(
        recorder.attempts.load(Ordering::SeqCst) >= 5,
        "transient failures were retried"
    );
    let exposition = metrics.encode();
    let consumed = |outcome: &str| {
        metric_sum(
            &exposition,
            "events_consumed_total",
            &[("topic", topic.as_str()), ("outcome", outcome)],
        )
    };
    assert_eq!(consumed("applied"), Some(2.0), "{exposition}");
    assert_eq!(consumed("dead_lettered"), Some(3.0), "{exposition}");
    assert!(
        consumed("retried").is_some_and(|n| n >= 3.0),
        "every failed attempt counted: {exposition}"
    );

    let dead = read_topic(&brokers, &format!("{topic}.dlq"), Duration::from_secs(10));
    let reasons: std::collections::HashMap<_, _> = dead
        .iter()
        .map(|m| (m.key.clone().unwrap(), m.header("dlq.reason").unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert_eq!(reasons[&b"x".to_vec()], "malformed_envelope");
    assert_eq!(reasons[&b"y".to_vec()], "unsupported_schema_version");
    assert_eq!(reasons[&b"z".to_vec()], "invalid_data");
    let poison = dead
        .iter()
        .find(|m| m.key.as_deref() == Some(b"x"))
        .unwrap();
    assert_eq!(poison.value, b"{not json", "original value kept");
    assert_eq!(
        poison.header("origin").as_deref(),
        Some("fuzzer"),
        "original headers kept"
    );
    assert_eq!(
        poison.header("dlq.original.topic").as_deref(),
        Some(topic.as_str())
    );

    // Same group again: committed offsets mean nothing is applied twice.
    let again = Arc::new(Recorder::default());
    let (stop, handle) = start_consumer(&config, &topic, again.clone(), Arc::new(Metrics::new()));
    let fresh = cancellation("c");
    produce_raw(&brokers, &topic, b"c", fresh.to_json().as_bytes(), &[]).await;
    eventually(
        "the new event applied after restart",
        Duration::from_secs(60),
        || async { (!again.applied.lock().unwrap().is_empty()).then_some(()) },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.cancel();
    handle.await.unwrap();
    assert_eq!(
        *again.applied.lock().unwrap(),
        vec![fresh.event_id],
        "nothing before the commit is re-applied"
    );
}
