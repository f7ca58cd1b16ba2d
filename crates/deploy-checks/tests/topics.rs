//! The topic script (`k8s/kafka/create-topics.sh`, run by the compose
//! `kafka-topics` service and the k8s `kafka-create-topics` Job) against the
//! topic names in the `events` crate. Needs no external tool.
//!
//! Why it matters: the brokers run with `auto.create.topics.enable=false`, so
//! a topic renamed in code but not in the script would only be created by the
//! services' start-up check, with whatever settings that uses, and a listings
//! topic without compaction would slowly lose the property catalog.

mod common;

use std::collections::BTreeSet;

use common::*;

#[test]
fn topic_script_creates_exactly_the_code_s_topics() {
    let created: Vec<String> = topic_script_lines().into_iter().map(|l| l.topic).collect();
    let unique: BTreeSet<String> = created.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        created.len(),
        "a topic is created twice: {created:?}"
    );
    assert_eq!(
        unique,
        expected_topics(),
        "{TOPICS_SCRIPT} must create the event topics of events::topics and their dead-letter topics"
    );
}

/// The property catalog is keyed by property id and only the latest snapshot
/// matters, so the listings topic is compacted. Dead-letter topics are not:
/// compaction would drop earlier dead letters with the same key.
#[test]
fn only_the_listings_topic_is_compacted() {
    for line in topic_script_lines() {
        let compacted = line.args.contains("cleanup.policy=compact");
        let should = line.topic == events::topics::PROPERTY_LISTINGS;
        assert_eq!(
            compacted, should,
            "{}: cleanup.policy=compact is {} but should be {}",
            line.topic, compacted, should
        );
    }
}

/// The partition count, replication factor and min.insync.replicas are
/// parameters of the script, so compose (1 broker) and k8s (3 brokers) can
/// share it; deploy-checks compares those parameters with each deployment.
#[test]
fn topic_script_takes_its_sizes_from_the_environment() {
    let script = read(TOPICS_SCRIPT);
    for var in [
        "PARTITIONS",
        "REPLICATION_FACTOR",
        "MIN_INSYNC_REPLICAS",
        "BOOTSTRAP_SERVERS",
    ] {
        assert!(
            script.contains(&format!("${{{var}:?")),
            "{TOPICS_SCRIPT} must require {var}"
        );
    }
    assert!(
        script.contains("--if-not-exists"),
        "the script must be safe to re-run"
    );
}
