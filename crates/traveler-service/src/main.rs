//! The traveler-service binary: configuration from the environment, MongoDB
//! and Kafka adapters, serving on `PORT` until SIGTERM, then an orderly shutdown.

#[tokio::main]
async fn main() {
    service_runtime::runner::run_binary(traveler_service::DEFAULTS, |config| async move {
        traveler_service::wiring::production(&config).await
    })
    .await
}
