//! Kafka as the tests see it: reading topics back without joining a group,
//! writing raw messages, watermarks and a group's committed offsets.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::{Duration, Instant},
};

use events::{
    cloud_event_headers, BookingRequestEvent, BookingRequested, BookingStatus, Envelope,
    EventPayload, Stay,
};
use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    message::{Header, Headers, Message, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
    Offset, TopicPartitionList,
};

use crate::{eventually, unique, RECOVERY};

/// A probe consumer in `group` that commits nothing.
pub fn probe(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("probe consumer")
}

/// A message read back from a topic.
#[derive(Debug, Clone)]
pub struct ReadMessage {
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub partition: i32,
    pub offset: i64,
}

impl ReadMessage {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.value).expect("message value is JSON")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }
}

/// A partition's low and high watermarks. Right after a broker restart its
/// partitions have no leader for a moment (`NotLeaderForPartition`): asks
/// again until `deadline`, then panics with the last error.
fn partition_watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    deadline: Instant,
) -> (i64, i64) {
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
            Ok(w) => return w,
            Err(e) if Instant::now() >= deadline => {
                panic!("watermarks of {topic}/{partition}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Reads every message currently in `topic` (all partitions, from the start),
/// without joining a consumer group. Returns once each partition's end (its
/// high watermark when the read started) is reached; panics if `timeout`
/// passes first, so a slow broker never passes for a short topic.
pub fn read_topic(brokers: &str, topic: &str, timeout: Duration) -> Vec<ReadMessage> {
    let consumer = probe(brokers, &unique("probe"));
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("topic metadata");
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Vec::new();
    };
    let deadline = Instant::now() + timeout;
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in meta.partitions() {
        let (low, high) = partition_watermarks(&consumer, topic, p.id(), deadline);
        if high > low {
            assignment
                .add_partition_offset(topic, p.id(), Offset::Offset(low))
                .expect("assign");
            ends.push((p.id(), high));
        }
    }
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&assignment).expect("assign partitions");
    let mut out = Vec::new();
    let mut done = HashSet::new();
    while done.len() < ends.len() && Instant::now() < deadline {
        let Some(result) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        // A partition without a leader for a moment (a broker that just
        // restarted elects them) is retried by the client: wait on.
        let Ok(m) = result else {
            continue;
        };
        out.push(ReadMessage {
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().unwrap_or_default().to_vec(),
            headers: m
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
            partition: m.partition(),
            offset: m.offset(),
        });
        if let Some((_, high)) = ends.iter().find(|(p, _)| *p == m.partition()) {
            if m.offset() + 1 >= *high {
                done.insert(m.partition());
            }
        }
    }
    let unfinished: Vec<_> = ends.iter().filter(|(p, _)| !done.contains(p)).collect();
    assert!(
        unfinished.is_empty(),
        "reading {topic}: partitions (id, end offset) {unfinished:?} not read to the end \
         within {timeout:?}; {} messages read",
        out.len()
    );
    out
}

/// Writes a raw message straight to a topic, bypassing the services (poison
/// messages, replays); panics if the broker refuses it.
pub async fn produce_raw(
    brokers: &str,
    topic: &str,
    key: &[u8],
    value: &[u8],
    headers: &[(&str, &str)],
) {
    let headers: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
        .collect();
    produce(brokers, topic, key, value, &headers)
        .await
        .expect("produce test message");
}

/// Writes `envelope` to `topic` under `key` as the services' relays do: its
/// JSON with the CloudEvents headers; panics if the broker refuses it.
pub async fn produce_event<P: EventPayload>(
    brokers: &str,
    topic: &str,
    key: &[u8],
    envelope: &Envelope<P>,
) {
    let headers: Vec<(String, Vec<u8>)> = cloud_event_headers(envelope)
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    produce(brokers, topic, key, envelope.to_json().as_bytes(), &headers)
        .await
        .expect("produce test event");
}

/// A `booking.requested` from traveler-service: a PENDING stay of 2 nights
/// for 2 guests from `days_ahead` days after today, 225.00 in `currency`.
pub fn booking_requested(
    booking_id: &str,
    property_id: &str,
    owner_id: &str,
    traveler_id: &str,
    days_ahead: i64,
    currency: &str,
) -> Envelope<BookingRequestEvent> {
    let check_in = chrono::Utc::now().date_naive() + chrono::Duration::days(days_ahead);
    Envelope::new(
        "traveler-service",
        BookingRequestEvent::Requested(BookingRequested {
            booking_id: booking_id.into(),
            stay: Stay {
                property_id: property_id.into(),
                check_in,
                check_out: check_in + chrono::Duration::days(2),
                nights: 2,
                guests: 2,
                total_price_cents: 22500,
                currency: currency.into(),
            },
            owner_id: owner_id.into(),
            traveler_id: traveler_id.into(),
            status: BookingStatus::Pending,
            created_at: events::timestamp::now(),
        }),
    )
}

/// `(low, high)` watermarks of each partition of `topic`.
pub fn watermarks(brokers: &str, topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let consumer = probe(brokers, &unique("probe"));
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut out = BTreeMap::new();
    if let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) {
        for p in meta.partitions() {
            let deadline = Instant::now() + Duration::from_secs(10);
            out.insert(
                p.id(),
                partition_watermarks(&consumer, topic, p.id(), deadline),
            );
        }
    }
    out
}

