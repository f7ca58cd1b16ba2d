use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::StatusCode, Json, Router};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{readiness::ReadinessCheck, ApiError};
use crate::supervision::Supervisor;

/// The dependencies a service needs before it should receive traffic, and
/// its background workers (`checks.workers`, see [`Supervisor`]).
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    supervisor: Supervisor,
}

/// How long one dependency may take to answer the readiness probe.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

impl Readiness {
    pub fn new(checks: Vec<Arc<dyn ReadinessCheck>>) -> Self {
        Self {
            checks,
            supervisor: Supervisor::default(),
        }
    }

    /// The supervisor whose workers this readiness reports: the service
    /// runs its relay and consumer under it.
    pub fn supervisor(&self) -> Supervisor {
        self.supervisor.clone()
    }

    /// Asks every dependency at once; a slow one counts as down.
    pub async fn report(&self) -> (bool, serde_json::Map<String, serde_json::Value>) {
        let workers = self.supervisor.readiness();
        let results =
            futures::future::join_all(self.checks.iter().chain([&workers]).map(|c| async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, c.check()).await {
                    Ok(r) => r,
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                };
                (c.name(), outcome, c.details())
            }))
            .await;
        let ready = results.iter().all(|(_, r, _)| r.is_ok());
        let report = results
            .into_iter()
            .map(|(name, r, details)| {
                let mut v = match r {
                    Ok(()) => json!({"status": "up"}),
                    Err(e) => json!({"status": "down", "error": e}),
                };
                if let (Some(entry), Some(serde_json::Value::Object(extra))) =
                    (v.as_object_mut(), details)
                {
                    entry.extend(extra);
                }
                (name.to_string(), v)
            })
            .collect();
        (ready, report)
    }
}

/// The health endpoints' router, described (see [`health_openapi`]).
fn health_router() -> OpenApiRouter<Readiness> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
}

/// `GET /health` (liveness: answers without touching any dependency, so a
/// slow database never gets a healthy process restarted) and
/// `GET /health/ready` (200 only when every dependency answers, else 503 with
/// a per-dependency report).
pub fn health_routes(readiness: Readiness) -> Router {
    health_router().split_for_parts().0.with_state(readiness)
}

/// The description of [`health_routes`] for the service's document.
pub fn health_openapi() -> utoipa::openapi::OpenApi {
    health_router().into_openapi()
}

/// Liveness: the process answers. Touches no dependency.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "the process is alive", body = Object, example = json!({"status": "ok"})))
)]
async fn live() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: every dependency (MongoDB, Kafka, the background workers)
/// answers.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "every dependency answers; `checks` has one entry per dependency", body = Object,
            example = json!({"status": "ready", "checks": {"mongodb": {"status": "up"}, "kafka": {"status": "up"}}})),
        (status = 503, description = "a dependency is not answering (`not_ready`); `checks` says which"),
    )
)]
async fn ready(State(readiness): State<Readiness>) -> Result<Json<serde_json::Value>, ApiError> {
    let (ok, checks) = readiness.report().await;
    if ok {
        Ok(Json(json!({"status": "ready", "checks": checks})))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "a dependency is not answering",
        )
        .with_extension("checks", serde_json::Value::Object(checks)))
    }
}
