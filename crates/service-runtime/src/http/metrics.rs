//! `GET /metrics`: the service's registry in the OpenMetrics text format,
//! with the outbox's backlog read at scrape time. It sits here, beside the
//! health endpoints, because it reads both [`crate::metrics`] and
//! [`crate::outbox`], which then need not import each other.

use std::sync::Arc;

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    Router,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    metrics::{Metrics, CONTENT_TYPE},
    outbox::OutboxStore,
};

/// How long a scrape waits for the outbox reading before serving the last one.
const OUTBOX_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// What `GET /metrics` reads: the registry, and the outbox whose backlog
/// it measures at scrape time (a gauge that is always current, at the cost
/// of one read per scrape).
#[derive(Clone)]
pub struct MetricsEndpoint {
    /// The service's registry, encoded on each scrape.
    pub metrics: Arc<Metrics>,
    /// The service's outbox, whose backlog the `outbox_*` gauges show.
    pub outbox: Arc<dyn OutboxStore>,
}

/// `GET /metrics`: no authentication, like `/health`; keep it off the public
/// Ingress (the Kubernetes manifests route only `/api/...` there).
pub fn metrics_routes(endpoint: MetricsEndpoint) -> Router {
    metrics_router().split_for_parts().0.with_state(endpoint)
}

/// The description of [`metrics_routes`] for the service's document.
pub fn metrics_openapi() -> utoipa::openapi::OpenApi {
    metrics_router().into_openapi()
}

fn metrics_router() -> OpenApiRouter<MetricsEndpoint> {
    OpenApiRouter::new().routes(routes!(scrape))
}

/// The service's metrics in the OpenMetrics text format, for Prometheus.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "the metrics, in the OpenMetrics text format", content_type = "application/openmetrics-text", body = String))
)]
async fn scrape(State(endpoint): State<MetricsEndpoint>) -> Response {
    match tokio::time::timeout(OUTBOX_READ_TIMEOUT, endpoint.outbox.backlog()).await {
        Ok(Ok(backlog)) => {
            let age = backlog
                .oldest
                .map(|t| (chrono::Utc::now() - t).to_std().unwrap_or_default());
            endpoint.metrics.outbox_backlog(backlog.pending, age);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot read the outbox backlog"),
        Err(_) => tracing::warn!("metrics: the outbox backlog did not answer in time"),
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        endpoint.metrics.encode(),
    )
        .into_response()
}
