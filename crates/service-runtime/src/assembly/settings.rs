//! The settings of a service that do not depend on its adapters: the same
//! fields for both services, read from the environment or defaulted.

use std::time::Duration;

use events::topics::Topics;

use crate::{
    config::{SecretString, ServiceConfig},
    identity::IdentityConfig,
    notifications::hub::StreamConfig,
};

/// What a service is assembled with besides its adapters. One type for both
/// services, so the embedded mode and the tests configure them alike.
/// `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// Signs and verifies the service's access tokens.
    pub jwt_secret: SecretString,
    /// The topic names, the same for both services.
    pub topics: Topics,
    /// How long each shutdown step may take (`SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
    /// Limits on logins and sign-ups, and whose `X-Forwarded-For` to believe.
    pub identity: IdentityConfig,
    /// Limits on notification streams.
    pub streams: StreamConfig,
}

impl ServiceSettings {
    /// The default topic names and limits, for the embedded mode and tests.
    pub fn with_default_topics(jwt_secret: &str, shutdown_timeout: Duration) -> Self {
        Self {
            jwt_secret: SecretString::from(jwt_secret),
            topics: Topics::default(),
            shutdown_timeout,
            identity: IdentityConfig::default(),
            streams: StreamConfig::default(),
        }
    }

    /// What the environment configured (`KAFKA_REQUEST_TOPIC`,
    /// `KAFKA_RESPONSE_TOPIC`, `KAFKA_PROPERTY_TOPIC`, ...).
    pub fn from_config(c: &ServiceConfig) -> Self {
        Self {
            jwt_secret: c.jwt_secret.clone(),
            topics: Topics {
                booking_requests: c.kafka.request_topic.clone(),
                booking_updates: c.kafka.response_topic.clone(),
                property_listings: c.kafka.property_topic.clone(),
            },
            shutdown_timeout: c.shutdown_timeout,
            identity: c.identity.clone(),
            streams: c.streams,
        }
    }
}
