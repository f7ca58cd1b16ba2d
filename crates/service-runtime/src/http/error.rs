use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};

use std::sync::Arc;

use crate::{
    store::{Cause, StoreError, StoreErrorKind},
    validation::{FieldError, Invalid},
};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The one error type every handler returns; it renders as an RFC 9457
/// problem document with a stable `code`, so clients can branch on `code`
/// and show `detail` to people.
///
/// Route-specific error enums convert into it with `From`, which keeps the
/// HTTP mapping of each domain error in one obvious place.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Extension members added to the document (e.g. readiness `checks`);
    /// boxed because they are rare and errors travel in every `Result`.
    pub extensions: Option<Box<serde_json::Map<String, serde_json::Value>>>,
    /// Seconds until a refused request may succeed: sent as `Retry-After`.
    pub retry_after: Option<u64>,
    /// What went wrong underneath, for the log only (never sent): logged
    /// with its whole chain by [`super::log_errors`].
    pub cause: Option<Cause>,
}

/// What [`ApiError::into_response`] leaves in a 5xx response's extensions
/// for the one middleware that logs errors ([`super::log_errors`]).
#[derive(Debug, Clone)]
pub struct ErrorReport {
    /// Also in the body (`error_id`), so a user's report finds the log line.
    pub error_id: String,
    pub code: &'static str,
    pub cause: Option<Cause>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: None,
            retry_after: None,
            cause: None,
        }
    }

    /// Keeps `cause` for the log.
    pub fn with_cause(mut self, cause: Cause) -> Self {
        self.cause = Some(cause);
        self
    }

    /// 400 `validation_failed` listing every offending field at once.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            errors,
            ..Self::new(StatusCode::BAD_REQUEST, "validation_failed", detail)
        }
    }

    /// 400 `validation_failed` for a single field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unauthorized(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, detail)
    }

    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, detail)
    }

    /// 429 `too_many_attempts`: a limit on attempts was reached, and lifts
    /// in `retry_after` (rounded up to whole seconds, sent as `Retry-After`
    /// and as the `retry_after` member).
    pub fn too_many_attempts(retry_after: std::time::Duration, detail: impl Into<String>) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let seconds = seconds.max(1);
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", detail)
        }
        .with_extension("retry_after", seconds.into())
    }

    /// 503: a dependency (database) failed; the client may retry, after
    /// [`RETRY_UNAVAILABLE_AFTER`] seconds (`Retry-After`).
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self {
            retry_after: Some(RETRY_UNAVAILABLE_AFTER),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "dependency_unavailable",
                detail,
            )
        }
    }

    /// 500 for a bug or a failure retrying cannot fix. The cause is logged
    /// (with an `error_id` that the body also carries), never sent.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "an unexpected error occurred",
        )
        .with_cause(Arc::new(Message(cause.to_string())))
    }

    pub fn with_extension(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extensions
            .get_or_insert_with(Default::default)
            .insert(key.to_string(), value);
        self
    }

    /// The problem document as JSON.
    pub fn body(&self) -> serde_json::Value {
        let mut doc = serde_json::json!({
            "type": format!("urn:booking:problem:{}", self.code),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "code": self.code,
        });
        if !self.errors.is_empty() {
            doc["errors"] = serde_json::to_value(&self.errors).expect("field errors serialise");
        }
        if let Some(ext) = &self.extensions {
            for (k, v) in ext.iter() {
                doc[k] = v.clone();
            }
        }
        doc
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Every 500, and any other 5xx with a cause (a store outage); not a
        // readiness probe's 503, which is an answer rather than a failure.
        let reported = self.status == StatusCode::INTERNAL_SERVER_ERROR
            || (self.status.is_server_error() && self.cause.is_some());
        let report = reported.then(|| ErrorReport {
            error_id: uuid::Uuid::now_v7().to_string(),
            code: self.code,
            cause: self.cause.clone(),
        });
        let mut body = self.body();
        if let Some(report) = &report {
            body["error_id"] = report.error_id.clone().into();
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    /// By kind: transient 503 with `Retry-After`, conflict 409, permanent
    /// 500 with an error id; the store error stays the cause, for the log.
    fn from(e: StoreError) -> Self {
        let api = match e.kind() {
            StoreErrorKind::Transient => {
                ApiError::unavailable("the database is unavailable, retry later")
            }
            StoreErrorKind::Conflict => ApiError::conflict("duplicate", e.to_string()),
            StoreErrorKind::Permanent => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an unexpected error occurred",
            ),
        };
        api.with_cause(Arc::new(e))
    }
}

/// Seconds a client is asked to wait after a 503 for a dependency outage.
pub const RETRY_UNAVAILABLE_AFTER: u64 = 2;

/// A cause known only by its message (a panic, a library error already
/// rendered).
#[derive(Debug)]
struct Message(String);

impl std::fmt::Display for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

/// Invalid input found by a domain rule is a 400 validation problem
/// listing every field.
impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        ApiError::validation(invalid.0)
    }
}
