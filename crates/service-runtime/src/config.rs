//! Typed configuration read from environment variables.
//!
//! Both services read the same variables; only the defaults differ
//! ([`ServiceDefaults`]). A missing or malformed required variable is a
//! [`ConfigError`] whose one-line message names the variable, so a binary can
//! print it and exit before doing anything else. [`env_spec`] lists every
//! variable with its default; `.env.example` and the deployment checks are kept
//! honest against it.

use std::time::Duration;

use crate::identity::{throttle::DEFAULT_SIGNUPS_PER_ADDRESS, IdentityConfig};

/// What differs between the two services' configurations.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    /// Service name: the Kafka consumer group, the CloudEvents `source`, log field.
    pub name: &'static str,
    pub port: u16,
    pub database: &'static str,
}

/// How log lines are written: JSON for production collectors, pretty for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Kafka settings shared by the producer, the consumer and the topic creator.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    pub brokers: String,
    pub group_id: String,
    pub request_topic: String,
    pub response_topic: String,
    pub property_topic: String,
    pub topic_partitions: i32,
    pub topic_replication_factor: i32,
    pub session_timeout_ms: u32,
}

/// Everything a service binary needs to start.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub service_name: &'static str,
    pub port: u16,
    pub mongodb_uri: String,
    pub mongodb_database: String,
    pub kafka: KafkaConfig,
    pub jwt_secret: String,
    pub log_format: LogFormat,
    /// How long in-flight work may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Limits on logins and sign-ups, and whose `X-Forwarded-For` to believe.
    pub identity: IdentityConfig,
}

/// One environment variable the binaries read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    /// `None`: required, the binary refuses to start without it.
    pub default: Option<String>,
    pub description: &'static str,
}

/// A configuration problem, phrased as the single line a binary prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}

/// Minimum JWT secret length: shorter HMAC keys are guessable.
pub const MIN_JWT_SECRET_LEN: usize = 32;

/// Every variable with its default for a service, in documentation order.
pub fn env_spec(d: ServiceDefaults) -> Vec<EnvVar> {
    let v = |name, default: Option<String>, description| EnvVar {
        name,
        default,
        description,
    };
    vec![
        v("PORT", Some(d.port.to_string()), "HTTP port"),
        v("MONGODB_URI", None, "MongoDB connection string"),
        v(
            "MONGODB_DATABASE",
            Some(d.database.into()),
            "database owned by this service",
        ),
        v("KAFKA_BROKERS", None, "comma-separated bootstrap servers"),
        v(
            "KAFKA_REQUEST_TOPIC",
            Some(events::topics::BOOKING_REQUESTS.into()),
            "traveler → owner booking requests",
        ),
        v(
            "KAFKA_RESPONSE_TOPIC",
            Some(events::topics::BOOKING_UPDATES.into()),
            "owner → traveler status changes",
        ),
        v(
            "KAFKA_PROPERTY_TOPIC",
            Some(events::topics::PROPERTY_LISTINGS.into()),
            "owner → traveler property catalog (compacted)",
        ),
        v(
            "KAFKA_GROUP_ID",
            Some(d.name.into()),
            "consumer group of this service",
        ),
        v(
            "KAFKA_TOPIC_PARTITIONS",
            Some("6".into()),
            "partitions for topics created at start-up",
        ),
        v(
            "KAFKA_TOPIC_REPLICATION_FACTOR",
            Some("1".into()),
            "replication factor for topics created at start-up",
        ),
        v(
            "KAFKA_SESSION_TIMEOUT_MS",
            Some("10000".into()),
            "consumer session timeout",
        ),
        v(
            "JWT_SECRET",
            None,
            "HMAC key for access tokens, at least 32 bytes",
        ),
        v("RUST_LOG", Some("info".into()), "log filter"),
        v("LOG_FORMAT", Some("json".into()), "json or pretty"),
        v(
            "SHUTDOWN_TIMEOUT_SECS",
            Some("20".into()),
            "grace period for in-flight work after SIGTERM",
        ),
        v(
            "TRUSTED_PROXIES",
            Some(String::new()),
            "comma-separated CIDR ranges of proxies whose X-Forwarded-For names the client; empty: the socket peer is the client",
        ),
        v(
            "SIGNUP_LIMIT_PER_ADDRESS",
            Some(DEFAULT_SIGNUPS_PER_ADDRESS.to_string()),
            "sign-ups per client address in 15 minutes",
        ),
    ]
}

impl ServiceConfig {
    /// Reads the process environment.
    pub fn from_env(d: ServiceDefaults) -> Result<Self, ConfigError> {
        Self::from_lookup(d, |k| std::env::var(k).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the
    /// process environment.
    pub fn from_lookup(
        d: ServiceDefaults,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let spec = env_spec(d);
        let get = |name: &'static str| -> Result<String, ConfigError> {
            let default = spec
                .iter()
                .find(|v| v.name == name)
                .and_then(|v| v.default.clone());
            match lookup(name).filter(|v| !v.trim().is_empty()) {
                Some(value) => Ok(value.trim().to_string()),
                None => default.ok_or(ConfigError::Missing(name)),
            }
        };
        let number = |name: &'static str, min: i64, max: i64| -> Result<i64, ConfigError> {
            let value = get(name)?;
            match value.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(ConfigError::Invalid {
                    name,
                    value,
                    reason: format!("expected a whole number from {min} to {max}"),
                }),
            }
        };

