//! An HTTP client that sends exactly the bytes and headers given, and the
//! answer read without assuming anything about it.

use std::time::Duration;

use reqwest::{header::HeaderMap, Method};
use serde_json::Value;

use crate::support::content_type_of;

/// A response read without assuming anything about it.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub content_type: String,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON, or `Null` when it is not JSON.
    pub body: Value,
    pub is_json: bool,
}

impl Raw {
    /// Asserts an RFC 9457 problem document with this status and code.
    pub fn problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_problem_shape(self);
        assert_eq!(self.body["code"], code, "{}", self.text);
        &self.body
    }
}

/// Every member RFC 9457 and the contract require of an error body.
fn assert_problem_shape(r: &Raw) {
    assert!(
        r.content_type.starts_with("application/problem+json"),
        "status {} with content type {:?}: {}",
        r.status,
        r.content_type,
        r.text
    );
    assert!(r.is_json, "problem is not JSON: {}", r.text);
    assert_eq!(
        r.body["status"], r.status,
        "status member differs: {}",
        r.text
    );
    for member in ["type", "title", "detail", "code"] {
        let value = r.body[member]
            .as_str()
            .unwrap_or_else(|| panic!("problem lacks {member}: {}", r.text));
        assert!(!value.is_empty(), "empty {member}: {}", r.text);
    }
}

/// An HTTP client that sends exactly the bytes and headers given.
#[derive(Clone)]
pub struct RawClient(pub reqwest::Client);

impl RawClient {
    pub fn new() -> Self {
        Self(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        )
    }

    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Raw {
        let mut req = self.0.request(method, url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.body(b);
        }
        Self::read(req, url).await
    }

    pub async fn read(req: reqwest::RequestBuilder, url: &str) -> Raw {
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let content_type = content_type_of(&headers);
        let bytes = res.bytes().await.expect("response body");
        let text = String::from_utf8_lossy(&bytes).to_string();
        let parsed = serde_json::from_slice::<Value>(&bytes);
        let is_json = parsed.is_ok();
        Raw {
            status,
            content_type,
            headers,
            text,
            body: parsed.unwrap_or(Value::Null),
            is_json,
        }
    }

    /// POSTs the JSON `body` labelled with `content_type`, with this `Authorization`.
    pub async fn post_labelled(
        &self,
        url: &str,
        content_type: &str,
        authorization: &str,
        body: &Value,
    ) -> Raw {
        let headers = [
            ("content-type", content_type),
            ("authorization", authorization),
        ];
        let body = body.to_string().into_bytes();
        self.send(Method::POST, url, &headers, Some(body)).await
    }

    /// Sends `body` as JSON text with a JSON content type, and a bearer token if given.
    pub async fn json(&self, method: Method, url: &str, token: Option<&str>, body: &[u8]) -> Raw {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.send(method, url, &headers, Some(body.to_vec())).await
    }
}
