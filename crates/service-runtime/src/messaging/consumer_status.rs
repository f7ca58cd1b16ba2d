//! What a service's event consumer is doing, for `/health/ready`.
//!
//! The consumer's client context records here, from callbacks librdkafka
//! makes anyway, which partitions the consumer holds (each rebalance), when
//! it last reached its group coordinator (each statistics report) and when
//! it last received a message; readiness shows all of it, so an operator
//! sees an idle or unassigned consumer instead of guessing. Group
//! membership itself is the broker's to decide: nothing here rejoins.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::http::ReadinessCheck;

/// Shared between the consumer (whose callbacks write) and the readiness
/// probe (which reads). Cloning shares the same record.
#[derive(Clone)]
pub struct ConsumerStatus {
    group: String,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// Partitions held now, per topic.
    assigned: BTreeMap<String, Vec<i32>>,
    last_poll_at: Option<DateTime<Utc>>,
    last_message_at: Option<DateTime<Utc>>,
    /// Assignments received: the first join and every rebalance after it.
    assignments: u64,
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

    /// A rebalance gave the consumer these partitions (eager assignment
    /// hands over the whole set, incremental only what is new: both add).
    pub fn assigned(&self, partitions: &BTreeMap<String, Vec<i32>>) {
        self.with(|s| {
            s.assignments += 1;
            for (topic, ps) in partitions {
                let held = s.assigned.entry(topic.clone()).or_default();
                held.extend(ps);
                held.sort_unstable();
                held.dedup();
            }
        });
    }

    /// A rebalance took these partitions away.
    pub fn revoked(&self, partitions: &BTreeMap<String, Vec<i32>>) {
        self.with(|s| {
            for (topic, ps) in partitions {
                if let Some(held) = s.assigned.get_mut(topic) {
                    held.retain(|p| !ps.contains(p));
                }
            }
            s.assigned.retain(|_, held| !held.is_empty());
        });
    }

    /// The consumer reached its group coordinator: it is polling
    /// successfully.
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

    /// The partitions held now, per topic.
    pub fn partitions(&self) -> BTreeMap<String, Vec<i32>> {
        self.with(|s| s.assigned.clone())
    }

    /// The report readiness shows for this consumer. `rejoins` counts the
    /// rebalances after the first assignment: each one made this member
    /// rejoin its group (a replica came or went, or this one was away
    /// longer than its session).
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
                "rejoins": s.assignments.saturating_sub(1),
            })
        })
    }
}

#[async_trait]
impl ReadinessCheck for ConsumerStatus {
    fn name(&self) -> &'static str {
        "consumers"
    }

    /// Always ready: a consumer that holds nothing may be one replica too
    /// many, and one whose broker is away is what the `kafka` check says.
    async fn check(&self) -> Result<(), String> {
        Ok(())
    }

    fn details(&self) -> Option<Value> {
        Some(json!({ "consumers": [self.report()] }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests(ps: &[i32]) -> BTreeMap<String, Vec<i32>> {
        BTreeMap::from([("requests".to_string(), ps.to_vec())])
    }

    #[tokio::test]
    async fn readiness_names_the_group_and_the_partitions_held() {
        let status = ConsumerStatus::new("owner-service");
        status.assigned(&requests(&[2, 0]));
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
        assert_eq!(c["rejoins"], 0);
    }

    #[test]
    fn a_rebalance_replaces_what_is_held_and_counts_as_a_rejoin() {
        let status = ConsumerStatus::new("g");
        status.assigned(&requests(&[0, 1, 2]));
        // A second replica joins: eager rebalancing revokes everything,
        // then assigns this member its share.
        status.revoked(&requests(&[0, 1, 2]));
        assert!(status.partitions().is_empty());
        status.assigned(&requests(&[0, 1]));
        assert_eq!(status.partitions(), requests(&[0, 1]));
        assert_eq!(status.report()["rejoins"], 1);
        // Incremental (cooperative) rebalancing revokes and adds parts.
        status.revoked(&requests(&[1]));
        status.assigned(&requests(&[2]));
        assert_eq!(status.partitions(), requests(&[0, 2]));
    }
}
