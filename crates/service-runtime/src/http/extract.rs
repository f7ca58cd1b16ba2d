use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request},
    http::{header, request::Parts, StatusCode},
};
use serde::de::DeserializeOwned;

use super::{ApiError, FieldError};

/// Largest accepted request body. Every API body is a small JSON object; a
/// bigger one is refused with 413 before it is buffered.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// JSON body extractor whose rejections are problem documents:
/// 415 without a JSON content type, 413 over the body limit, 400
/// `malformed_json` for bad syntax, 400 `validation_failed` naming the field
/// for a missing or mistyped field.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body (or `null`) means `T::default()`:
/// for endpoints whose whole body is optional (`{reason?}`).
#[derive(Debug, Clone)]
pub struct OptionalApiJson<T>(pub T);

/// Query-string extractor whose rejection is a 400 problem document.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json_content_type(&req)?;
        let bytes = read_body(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let has_content_type = req.headers().contains_key(header::CONTENT_TYPE);
        if has_content_type {
            require_json_content_type(&req)?;
        }
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalApiJson(T::default()));
        }
        if !has_content_type {
            return Err(unsupported_media_type());
        }
        // `null` is no body too, as the OpenAPI document describes it.
        parse_json::<Option<T>>(&bytes).map(|body| OptionalApiJson(body.unwrap_or_default()))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "expected Content-Type: application/json",
    )
}

fn require_json_content_type(req: &Request) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(unsupported_media_type())
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body exceeds {} bytes", MAX_BODY_BYTES),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unreadable_body",
                rejection.body_text(),
            )
        }
    })
}

/// Parses JSON, naming the offending field (`guests`, `amenities[2]`) when
/// the shape is wrong rather than the syntax.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(classify(path, inner));
        }
    };
    de.end()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.to_string()))?;
    Ok(value)
}

fn classify(path: String, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = strip_position(&e.to_string());
            // serde reports a missing field at its parent's path; name the field itself.
            let field = match message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split('`').next())
            {
                Some(name) if path == "." => name.to_string(),
                Some(name) => format!("{path}.{name}"),
                None if path == "." => "body".to_string(),
                None => path,
            };
            let message = if message.starts_with("missing field") {
                "is required".to_string()
            } else {
                message
            };
            ApiError::validation(vec![FieldError { field, message }])
        }
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "the body is not valid JSON: {}",
                strip_position(&e.to_string())
            ),
        ),
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        guests: u32,
        tags: Option<Vec<String>>,
    }

    #[test]
    fn names_the_missing_field() {
        let err = parse_json::<Body>(br#"{"guests": 1}"#).unwrap_err();
        assert_eq!(err.code, "validation_failed");
        assert_eq!(err.errors[0].field, "name");
        assert_eq!(err.errors[0].message, "is required");
    }

    #[test]
    fn names_the_mistyped_field_with_its_path() {
        let err = parse_json::<Body>(br#"{"name":"a","guests":-1}"#).unwrap_err();
        assert_eq!(err.errors[0].field, "guests");
        let err = parse_json::<Body>(br#"{"name":"a","guests":1,"tags":["x",2]}"#).unwrap_err();
        assert_eq!(err.errors[0].field, "tags[1]");
    }

    #[test]
    fn syntax_errors_are_malformed_json() {
        for body in [
            &b"{"[..],
            b"nope",
            b"",
            br#"{"name":"a","guests":1} trailing"#,
        ] {
            let err = parse_json::<Body>(body).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(
                err.code,
                "malformed_json",
                "{:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn a_non_object_body_is_a_validation_error_on_the_body() {
        let err = parse_json::<Body>(br#""just a string""#).unwrap_err();
        assert_eq!(err.code, "validation_failed");
        assert_eq!(err.errors[0].field, "body");
        // serde reads structs from arrays positionally, so the path names the element.
        let err = parse_json::<Body>(b"[1,2]").unwrap_err();
        assert_eq!(err.code, "validation_failed");
    }
}
