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

use std::{sync::Arc, time::Duration};

use service_runtime::{
    config::LogFormat, identity::IdentityConfig, messaging::memory::InMemoryBus,
    notifications::hub::StreamConfig, shutdown, telemetry,
};
use tokio::net::TcpListener;

fn port(var: &str, default: u16) -> u16 {
    match std::env::var(var) {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            eprintln!("booking-embedded: configuration error: {var}={v:?} is not a port number");
            std::process::exit(2);
        }),
        Err(_) => default,
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
    let bus = Arc::new(InMemoryBus::new());

    let traveler = traveler_service::wiring::in_memory(
        traveler_service::wiring::Settings {
            identity: identity.clone(),
            streams,
            ..traveler_service::wiring::Settings::with_default_topics(&secret, grace)
        },
        bus.clone(),
    );
    let owner = owner_service::wiring::in_memory(
        owner_service::wiring::Settings {
            identity,
            streams,
            ..owner_service::wiring::Settings::with_default_topics(&secret, grace)
        },
        bus,
    );

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
