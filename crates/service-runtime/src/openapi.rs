//! The OpenAPI 3.1 document of each service, generated from its handlers'
//! `#[utoipa::path]` annotations and its types' `ToSchema` derives, and
//! served at `GET /openapi.json`, with a readable reference at `GET /docs`.
//!
//! The routers are built from the same annotations (`utoipa_axum::routes!`),
//! so a route cannot be served without being described. Handlers declare
//! their own statuses (201, 404 `not_found`, 409 ...); what every handler
//! of a kind shares is added here, in one place for both services, by the
//! rules of [`service_document`]: the security schemes, 401/403 on
//! authenticated operations, 400 on operations with parameters or a body,
//! 413/415 on operations with a body, 500/503 on the API, and a problem
//! document (`application/problem+json`, schema `Problem`) with an example
//! as the content of every error response, and operation ids made unique
//! by their tag (`bookings_list`, `notifications_list`), and an empty
//! optional query parameter admitted (it means "not given").

mod page;
pub mod schema;

use serde::Serialize;
use serde_json::{json, Map, Value};
use utoipa::{openapi::OpenApi, PartialSchema, ToSchema};

pub use page::{docs_routes, render_reference};

use crate::{
    auth::Role,
    http::{FieldError, PROBLEM_JSON},
    session,
};

/// What tells one service's document from the other's.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    /// The document's title, e.g. `traveler-service`.
    pub title: &'static str,
    /// The document's description (Markdown).
    pub description: &'static str,
    /// Whose tokens and session cookie the service accepts.
    pub role: Role,
    /// Where the service's API is mounted, e.g. `/api/travelers`.
    pub prefix: &'static str,
}

/// The name of the bearer security scheme. Handlers that need a caller
/// (take an `AuthUser`) declare `security(("bearer" = []))`; the document
/// offers the session cookie as the alternative (see [`service_document`]).
pub const BEARER: &str = "bearer";

/// The body of every error response: an RFC 9457 problem document
/// (`application/problem+json`), as [`crate::http::ApiError`] writes it.
/// Only here to describe it: clients branch on `code`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:booking:problem:not_found",
    "title": "Not Found",
    "status": 404,
    "detail": "booking not found",
    "code": "not_found"
}))]
pub struct Problem {
    /// `urn:booking:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// A stable machine-readable code, e.g. `validation_failed`.
    pub code: String,
    /// Every invalid field of a `validation_failed` problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// On a 500 (and a 503 with a logged cause): the id of the log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_id: Option<String>,
    /// On a 429: seconds until a retry may succeed (also `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// On a readiness 503: each dependency's state.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub checks: Option<Map<String, Value>>,
}

/// The whole document of a service: `api` (its handlers' paths, mounted at
/// `spec.prefix`), the health, metrics and documentation endpoints, and the
/// rules every operation of a kind follows (see the module docs).
pub fn service_document(spec: &ApiSpec, api: OpenApi) -> Value {
    let mut doc = OpenApi::builder()
        .info(
            utoipa::openapi::InfoBuilder::new()
                .title(spec.title)
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(spec.description))
                .license(Some(
                    utoipa::openapi::LicenseBuilder::new()
                        .name("Apache-2.0")
                        .identifier(Some("Apache-2.0"))
                        .build(),
                )),
        )
        .build()
        .nest(spec.prefix, api);
    doc.merge(crate::http::health_openapi());
    doc.merge(crate::http::metrics_openapi());
    doc.merge(page::docs_openapi());
    let mut doc = serde_json::to_value(doc).expect("an OpenAPI document serialises");
    apply_rules(spec, &mut doc);
    doc
}

/// The rules of the module docs, applied to every operation.
fn apply_rules(spec: &ApiSpec, doc: &mut Value) {
    let cookie = session::cookie_name(spec.role);
    let components = doc
        .as_object_mut()
        .expect("a document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    components["securitySchemes"] = json!({
        BEARER: {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "The `token` that sign-up and login return, as \
                `Authorization: Bearer <token>`."
        },
        cookie: {
            "type": "apiKey",
            "in": "cookie",
            "name": cookie,
            "description": "The session cookie that sign-up and login set for \
                the web app. A request that changes state with it must come \
                from this host's pages (`Origin`), else 403 `origin_mismatch`."
        }
    });
    let schemas = components
        .as_object_mut()
        .expect("components is an object")
        .entry("schemas")
        .or_insert_with(|| json!({}));
    schemas["Problem"] = serde_json::to_value(Problem::schema()).expect("schema serialises");
    schemas["FieldError"] = serde_json::to_value(FieldError::schema()).expect("schema serialises");

    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if !is_method(method) {
                continue;
            }
            operation_rules(spec, cookie, path, op);
        }
    }
}

fn is_method(key: &str) -> bool {
    matches!(
        key,
        "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
    )
}

