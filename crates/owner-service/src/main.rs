//! The owner-service binary: reads the environment, connects to MongoDB and
//! Kafka, serves on `PORT` until SIGTERM, then shuts down in order.

use service_runtime::{runner::config_or_exit, shutdown, telemetry};

#[tokio::main]
async fn main() {
    let config = config_or_exit(owner_service::DEFAULTS);
    telemetry::init(config.log_format);
    let shutdown = shutdown::on_signal();
    let service = match owner_service::wiring::production(&config).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("owner-service: {e}");
            std::process::exit(1);
        }
    };
    let listener = match tokio::net::TcpListener::bind(("0.0.0.0", config.port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("owner-service: cannot listen on port {}: {e}", config.port);
            std::process::exit(1);
        }
    };
    if let Err(e) = service.run(listener, shutdown).await {
        eprintln!("owner-service: {e}");
        std::process::exit(1);
    }
}
