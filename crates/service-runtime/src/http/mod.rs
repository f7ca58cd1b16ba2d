//! The HTTP conventions both services share: one error shape (RFC 9457
//! problem documents), extractors whose rejections use it, the common
//! middleware stack, health and metrics endpoints, and serving with graceful shutdown.

pub mod client_address;
mod error;
mod extract;
mod health;
mod metrics;
pub mod params;
mod readiness;
mod router;

/// Where the handlers have always found them; the domain's own home is
/// [`crate::validation`].
pub use crate::validation::{FieldError, Validator};
pub use error::{ApiError, ErrorReport, PROBLEM_JSON, RETRY_UNAVAILABLE_AFTER};
pub use extract::{ApiJson, ApiQuery, OptionalApiJson, MAX_BODY_BYTES};
pub use health::{health_openapi, health_routes, Readiness};
pub use metrics::{metrics_openapi, metrics_routes, MetricsEndpoint};
pub use readiness::ReadinessCheck;
pub use router::{finish_router, log_errors, serve, service_router};