        // Checked in the documented order, so the first problem named is the
        // first one in `.env.example`.
        let port = number("PORT", 0, 65535)? as u16;
        let mongodb_uri = get("MONGODB_URI")?;
        if !(mongodb_uri.starts_with("mongodb://") || mongodb_uri.starts_with("mongodb+srv://")) {
            return Err(ConfigError::Invalid {
                name: "MONGODB_URI",
                value: mongodb_uri,
                reason: "must start with mongodb:// or mongodb+srv://".into(),
            });
        }
        let mongodb_database = get("MONGODB_DATABASE")?;
        let brokers = get("KAFKA_BROKERS")?;
        let jwt_secret = get("JWT_SECRET")?;
        if jwt_secret.len() < MIN_JWT_SECRET_LEN {
            return Err(ConfigError::Invalid {
                name: "JWT_SECRET",
                value: "<hidden>".into(),
                reason: format!("must be at least {MIN_JWT_SECRET_LEN} bytes"),
            });
        }
        let log_format = match get("LOG_FORMAT")?.to_ascii_lowercase().as_str() {
            "json" => LogFormat::Json,
            "pretty" => LogFormat::Pretty,
            other => {
                return Err(ConfigError::Invalid {
                    name: "LOG_FORMAT",
                    value: other.into(),
                    reason: "expected json or pretty".into(),
                })
            }
        };
        Ok(Self {
            service_name: d.name,
            port,
            mongodb_uri,
            mongodb_database,
            kafka: KafkaConfig {
                brokers,
                group_id: get("KAFKA_GROUP_ID")?,
                request_topic: get("KAFKA_REQUEST_TOPIC")?,
                response_topic: get("KAFKA_RESPONSE_TOPIC")?,
                property_topic: get("KAFKA_PROPERTY_TOPIC")?,
                topic_partitions: number("KAFKA_TOPIC_PARTITIONS", 1, 10_000)? as i32,
                topic_replication_factor: number("KAFKA_TOPIC_REPLICATION_FACTOR", 1, 100)? as i32,
                session_timeout_ms: number("KAFKA_SESSION_TIMEOUT_MS", 1_000, 3_600_000)? as u32,
            },
            jwt_secret,
            log_format,
            shutdown_timeout: Duration::from_secs(number("SHUTDOWN_TIMEOUT_SECS", 1, 3600)? as u64),
            identity: IdentityConfig::from_lookup(&lookup)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const D: ServiceDefaults = ServiceDefaults {
        name: "owner-service",
        port: 5002,
        database: "owner",
    };

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("MONGODB_URI", "mongodb://localhost:27017"),
        ("KAFKA_BROKERS", "localhost:9092"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn defaults_fill_everything_optional() {
        let c = ServiceConfig::from_lookup(D, lookup(&REQUIRED)).unwrap();
        assert_eq!(c.port, 5002);
        assert_eq!(c.mongodb_database, "owner");
        assert_eq!(c.kafka.request_topic, "booking-requests");
        assert_eq!(c.kafka.response_topic, "booking-updates");
        assert_eq!(c.kafka.property_topic, "property-listings");
        assert_eq!(c.kafka.group_id, "owner-service");
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn each_missing_required_variable_is_named() {
        for missing in ["MONGODB_URI", "KAFKA_BROKERS", "JWT_SECRET"] {
            let pairs: Vec<_> = REQUIRED
                .iter()
                .copied()
                .filter(|(k, _)| *k != missing)
                .collect();
            let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
            assert_eq!(err, ConfigError::Missing(missing));
            assert!(err.to_string().contains(missing));
            assert!(!err.to_string().contains('\n'));
        }
    }

    #[test]
    fn malformed_values_are_named() {
        let mut pairs = REQUIRED.to_vec();
        pairs.push(("PORT", "http"));
        let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("PORT"), "{err}");

        let mut pairs = REQUIRED.to_vec();
        pairs[2] = ("JWT_SECRET", "short");
        let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("JWT_SECRET"), "{err}");
        assert!(!err.to_string().contains("short"), "secret leaked: {err}");
    }

    #[test]
    fn identity_limits_default_to_the_protective_ones_and_are_checked() {
        let c = ServiceConfig::from_lookup(D, lookup(&REQUIRED)).unwrap();
        assert_eq!(c.identity, IdentityConfig::default());
        assert_eq!(c.identity.limits.login_failures, 10);
        assert_eq!(c.identity.limits.signups_per_address, 10);
        assert_eq!(c.identity.limits.window, Duration::from_secs(900));
        assert!(!c
            .identity
            .trusted_proxies
            .contains("127.0.0.1".parse().unwrap()));

        let mut pairs = REQUIRED.to_vec();
        pairs.push(("TRUSTED_PROXIES", "10.0.0.0/8, fd00::/8"));
        pairs.push(("SIGNUP_LIMIT_PER_ADDRESS", "500"));
        let c = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap();
        assert!(c
            .identity
            .trusted_proxies
            .contains("10.2.3.4".parse().unwrap()));
        assert_eq!(c.identity.limits.signups_per_address, 500);

        for (name, bad) in [
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("SIGNUP_LIMIT_PER_ADDRESS", "0"),
            ("SIGNUP_LIMIT_PER_ADDRESS", "many"),
        ] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push((name, bad));
            let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn spec_marks_exactly_the_required_variables() {
        let required: Vec<_> = env_spec(D)
            .into_iter()
            .filter(|v| v.default.is_none())
            .map(|v| v.name)
            .collect();
        assert_eq!(required, ["MONGODB_URI", "KAFKA_BROKERS", "JWT_SECRET"]);
    }
}
