//! What a service's event consumer is doing, for `/health/ready`.
//!
//! A consumer can be alive and still do nothing: a consumer-group
//! coordinator that hands a rejoining member no partitions leaves it
//! heartbeating happily while its events pile up (seen with the test broker,
//! see docs/reliability.md). The consumer loop records here which partitions
//! it holds, when it last reached the group coordinator, and whether it is
//! *stranded* (no partitions although the group has some nobody can hold);
//! readiness shows all of it and turns 503 while it is stranded, so an
//! operator sees an idle consumer instead of guessing.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::http::ReadinessCheck;

/// Shared between the consumer loop (which writes) and the readiness probe
/// (which reads). Cloning shares the same record.
#[derive(Clone)]
pub struct ConsumerStatus {
    group: String,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Partitions held, per topic, at the last look.
    assigned: BTreeMap<String, Vec<i32>>,
    last_poll_at: Option<DateTime<Utc>>,
    last_message_at: Option<DateTime<Utc>>,
    /// Why the consumer counts as stranded, while it does.
    stranded: Option<String>,
    /// Times the consumer left and rejoined its group because it was stranded.
    rejoins: u64,
}

impl ConsumerStatus {
    /// The status of the consumer of `group` (nothing known yet).
    pub fn new(group: impl Into<String>) -> Self {
        Self {
            group: group.into(),
            state: Arc::default(),
        }
    }

    /// The consumer group this consumer belongs to.
    pub fn group(&self) -> &str {
        &self.group
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().expect("consumer status lock"))
    }

    /// Records the partitions the consumer holds now.
    pub fn set_assigned(&self, assigned: BTreeMap<String, Vec<i32>>) {
        self.with(|s| s.assigned = assigned);
    }

    /// The consumer fetched messages, or reached its group coordinator: it
    /// is polling successfully.
    pub fn polled(&self) {
        let now = Utc::now();
        self.with(|s| s.last_poll_at = Some(now));
    }

    /// The consumer received a message (which is also a successful poll).
    pub fn received(&self) {
        let now = Utc::now();
        self.with(|s| {
            s.last_poll_at = Some(now);
            s.last_message_at = Some(now);
        });
    }

    /// Sets or clears the reason the consumer is stranded.
    pub fn set_stranded(&self, reason: Option<String>) {
        self.with(|s| s.stranded = reason);
    }

    /// Counts one rejoin of the group.
    pub fn rejoined(&self) {
        self.with(|s| s.rejoins += 1);
    }

    /// The partitions held at the last look, per topic.
    pub fn assigned(&self) -> BTreeMap<String, Vec<i32>> {
        self.with(|s| s.assigned.clone())
    }

    /// The report readiness shows for this consumer.
    pub fn report(&self) -> Value {
        self.with(|s| {
            let partitions: Vec<Value> = s
                .assigned
                .iter()
                .flat_map(|(topic, ps)| {
                    ps.iter()
                        .map(move |p| json!({"topic": topic, "partition": p}))
                })
                .collect();
            json!({
                "group": self.group,
                "assigned_partitions": partitions,
                "last_poll_at": s.last_poll_at.as_ref().map(events::timestamp::format),
                "last_message_at": s.last_message_at.as_ref().map(events::timestamp::format),
                "rejoins": s.rejoins,
            })
        })
    }
}

#[async_trait]
impl ReadinessCheck for ConsumerStatus {
    fn name(&self) -> &'static str {
        "consumers"
    }

    async fn check(&self) -> Result<(), String> {
        match self.with(|s| s.stranded.clone()) {
            Some(reason) => Err(format!(
                "consumer of group {} is stranded: {reason}",
                self.group
            )),
            None => Ok(()),
        }
    }

    fn details(&self) -> Option<Value> {
        Some(json!({ "consumers": [self.report()] }))
    }
}

/// How far the group has read one partition, at one look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionProgress {
    pub partition: i32,
    /// The group's committed offset, or the low watermark when it has none.
    pub committed: i64,
    /// The offset the next message will get.
    pub high: i64,
}

