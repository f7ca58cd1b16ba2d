//! Typed configuration read from environment variables.
//!
//! Both services read the same variables; only the defaults differ
//! ([`ServiceDefaults`]). A missing or malformed required variable is a
//! [`ConfigError`] whose one-line message names the variable, so a binary can
//! print it and exit before doing anything else. [`env_spec`] lists every
//! variable with its default; `.env.example` and the deployment checks are kept
//! honest against it.
//!
//! Secrets (`JWT_SECRET`, and `MONGODB_URI`, which may carry a password) are
//! held as [`SecretString`]: its `Debug` prints `[REDACTED]`, it has no
//! `Display`, and reading it takes an explicit `expose_secret()`. A
//! configuration error never echoes a secret: `JWT_SECRET` is not shown, and
//! a `MONGODB_URI` is shown through [`redact_uri`].

use std::time::Duration;

pub use secrecy::{ExposeSecret, SecretString};

pub mod env;
mod uri;

pub use env::{ConfigError, EnvVar};
pub use uri::{redact_uri, scrub_uri_password};

/// Telemetry's setting (`LOG_FORMAT`), held and parsed here.
pub use crate::telemetry::LogFormat;
use crate::{identity::IdentityConfig, notifications::hub::StreamConfig};

/// What differs between the two services' configurations.
#[derive(Debug, Clone, Copy)]
pub struct ServiceDefaults {
    /// Service name: the Kafka consumer group, the CloudEvents `source`, log field.
    pub name: &'static str,
    pub port: u16,
    pub database: &'static str,
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
    /// How long the producer keeps retrying a message before it reports
    /// the delivery failed (`message.timeout.ms`); see
    /// `messaging::kafka::KafkaPublisher`.
    pub delivery_timeout_ms: u32,
}

