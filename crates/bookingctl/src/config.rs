//! The connection settings, read from the same variables as the services.
//!
//! An operator's shell (or a Kubernetes Job) that can run a service can run
//! `bookingctl` with the same environment. Each command asks only for what
//! it uses: `events tail` needs no database, `outbox status` no broker.

use clap::Args;
use mongodb::Database;
use secrecy::{ExposeSecret, SecretString};

use crate::error::{CtlError, CtlResult};

/// Where the broker and the databases are, and the topic names in use.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(long, env = "KAFKA_BROKERS", global = true)]
    pub kafka_brokers: Option<String>,
    /// MongoDB connection string (its value is never printed).
    #[arg(long, env = "MONGODB_URI", global = true, hide_env_values = true, value_parser = secret)]
    pub mongodb_uri: Option<SecretString>,
    /// traveler → owner booking requests.
    #[arg(long, env = "KAFKA_REQUEST_TOPIC", global = true, default_value = events::topics::BOOKING_REQUESTS)]
    pub request_topic: String,
    /// owner → traveler status changes.
    #[arg(long, env = "KAFKA_RESPONSE_TOPIC", global = true, default_value = events::topics::BOOKING_UPDATES)]
    pub response_topic: String,
    /// owner → traveler property catalog (compacted).
    #[arg(long, env = "KAFKA_PROPERTY_TOPIC", global = true, default_value = events::topics::PROPERTY_LISTINGS)]
    pub property_topic: String,
    /// traveler-service's database.
    #[arg(long, env = "TRAVELER_MONGODB_DATABASE", global = true, default_value = traveler_service::DEFAULTS.database)]
    pub traveler_database: String,
    /// owner-service's database.
    #[arg(long, env = "OWNER_MONGODB_DATABASE", global = true, default_value = owner_service::DEFAULTS.database)]
    pub owner_database: String,
    /// Where replayed dead letters are recorded. Default: the database of
    /// the service that consumes the topic, whose credentials a pod of that
    /// service already has.
    #[arg(long, env = "DLQ_REPLAY_MONGODB_DATABASE", global = true)]
    pub replay_database: Option<String>,
}

impl Connection {
    /// The bootstrap servers, or a configuration error naming the variable.
    pub fn brokers(&self) -> CtlResult<&str> {
        self.kafka_brokers
            .as_deref()
            .filter(|b| !b.trim().is_empty())
            .ok_or_else(|| CtlError::Config("KAFKA_BROKERS is required but not set".into()))
    }

    /// A handle on `database` (connecting lazily, like the services).
    pub async fn database(&self, database: &str) -> CtlResult<Database> {
        let uri = self
            .mongodb_uri
            .as_ref()
            .filter(|u| !u.expose_secret().trim().is_empty())
            .ok_or_else(|| CtlError::Config("MONGODB_URI is required but not set".into()))?;
        let text = uri.expose_secret();
        if !(text.starts_with("mongodb://") || text.starts_with("mongodb+srv://")) {
            return Err(CtlError::Config(
                "MONGODB_URI must start with mongodb:// or mongodb+srv://".into(),
            ));
        }
        service_runtime::mongo::connect(uri, database, "bookingctl")
            .await
            .map_err(|e| CtlError::Config(e.to_string()))
    }

    /// The database that records the replays of `topic`'s dead letters.
    pub fn replay_database(&self, topic: &str) -> CtlResult<&str> {
        if let Some(db) = self.replay_database.as_deref() {
            return Ok(db);
        }
        match self.topic_kind(topic) {
            Some(TopicKind::BookingRequests) => Ok(&self.owner_database),
            Some(TopicKind::BookingUpdates | TopicKind::PropertyListings) => {
                Ok(&self.traveler_database)
            }
            None => Err(CtlError::Config(format!(
                "{topic} is none of the configured topics (KAFKA_REQUEST_TOPIC, \
                 KAFKA_RESPONSE_TOPIC, KAFKA_PROPERTY_TOPIC); set DLQ_REPLAY_MONGODB_DATABASE"
            ))),
        }
    }

    /// Which payload type a topic (or its dead-letter twin) carries.
    pub fn topic_kind(&self, topic: &str) -> Option<TopicKind> {
        let base = topic.strip_suffix(".dlq").unwrap_or(topic);
        if base == self.request_topic {
            Some(TopicKind::BookingRequests)
        } else if base == self.response_topic {
            Some(TopicKind::BookingUpdates)
        } else if base == self.property_topic {
            Some(TopicKind::PropertyListings)
        } else {
            None
        }
    }
}

/// A secret argument: kept in a type that never prints it.
fn secret(value: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(value.to_string()))
}

/// The three topics of the system, by what they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    BookingRequests,
    BookingUpdates,
    PropertyListings,
}
