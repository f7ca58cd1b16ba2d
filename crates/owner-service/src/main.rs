//! The owner-service binary: configuration from the environment, MongoDB and
//! Kafka adapters, serving on `PORT` until SIGTERM, then an orderly shutdown.

#[tokio::main]
async fn main() {
    service_runtime::runner::run_binary(owner_service::DEFAULTS, |config| async move {
        owner_service::wiring::production(&config).await
    })
    .await
}