/// Everything a service binary needs to start. Its `Debug` output shows no
/// secret.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub service_name: &'static str,
    pub port: u16,
    /// May hold a password (`mongodb://user:password@…`).
    pub mongodb_uri: SecretString,
    pub mongodb_database: String,
    pub kafka: KafkaConfig,
    pub jwt_secret: SecretString,
    pub log_format: LogFormat,
    /// How long in-flight work may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// Limits on logins and sign-ups, and whose `X-Forwarded-For` to believe.
    pub identity: IdentityConfig,
    /// Limits on notification streams.
    pub streams: StreamConfig,
    /// Base URL of the OTLP/HTTP collector spans are exported to
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`); `None`: no traces are recorded.
    pub otlp_endpoint: Option<String>,
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
            "KAFKA_DELIVERY_TIMEOUT_MS",
            Some("60000".into()),
            "how long the producer retries an event before the relay tries it again",
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
    ]
    .into_iter()
    // Each feature names its own variables, in their documentation place.
    .chain(IdentityConfig::env_spec())
    .chain(StreamConfig::env_spec())
    .chain([v(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        Some(String::new()),
        "base URL of an OTLP/HTTP collector (spans go to its /v1/traces); empty: no traces",
    )])
    .collect()
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
        let mongodb_uri = SecretString::from(get("MONGODB_URI")?);
        let uri = mongodb_uri.expose_secret();
        if !(uri.starts_with("mongodb://") || uri.starts_with("mongodb+srv://")) {
            return Err(ConfigError::Invalid {
                name: "MONGODB_URI",
                value: redact_uri(uri),
                reason: "must start with mongodb:// or mongodb+srv://".into(),
            });
        }
        let mongodb_database = get("MONGODB_DATABASE")?;
        let brokers = get("KAFKA_BROKERS")?;
        let jwt_secret = SecretString::from(get("JWT_SECRET")?);
        if jwt_secret.expose_secret().len() < MIN_JWT_SECRET_LEN {
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
        let otlp_endpoint = Some(get("OTEL_EXPORTER_OTLP_ENDPOINT")?).filter(|e| !e.is_empty());
        if let Some(endpoint) = &otlp_endpoint {
            if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
                return Err(ConfigError::Invalid {
                    name: "OTEL_EXPORTER_OTLP_ENDPOINT",
                    value: endpoint.clone(),
                    reason: "expected an http:// or https:// URL".into(),
                });
            }
        }
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
                delivery_timeout_ms: number("KAFKA_DELIVERY_TIMEOUT_MS", 1_000, 3_600_000)? as u32,
            },
            jwt_secret,
            log_format,
            shutdown_timeout: Duration::from_secs(number("SHUTDOWN_TIMEOUT_SECS", 1, 3600)? as u64),
            identity: IdentityConfig::from_lookup(&lookup)?,
            streams: StreamConfig::from_lookup(&lookup)?,
            otlp_endpoint,
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
    fn traces_are_off_unless_an_http_collector_is_named() {
        let with = |endpoint: &'static str| {
            let mut pairs = REQUIRED.to_vec();
            pairs.push(("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint));
            ServiceConfig::from_lookup(D, lookup(&pairs))
        };
        assert_eq!(
            ServiceConfig::from_lookup(D, lookup(&REQUIRED))
                .unwrap()
                .otlp_endpoint,
            None
        );
        assert_eq!(with("").unwrap().otlp_endpoint, None);
        assert_eq!(
            with("http://collector:4318")
                .unwrap()
                .otlp_endpoint
                .as_deref(),
            Some("http://collector:4318")
        );
        assert!(matches!(
            with("collector:4317"),
            Err(ConfigError::Invalid {
                name: "OTEL_EXPORTER_OTLP_ENDPOINT",
                ..
            })
        ));
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

    const PASSWORD: &str = "s3cr3t-Pa55";

    #[test]
    fn a_mongodb_uri_with_a_wrong_scheme_is_named_without_its_password() {
        for uri in [
            format!("postgres://app:{PASSWORD}@db.internal:5432/owner"),
            format!("mongodb:/app:{PASSWORD}@db.internal:27017/owner"),
            format!("app:{PASSWORD}@db.internal:27017"),
            // Unescaped `/` and `@` inside the password: still hidden whole.
            format!("mongo://app:{PASSWORD}/x@y@db.internal/owner"),
        ] {
            let mut pairs = REQUIRED.to_vec();
            pairs[0] = ("MONGODB_URI", uri.as_str());
            let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("MONGODB_URI"), "{text}");
            assert!(
                text.contains("db.internal"),
                "the host should be shown: {text}"
            );
            assert!(!text.contains(PASSWORD), "password leaked: {text}");
            assert!(
                !format!("{err:?}").contains(PASSWORD),
                "password leaked: {err:?}"
            );
            assert!(!text.contains('\n'));
        }
    }

    #[test]
    fn debug_output_of_the_configuration_shows_no_secret() {
        let uri = format!("mongodb://app:{PASSWORD}@db.internal:27017/?replicaSet=rs0");
        let mut pairs = REQUIRED.to_vec();
        pairs[0] = ("MONGODB_URI", uri.as_str());
        let c = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap();
        for shown in [format!("{c:?}"), format!("{c:#?}")] {
            assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
            assert!(!shown.contains(REQUIRED[2].1), "JWT secret leaked: {shown}");
            assert!(shown.contains("REDACTED"), "{shown}");
        }
        // The values themselves are intact, for the code that needs them.
        assert_eq!(c.mongodb_uri.expose_secret(), uri);
        assert_eq!(c.jwt_secret.expose_secret(), REQUIRED[2].1);
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
        assert!(!c.identity.cookie_secure, "off unless asked for");

        let mut pairs = REQUIRED.to_vec();
        pairs.push(("COOKIE_SECURE", "TRUE"));
        let c = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap();
        assert!(c.identity.cookie_secure);

        for (name, bad) in [
            ("TRUSTED_PROXIES", "10.0.0.0/40"),
            ("TRUSTED_PROXIES", "proxy.internal"),
            ("SIGNUP_LIMIT_PER_ADDRESS", "0"),
            ("SIGNUP_LIMIT_PER_ADDRESS", "many"),
            ("COOKIE_SECURE", "yes"),
        ] {
            let mut pairs = REQUIRED.to_vec();
            pairs.push((name, bad));
            let err = ServiceConfig::from_lookup(D, lookup(&pairs)).unwrap_err();
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn spec_lists_every_variable_in_documentation_order() {
        let names: Vec<_> = env_spec(D).into_iter().map(|v| v.name).collect();
        assert_eq!(
            names,
            [
                "PORT",
                "MONGODB_URI",
                "MONGODB_DATABASE",
                "KAFKA_BROKERS",
                "KAFKA_REQUEST_TOPIC",
                "KAFKA_RESPONSE_TOPIC",
                "KAFKA_PROPERTY_TOPIC",
                "KAFKA_GROUP_ID",
                "KAFKA_TOPIC_PARTITIONS",
                "KAFKA_TOPIC_REPLICATION_FACTOR",
                "KAFKA_SESSION_TIMEOUT_MS",
                "KAFKA_DELIVERY_TIMEOUT_MS",
                "JWT_SECRET",
                "RUST_LOG",
                "LOG_FORMAT",
                "SHUTDOWN_TIMEOUT_SECS",
                "TRUSTED_PROXIES",
                "SIGNUP_LIMIT_PER_ADDRESS",
                "COOKIE_SECURE",
                "NOTIFICATION_STREAMS_PER_USER",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
            ]
        );
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
