use std::{any::Any, net::SocketAddr};

use axum::{
    body::Body,
    extract::{DefaultBodyLimit, Request},
    http::{header, HeaderValue, Response, StatusCode},
    middleware::{self, Next},
    Router,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::{catch_panic::CatchPanicLayer, trace::TraceLayer};
use utoipa_axum::router::OpenApiRouter;

use super::{
    error::{ErrorReport, PROBLEM_JSON},
    health_routes, metrics_routes, ApiError, MetricsEndpoint, Readiness, MAX_BODY_BYTES,
};
use crate::{
    metrics::record_requests,
    openapi::{docs_routes, service_document, ApiSpec},
    store::Chain,
};

/// Adds what every service's router needs on top of its routes: the body
/// limit, a panic guard, request tracing (a span per request, see
/// [`crate::telemetry::http_span`]), a step that turns any bare error
/// response (axum's own 404, 405, 413...) into a problem document, and the
/// one place server errors are logged ([`log_errors`]).
pub fn finish_router(router: Router) -> Router {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::map_response(problem_for_bare_errors))
        .layer(CatchPanicLayer::custom(panic_to_problem))
        .layer(middleware::from_fn(log_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| crate::telemetry::http_span(request))
                .on_response(
                    |response: &Response<Body>, _: std::time::Duration, span: &tracing::Span| {
                        crate::telemetry::http_response(response, span)
                    },
                ),
        )
}

/// Logs every 5xx answer once, here rather than where errors are converted:
/// a 500 at error level with its `error_id` (also in the body the client
/// got) and its cause chain, a 503 at warn level with its cause.
pub async fn log_errors(request: Request, next: Next) -> Response<Body> {
    let (method, path) = (request.method().clone(), request.uri().path().to_string());
    let response = next.run(request).await;
    let status = response.status();
    if let Some(report) = response.extensions().get::<ErrorReport>() {
        let cause = report
            .cause
            .as_deref()
            .map(|c| Chain(c).to_string())
            .unwrap_or_default();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(%method, %path, status = status.as_u16(), code = report.code, error_id = %report.error_id, error = %cause, "dependency unavailable");
        } else {
            tracing::error!(%method, %path, status = status.as_u16(), code = report.code, error_id = %report.error_id, error = %cause, "request failed");
        }
    }
    response
}

/// A service's whole router: its `api` under `spec.prefix`, the health
/// endpoints, `GET /metrics`, the service's OpenAPI document
/// (`GET /openapi.json`, generated from `api`'s annotations, see
/// [`crate::openapi`]) and its reference page (`GET /docs`), and the
/// service's web `pages` at the root, the common layers of
/// [`finish_router`], and every request counted and timed by route.
pub fn service_router(
    spec: &ApiSpec,
    api: OpenApiRouter,
    readiness: Readiness,
    metrics: MetricsEndpoint,
    pages: Router,
) -> Router {
    let recorder = metrics.metrics.clone();
    let (api, description) = api.split_for_parts();
    let document = service_document(spec, description);
    record_requests(
        finish_router(
            Router::new()
                .nest(spec.prefix, api)
                .merge(health_routes(readiness))
                .merge(metrics_routes(metrics))
                .merge(docs_routes(document))
                .merge(pages),
        ),
        recorder,
    )
}

/// Serves `router` until `shutdown` is cancelled, then stops accepting and
/// lets in-flight requests finish. Each request carries its peer's address
/// (`ConnectInfo<SocketAddr>`), which limits per client address start from.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.cancelled_owned())
    .await
}

async fn problem_for_bare_errors(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("route_not_found", "no such route".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept that method".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            format!("the body exceeds {MAX_BODY_BYTES} bytes"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "expected Content-Type: application/json".to_string(),
        ),
        s if s.is_server_error() => ("internal_error", "an unexpected error occurred".into()),
        _ => ("bad_request", "the request could not be processed".into()),
    };
    let allow = response.headers().get(header::ALLOW).cloned();
    let mut problem =
        axum::response::IntoResponse::into_response(ApiError::new(status, code, detail));
    if let Some(allow) = allow {
        problem.headers_mut().insert(header::ALLOW, allow);
    }
    problem
}

fn panic_to_problem(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    let mut response = axum::response::IntoResponse::into_response(ApiError::internal(format!(
        "handler panicked: {message}"
    )));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}