/// What one look found: per subscribed topic, the partitions this consumer
/// holds and how far the group has read each partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupLook {
    pub held: BTreeMap<String, Vec<i32>>,
    pub progress: BTreeMap<String, Vec<PartitionProgress>>,
}

/// Why a consumer is stranded, comparing this look with the one before, or
/// `None` when it is not: it holds no partition of a topic in which some
/// partition has events waiting (committed offset below the end) and that
/// partition's committed offset has not moved since the previous look — so
/// no member of the group is consuming it. A member with nothing to hold
/// (more members than partitions) or whose topics have nothing waiting is
/// not stranded.
///
/// It judges by the group's committed offsets and the partitions' ends
/// rather than by the coordinator's description of the group, because the
/// test broker cannot describe a group (tansu 0.6.0's SQLite storage fails
/// DescribeGroups and drops the connection; see docs/reliability.md).
pub fn stranded(before: &GroupLook, now: &GroupLook) -> Option<String> {
    now.progress.iter().find_map(|(topic, partitions)| {
        if now.held.get(topic).is_some_and(|held| !held.is_empty()) {
            return None;
        }
        let earlier = before.progress.get(topic)?;
        partitions.iter().find_map(|p| {
            let waiting = p.high - p.committed;
            let unmoved = earlier
                .iter()
                .any(|e| e.partition == p.partition && e.committed == p.committed);
            (waiting > 0 && unmoved).then(|| {
                format!(
                    "holds no partition of {topic} while partition {} has {waiting} event(s) waiting that no member consumes",
                    p.partition
                )
            })
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(held: &[i32], progress: &[(i32, i64, i64)]) -> GroupLook {
        let topic = "requests".to_string();
        GroupLook {
            held: BTreeMap::from([(topic.clone(), held.to_vec())]),
            progress: BTreeMap::from([(
                topic,
                progress
                    .iter()
                    .map(|&(partition, committed, high)| PartitionProgress {
                        partition,
                        committed,
                        high,
                    })
                    .collect(),
            )]),
        }
    }

    #[test]
    fn a_member_without_partitions_while_events_wait_unconsumed_is_stranded() {
        let before = look(&[], &[(0, 5, 9), (1, 3, 3)]);
        let now = look(&[], &[(0, 5, 12), (1, 3, 3)]);
        assert!(stranded(&before, &now).unwrap().contains("partition 0"));
    }

    #[test]
    fn a_member_holding_partitions_is_not_stranded() {
        let before = look(&[0], &[(0, 5, 9)]);
        assert_eq!(stranded(&before, &look(&[0], &[(0, 5, 9)])), None);
    }

    #[test]
    fn an_idle_member_whose_group_consumes_is_not_stranded() {
        // Another member holds partition 0 and moves on.
        let before = look(&[], &[(0, 5, 9)]);
        assert_eq!(stranded(&before, &look(&[], &[(0, 7, 9)])), None);
        // Nothing waits.
        let before = look(&[], &[(0, 9, 9)]);
        assert_eq!(stranded(&before, &look(&[], &[(0, 9, 9)])), None);
    }

    #[test]
    fn one_look_is_not_enough_to_judge() {
        let now = look(&[], &[(0, 5, 9)]);
        assert_eq!(stranded(&GroupLook::default(), &now), None);
    }

    #[tokio::test]
    async fn readiness_names_the_group_partitions_and_a_stranded_consumer() {
        let status = ConsumerStatus::new("owner-service");
        status.set_assigned(BTreeMap::from([("requests".to_string(), vec![0, 2])]));
        status.received();
        assert!(status.check().await.is_ok());
        let details = status.details().unwrap();
        let c = &details["consumers"][0];
        assert_eq!(c["group"], "owner-service");
        assert_eq!(
            c["assigned_partitions"],
            json!([{"topic": "requests", "partition": 0}, {"topic": "requests", "partition": 2}])
        );
        assert!(c["last_poll_at"].is_string());
        status.set_stranded(Some("holds nothing".into()));
        assert!(status.check().await.unwrap_err().contains("owner-service"));
    }
}