fn operation_rules(spec: &ApiSpec, cookie: &str, path: &str, op: &mut Value) {
    let secured = op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get(BEARER).is_some()));
    let has_params = op["parameters"].as_array().is_some_and(|p| !p.is_empty());
    let has_body = op.get("requestBody").is_some();
    // utoipa names an operation after its handler (`list`, `show`), which
    // repeats across modules; the tag (the module) makes it unique.
    if let (Some(tag), Some(id)) = (op["tags"][0].as_str(), op["operationId"].as_str()) {
        op["operationId"] = Value::from(format!("{tag}_{id}"));
    }
    if let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for param in params.iter_mut().filter(|p| p["in"] == "query") {
            empty_means_absent(param);
        }
    }
    let mut add = Vec::new();
    if secured {
        op["security"] = json!([{ BEARER: [] }, { cookie: [] }]);
        add.push(("401", "no valid credentials: no bearer token or session cookie (`missing_token`), or a malformed, forged or expired one (`invalid_token`, `token_expired`)"));
        add.push(("403", "a token of the other role (`wrong_role`), or a cookie-authenticated change not sent from this host's pages (`origin_mismatch`)"));
    }
    if has_params || has_body {
        add.push(("400", "invalid input: a field or parameter (`validation_failed`, listing them in `errors`), a query string that does not parse (`invalid_query`), or a body that is not JSON (`malformed_json`)"));
    }
    if has_body {
        add.push((
            "413",
            "the body is larger than 64 KiB (`payload_too_large`)",
        ));
        add.push((
            "415",
            "the body is not sent as `application/json` (`unsupported_media_type`)",
        ));
    }
    if path.starts_with(spec.prefix) {
        add.push((
            "500",
            "a bug or a failure that retrying cannot fix (`internal_error`); `error_id` names the log line",
        ));
        add.push((
            "503",
            "the database is unavailable (`dependency_unavailable`); retry after `Retry-After` seconds",
        ));
    }
    let responses = op
        .as_object_mut()
        .expect("an operation is an object")
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    for (status, description) in add {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let Ok(code) = status.parse::<u16>() else {
            continue;
        };
        if code < 400 || response.get("content").is_some() {
            continue;
        }
        let description = response["description"].as_str().unwrap_or_default();
        response["content"] = json!({
            PROBLEM_JSON: {
                "schema": { "$ref": "#/components/schemas/Problem" },
                "example": problem_example(code, description),
            }
        });
    }
}

/// An optional query parameter may be sent empty (`?guests=`), which means
/// it was not given, as the extractors read it: a number's schema also
/// admits the empty string.
fn empty_means_absent(param: &mut Value) {
    if param["required"] == true {
        return;
    }
    let schema = &mut param["schema"];
    let numeric = match &schema["type"] {
        Value::String(t) => t == "integer" || t == "number",
        Value::Array(ts) => ts.iter().any(|t| t == "integer" || t == "number"),
        _ => false,
    };
    if numeric {
        *schema = json!({ "anyOf": [schema.take(), { "type": "string", "maxLength": 0 }] });
    }
}

/// An example problem for `status`: its code is the first one the
/// response's description names in parentheses: "… (`not_found`)".
fn problem_example(status: u16, description: &str) -> Value {
    let code = description
        .split_once("(`")
        .and_then(|(_, rest)| rest.split('`').next())
        .filter(|c| c.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_'))
        .unwrap_or("error");
    let status_code = axum::http::StatusCode::from_u16(status).expect("a valid status");
    let mut example = json!({
        "type": format!("urn:booking:problem:{code}"),
        "title": status_code.canonical_reason().unwrap_or("Error"),
        "status": status,
        "detail": description.split(" (`").next().unwrap_or(description),
        "code": code,
    });
    if code == "validation_failed" {
        example["errors"] = json!([{ "field": "guests", "message": "must be at least 1" }]);
    }
    if status == 429 {
        example["retry_after"] = json!(30);
    }
    if status == 500 {
        example["error_id"] = json!("0193a5e0-7a1c-7cc2-9d7e-2f1d3c4b5a69");
    }
    example
}

/// The document as committed under `docs/openapi/`: pretty-printed, with a
/// trailing newline.
pub fn to_pretty_json(doc: &Value) -> String {
    let mut text = serde_json::to_string_pretty(doc).expect("a JSON value serialises");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_code_is_the_first_one_the_description_names() {
        let e = problem_example(
            409,
            "the booking is `final` (`booking_final`), or changed (`booking_changed`)",
        );
        assert_eq!(e["code"], "booking_final");
        assert_eq!(e["type"], "urn:booking:problem:booking_final");
        assert_eq!(e["title"], "Conflict");
        assert_eq!(e["detail"], "the booking is `final`");
        assert_eq!(problem_example(404, "gone")["code"], "error");
    }
}
