//! `cargo run`: both services in one process with in-memory adapters — no
//! Kafka, no MongoDB — on ports 5005 (traveler-service) and 5002
//! (owner-service), so the whole flow can be tried with curl.
//!
//! Everything lives in memory and is gone when the process stops. Ports can
//! be moved with `TRAVELER_PORT` / `OWNER_PORT`; tokens are signed with
//! `JWT_SECRET` if set, else with a random per-run secret. Logins and
//! sign-ups are limited as in production; `TRUSTED_PROXIES` and
//! `SIGNUP_LIMIT_PER_ADDRESS` are read as the service binaries read them, and
//! so is `NOTIFICATION_STREAMS_PER_USER`: notification streams work here too,
//! fed by the in-memory inbox as soon as a notification is written.
//!
//! With `KAFKA_BROKERS` set, the two services keep their in-memory stores
//! but talk over that Apache Kafka instead of the in-process bus (topics
//! `booking-requests`, `booking-updates`, `property-listings`, created if
//! missing; groups `traveler-service` and `owner-service`; the producer and
//! consumer settings of the binaries). Each service owns its data, so this
//! is the real flow minus the database: `scripts/bench.sh`'s
//! `kafka-memory` stack.

use std::{sync::Arc, time::Duration};

use owner_service::OwnerService;
use service_runtime::{
    assembly::{self, ServiceSettings},
    config::{KafkaConfig, LogFormat},
    identity::IdentityConfig,
    messaging::memory::InMemoryBus,
    notifications::hub::StreamConfig,
    runner::Wiring,
    shutdown, telemetry,
};
use tokio::net::TcpListener;
use traveler_service::TravelerService;

fn port(var: &str, default: u16) -> u16 {
    match std::env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("booking-embedded: configuration error: {var}={v:?} is not a port number");
            std::process::exit(2);
        }),
        Err(_) => default,
    }
}

/// The binaries' Kafka settings with the default topics, for the consumer
/// group `group` (each service has its own).
fn kafka_config(brokers: &str, group: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.to_string(),
        group_id: group.to_string(),
        request_topic: events::topics::BOOKING_REQUESTS.into(),
        response_topic: events::topics::BOOKING_UPDATES.into(),
        property_topic: events::topics::PROPERTY_LISTINGS.into(),
        topic_partitions: 6,
        topic_replication_factor: 1,
        session_timeout_ms: 10_000,
        delivery_timeout_ms: 60_000,
    }
}

fn main() {
    service_runtime::memory::return_large_allocations_to_os();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run());
}

async fn run() {
    let format = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    };
    telemetry::init(format);
    service_runtime::memory::spawn_trimmer();
    let secret = std::env::var("JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            )
        });
    let grace = Duration::from_secs(10);
    let identity = IdentityConfig::from_lookup(|k| std::env::var(k).ok()).unwrap_or_else(|e| {
        eprintln!("booking-embedded: {e}");
        std::process::exit(2);
    });
    let streams = StreamConfig::from_lookup(|k| std::env::var(k).ok()).unwrap_or_else(|e| {
        eprintln!("booking-embedded: {e}");
        std::process::exit(2);
    });
    let settings = ServiceSettings {
        identity,
        streams,
        ..ServiceSettings::with_default_topics(&secret, grace)
    };
    let (traveler, owner) = match std::env::var("KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty())
    {
        None => {
            let bus = Arc::new(InMemoryBus::new());
            (
                assembly::in_memory::<TravelerService>(settings.clone(), bus.clone()).await,
                assembly::in_memory::<OwnerService>(settings, bus).await,
            )
        }
        Some(brokers) => {
            let on_kafka = |group: &str| {
                let kafka = kafka_config(&brokers, group);
                async move {
                    Wiring::in_memory_on_kafka(&kafka)
                        .await
                        .unwrap_or_else(|e| {
                            eprintln!("booking-embedded: {e}");
                            std::process::exit(1);
                        })
                }
            };
            (
                assembly::with_in_memory_stores::<TravelerService>(
                    settings.clone(),
                    on_kafka(traveler_service::DEFAULTS.name).await,
                )
                .await,
                assembly::with_in_memory_stores::<OwnerService>(
                    settings,
                    on_kafka(owner_service::DEFAULTS.name).await,
                )
                .await,
            )
        }
    };

    let bind = |p: u16| async move {
        TcpListener::bind(("0.0.0.0", p)).await.unwrap_or_else(|e| {
            eprintln!("booking-embedded: cannot listen on port {p}: {e}");
            std::process::exit(1);
        })
    };
    let traveler_listener = bind(port("TRAVELER_PORT", traveler_service::DEFAULTS.port)).await;
    let owner_listener = bind(port("OWNER_PORT", owner_service::DEFAULTS.port)).await;
    tracing::info!(
        "embedded mode: traveler-service on {:?}, owner-service on {:?} (in-memory, nothing persists)",
        traveler_listener.local_addr().ok(),
        owner_listener.local_addr().ok()
    );

    let stop = shutdown::on_signal();
    let (a, b) = tokio::join!(
        traveler.run(traveler_listener, stop.clone()),
        owner.run(owner_listener, stop)
    );
    if let Err(e) = a.and(b) {
        eprintln!("booking-embedded: {e}");
        std::process::exit(1);
    }
}
