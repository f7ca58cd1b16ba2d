//! Topic creation at start-up: [`ensure_topics`] creates each
//! [`TopicSpec`] and its dead-letter twin if missing.

use std::time::Duration;

use rdkafka::{
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
    config::ClientConfig,
    error::RDKafkaErrorCode,
};

use crate::config::KafkaConfig;

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
