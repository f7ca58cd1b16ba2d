//! Helpers shared by the test suites.
//!
//! Integration tests reach the real Kafka-protocol broker and MongoDB-protocol
//! server started by `scripts/test-servers.sh`, through `TEST_KAFKA_BROKERS`
//! and `TEST_MONGODB_URI`. When those are missing, [`real_servers`] fails the
//! test if `CI` is set, and otherwise returns `None` after printing a
//! `SKIPPED` line — never a silent pass.

use std::time::Duration;

pub mod store;

use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    message::{Header, Headers, Message, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
    TopicPartitionList,
};

/// Addresses of the real test servers.
#[derive(Debug, Clone)]
pub struct RealServers {
    pub mongodb_uri: String,
    pub kafka_brokers: String,
}

/// Whether this is a CI run (`CI` set to anything but empty/`false`/`0`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The real servers, or `None` (with a loud SKIPPED line) outside CI.
///
/// # Panics
/// Under CI when the servers are not configured: a test that needs them must
/// fail rather than pass without running.
pub fn real_servers(test: &str) -> Option<RealServers> {
    let mongodb_uri = std::env::var("TEST_MONGODB_URI")
        .ok()
        .filter(|v| !v.is_empty());
    let kafka_brokers = std::env::var("TEST_KAFKA_BROKERS")
        .ok()
        .filter(|v| !v.is_empty());
    match (mongodb_uri, kafka_brokers) {
        (Some(mongodb_uri), Some(kafka_brokers)) => Some(RealServers {
            mongodb_uri,
            kafka_brokers,
        }),
        _ if is_ci() => panic!(
            "{test}: TEST_MONGODB_URI and TEST_KAFKA_BROKERS must be set under CI \
             (run scripts/test.sh, which starts the servers)"
        ),
        _ => {
            // Straight to the process's stderr: libtest captures `eprintln!`
            // of passing tests, which would make this skip silent.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: real servers not configured; run scripts/test.sh \
                 (or scripts/test-servers.sh start && source .test-servers/env)"
            );
            None
        }
    }
}

/// A name no other test uses: `prefix-<12 hex>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new, empty database on the test server, for one test.
pub async fn fresh_database(servers: &RealServers, prefix: &str) -> mongodb::Database {
    let client = mongodb::Client::with_uri_str(&servers.mongodb_uri)
        .await
        .expect("connect to the test MongoDB server");
    client.database(&unique(prefix).replace('-', "_"))
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
fn watermarks(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    deadline: std::time::Instant,
) -> (i64, i64) {
    loop {
        match consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)) {
            Ok(w) => return w,
            Err(e) if std::time::Instant::now() >= deadline => {
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
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("probe"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("probe consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(5))
        .expect("topic metadata");
    let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Vec::new();
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut assignment = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in meta.partitions() {
        let (low, high) = watermarks(&consumer, topic, p.id(), deadline);
        if high > low {
            assignment
                .add_partition_offset(topic, p.id(), rdkafka::Offset::Offset(low))
                .expect("assign");
            ends.push((p.id(), high));
        }
    }
    if ends.is_empty() {
        return Vec::new();
    }
    consumer.assign(&assignment).expect("assign partitions");
    let mut out = Vec::new();
    let mut done = std::collections::HashSet::new();
    while done.len() < ends.len() && std::time::Instant::now() < deadline {
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
/// messages, replays).
pub async fn produce_raw(
    brokers: &str,
    topic: &str,
    key: &[u8],
    value: &[u8],
    headers: &[(&str, &str)],
) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "4000000")
        .create()
        .expect("test producer");
    let mut hs = OwnedHeaders::new();
    for (k, v) in headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value).headers(hs),
            Timeout::After(Duration::from_secs(10)),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("produce test message");
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `timeout` with `what` — for effects that arrive asynchronously.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples of `name` in a Prometheus/OpenMetrics text
/// exposition whose labels include every pair of `labels`; `None` when no
/// sample matches (the family or that label combination is absent).
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total: Option<f64> = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(pair) => pair,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if let (true, Ok(v)) = (matches, value.parse::<f64>()) {
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}
