//! Consumer lag and assignment from librdkafka's statistics, which the
//! client emits every `statistics.interval.ms` to its context.

use rdkafka::{
    client::ClientContext,
    consumer::ConsumerContext,
    statistics::{Partition, Statistics},
};
use std::sync::Arc;

use super::{Metrics, PartitionLabels, TopicLabels};

/// How often librdkafka reports statistics to [`ConsumerStats`], in ms.
pub const STATISTICS_INTERVAL_MS: &str = "5000";

/// The consumer's client context: hands each statistics report to the
/// service's metrics.
pub struct ConsumerStats {
    metrics: Arc<Metrics>,
}

impl ConsumerStats {
    /// A context reporting into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl ClientContext for ConsumerStats {
    fn stats(&self, statistics: Statistics) {
        self.metrics.kafka_consumer_statistics(&statistics);
    }
}

impl ConsumerContext for ConsumerStats {}

/// A partition's lag: high watermark minus committed offset; before the
/// group committed anything, everything retained (high minus low watermark).
/// `None` while the watermarks are unknown.
fn lag(p: &Partition) -> Option<i64> {
    if p.consumer_lag >= 0 {
        Some(p.consumer_lag)
    } else if p.hi_offset >= 0 && p.committed_offset < 0 {
        Some(p.hi_offset - p.lo_offset.max(0))
    } else {
        None
    }
}

impl Metrics {
    /// Sets how many partitions of `topic` this consumer holds.
    pub fn kafka_assigned_partitions(&self, topic: &str, count: usize) {
        self.kafka_assigned
            .get_or_create(&TopicLabels {
                topic: topic.to_string(),
            })
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets the lag of one assigned partition.
    pub fn kafka_partition_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.kafka_lag
            .get_or_create(&PartitionLabels {
                topic: topic.to_string(),
                partition,
            })
            .set(lag);
    }

    /// Replaces the lag and assignment gauges with one statistics report:
    /// partitions no longer assigned disappear from `kafka_consumer_lag`.
    pub fn kafka_consumer_statistics(&self, statistics: &Statistics) {
        self.kafka_lag.clear();
        self.kafka_assigned.clear();
        for (name, topic) in &statistics.topics {
            let assigned: Vec<&Partition> = topic
                .partitions
                .values()
                // -1 is librdkafka's internal "unassigned" partition.
                .filter(|p| p.partition >= 0 && p.desired)
                .collect();
            self.kafka_assigned_partitions(name, assigned.len());
            for p in assigned {
                if let Some(lag) = lag(p) {
                    self.kafka_partition_lag(name, p.partition, lag);
                }
            }
        }
    }
}
