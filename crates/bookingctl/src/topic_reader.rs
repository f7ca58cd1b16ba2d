//! Reading a topic without joining a consumer group: every partition is
//! assigned by hand, so reading never moves a service's offsets or takes
//! partitions away from its consumers.

use std::{collections::HashMap, time::Duration};

use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer, StreamConsumer},
    message::{Headers, Message},
    Offset, TopicPartitionList,
};

use crate::error::{CtlError, CtlResult};

/// How long a read waits for the broker before giving up.
const BROKER_TIMEOUT: Duration = Duration::from_secs(10);

/// How long reading to the end may go without a single message before it
/// fails: the end offsets were known, so the broker owes us data.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// One message as read, with where it was.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// A header's value as text (the first one of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    /// The key as text.
    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

/// Where reading starts in each partition.
#[derive(Debug, Clone)]
pub enum Start {
    Beginning,
    End,
    /// Per partition (a partition not named starts at the beginning).
    At(HashMap<i32, i64>),
}

/// A topic being read, knowing where each partition ended when it was opened.
pub struct TopicReader {
    consumer: StreamConsumer,
    topic: String,
    /// Per partition: the next offset to read and the end offset at open.
    positions: HashMap<i32, (i64, i64)>,
}

impl TopicReader {
    /// Opens `topic` on `brokers`, positioned at `start`. A topic that does
    /// not exist reads as empty.
    pub async fn open(brokers: &str, topic: &str, start: Start) -> CtlResult<Self> {
        let (brokers_owned, topic_owned) = (brokers.to_string(), topic.to_string());
        let watermarks =
            tokio::task::spawn_blocking(move || watermarks(&brokers_owned, &topic_owned))
                .await
                .map_err(|e| CtlError::unavailable("reading watermarks", e))??;
        let consumer: StreamConsumer = client_config(brokers)
            .create()
            .map_err(|e| CtlError::unavailable("creating a Kafka consumer", e))?;
        let mut assignment = TopicPartitionList::new();
        let mut positions = HashMap::new();
        for (&partition, &(low, high)) in &watermarks {
            let from = match &start {
                Start::Beginning => low,
                Start::End => high,
                Start::At(offsets) => offsets.get(&partition).copied().unwrap_or(low).max(low),
            };
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(from))
                .map_err(|e| CtlError::unavailable("assigning a partition", e))?;
            positions.insert(partition, (from, high));
        }
        if !positions.is_empty() {
            consumer
                .assign(&assignment)
                .map_err(|e| CtlError::unavailable(format!("reading {topic}"), e))?;
        }
        Ok(Self {
            consumer,
            topic: topic.to_string(),
            positions,
        })
    }

    /// The end offset of each partition when the topic was opened.
    pub fn ends(&self) -> HashMap<i32, i64> {
        self.positions
            .iter()
            .map(|(&p, &(_, end))| (p, end))
            .collect()
    }

    /// How many messages lie between the start and the end offsets at open
    /// (an upper bound on a compacted topic, whose offsets have gaps).
    pub fn remaining(&self) -> u64 {
        self.positions
            .values()
            .map(|&(next, end)| (end - next).max(0) as u64)
            .sum()
    }

    fn at_end(&self) -> bool {
        self.positions.values().all(|&(next, end)| next >= end)
    }

    /// The next message before the end offsets known at open, or `None`
    /// once every partition has reached its end.
    pub async fn next_until_end(&mut self) -> CtlResult<Option<Record>> {
        while !self.at_end() {
            let record = match tokio::time::timeout(STALL_TIMEOUT, self.recv()).await {
                Ok(record) => record?,
                Err(_) => {
                    return Err(CtlError::unavailable(
                        format!("reading {}", self.topic),
                        format!(
                            "no message for {STALL_TIMEOUT:?} although {} remain before the end",
                            self.remaining()
                        ),
                    ))
                }
            };
            let (_, end) = self.positions[&record.partition];
            if record.offset >= end {
                // Written after the topic was opened: past this read's end.
                continue;
            }
            return Ok(Some(record));
        }
        Ok(None)
    }

    /// The next message, waiting for new ones (following the topic).
    pub async fn next(&mut self) -> CtlResult<Record> {
        self.recv().await
    }

    async fn recv(&mut self) -> CtlResult<Record> {
        let message = self
            .consumer
            .recv()
            .await
            .map_err(|e| CtlError::unavailable(format!("reading {}", self.topic), e))?;
        let record = Record {
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().unwrap_or_default().to_vec(),
            headers: message
                .headers()
                .map(|hs| {
                    hs.iter()
                        .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        };
        if let Some(position) = self.positions.get_mut(&record.partition) {
            position.0 = position.0.max(record.offset + 1);
        }
        Ok(record)
    }
}

/// A client that never joins a group or commits: it only reads.
fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        // Required by the client even for hand-assigned reads; never joined.
        .set("group.id", format!("bookingctl-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    config
}

/// Low and high watermark of every partition of `topic` (empty if the topic
/// does not exist).
fn watermarks(brokers: &str, topic: &str) -> CtlResult<HashMap<i32, (i64, i64)>> {
    let consumer: BaseConsumer = client_config(brokers)
        .create()
        .map_err(|e| CtlError::unavailable("creating a Kafka consumer", e))?;
    let metadata = consumer
        .fetch_metadata(Some(topic), BROKER_TIMEOUT)
        .map_err(|e| CtlError::unavailable(format!("reading the metadata of {topic}"), e))?;
    let mut marks = HashMap::new();
    let Some(meta) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        return Ok(marks);
    };
    for p in meta.partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, p.id(), BROKER_TIMEOUT)
            .map_err(|e| CtlError::unavailable(format!("reading the offsets of {topic}"), e))?;
        marks.insert(p.id(), (low, high));
    }
    Ok(marks)
}
