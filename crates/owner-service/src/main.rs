//! The owner-service binary: configuration from the environment, MongoDB and
//! Kafka adapters, serving on `PORT` until SIGTERM, then an orderly shutdown.

#[tokio::main]
async fn main() {
    service_runtime::assembly::main::<owner_service::OwnerService>().await
}