/// The offsets `group` has committed on each partition of `topic` (absent:
/// nothing committed there), read without joining the group.
pub fn committed(brokers: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let partitions: Vec<i32> = watermarks(brokers, topic).keys().copied().collect();
    let consumer = probe(brokers, group);
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition(topic, *p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Waits until `group` has committed the end of every non-empty partition
/// of `topic` (it has consumed everything there is).
pub async fn wait_consumed(brokers: &str, group: &str, topic: &str) {
    eventually(
        &format!("{group} consumed all of {topic}"),
        RECOVERY,
        || async {
            let ends = watermarks(brokers, topic);
            let done = committed(brokers, group, topic);
            ends.iter()
                .all(|(p, (low, high))| high <= low || done.get(p).is_some_and(|c| c >= high))
                .then_some(())
        },
    )
    .await;
}

/// Writes one raw message; reports a refusal instead of panicking (to find
/// the broker's size limit).
pub async fn produce(
    brokers: &str,
    topic: &str,
    key: &[u8],
    value: &[u8],
    headers: &[(String, Vec<u8>)],
) -> Result<(i32, i64), String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "4000000")
        .set("message.timeout.ms", "15000")
        .create()
        .expect("test producer");
    let mut hs = OwnedHeaders::new();
    for (k, v) in headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value).headers(hs),
            Timeout::After(Duration::from_secs(15)),
        )
        .await
        .map(|delivery| (delivery.partition, delivery.offset))
        .map_err(|(e, _)| e.to_string())
}

/// How long reading a whole topic may take. Generous: eight fault tests
/// share two cores with their brokers, and a short read is a failure.
const TOPIC_READ: Duration = Duration::from_secs(30);

/// Reads a whole topic, retrying until it holds at least `min` messages.
pub async fn read_at_least(brokers: &str, topic: &str, min: usize) -> Vec<ReadMessage> {
    eventually(
        &format!("{topic} holds at least {min} messages"),
        RECOVERY,
        || {
            let (brokers, topic) = (brokers.to_string(), topic.to_string());
            async move {
                let all =
                    tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, TOPIC_READ))
                        .await
                        .unwrap();
                (all.len() >= min).then_some(all)
            }
        },
    )
    .await
}

/// Every message of a topic, read on a blocking thread.
pub async fn read_all(brokers: &str, topic: &str) -> Vec<ReadMessage> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, TOPIC_READ))
        .await
        .unwrap()
}

/// How many messages carry each key (UTF-8 keys only).
pub fn per_key(messages: &[ReadMessage]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for m in messages {
        if let Some(k) = &m.key {
            *out.entry(String::from_utf8_lossy(k).into_owned())
                .or_default() += 1;
        }
    }
    out
}
