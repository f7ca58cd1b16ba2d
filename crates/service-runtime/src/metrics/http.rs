//! The HTTP side of metrics: a middleware that counts and times every
//! request by its route template, and the `GET /metrics` endpoint.

use std::{sync::Arc, time::Instant};

use axum::{
    body::Body,
    extract::{MatchedPath, Request, State},
    http::{header, Method},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Metrics, UNMATCHED_ROUTE};
use crate::outbox::OutboxStore;

/// The media type of the text exposition the endpoint serves (OpenMetrics,
/// which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Wraps `router` so every request is counted and timed under its route
/// template (`MatchedPath`), or [`UNMATCHED_ROUTE`] when none matched.
pub fn record_requests(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(middleware::from_fn_with_state(metrics, record))
}

async fn record(
    State(metrics): State<Arc<Metrics>>,
    request: Request<Body>,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_string();
    let response = next.run(request).await;
    metrics.http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// The `method` label: the standard methods by name, anything else as
/// `OTHER`, so a client cannot mint label values.
pub(super) fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}
