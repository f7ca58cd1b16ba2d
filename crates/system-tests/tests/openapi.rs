//! The OpenAPI documents: `docs/openapi/*.json` is what the code says, each
//! service serves it at `GET /openapi.json` and renders it at `GET /docs`,
//! and every rule the documents promise holds in them.
//!
//! Regenerate the committed copies after a change to a handler or a type:
//! `UPDATE_OPENAPI=1 cargo test -p system-tests --test openapi`.
//! Runs on `System::embedded()` (no servers needed).

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use service_runtime::assembly::openapi_document;
use support::System;

fn documents() -> [(&'static str, Value); 2] {
    [
        (
            "traveler-service",
            openapi_document::<traveler_service::TravelerService>(),
        ),
        (
            "owner-service",
            openapi_document::<owner_service::OwnerService>(),
        ),
    ]
}

fn committed_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../docs/openapi/{name}.json"))
}

const REGENERATE: &str =
    "regenerate it with UPDATE_OPENAPI=1 cargo test -p system-tests --test openapi";

#[test]
fn the_committed_documents_match_the_code() {
    for (name, doc) in documents() {
        let path = committed_path(name);
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, service_runtime::openapi::to_pretty_json(&doc)).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let read: Value = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "{} is missing or not JSON ({e}); {REGENERATE}",
                path.display()
            )
        });
        assert!(
            read == doc,
            "{} differs from the code; {REGENERATE}",
            path.display()
        );
    }
}

/// Every operation of a document, as (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[test]
fn every_operation_follows_the_shared_rules() {
    for (name, doc) in documents() {
        assert_eq!(doc["openapi"], "3.1.0", "{name}");
        let prefix = if name == "traveler-service" {
            "/api/travelers"
        } else {
            "/api/owners"
        };
        let cookie = if name == "traveler-service" {
            "traveler_session"
        } else {
            "owner_session"
        };
        assert_eq!(
            doc["components"]["securitySchemes"][cookie]["in"], "cookie",
            "{name}"
        );
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer",
            "{name}"
        );
        let ops = operations(&doc);
        assert!(ops.len() >= 15, "{name}: only {} operations", ops.len());
        let mut ids: Vec<&str> = ops
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().expect("an operationId"))
            .collect();
        ids.sort_unstable();
        let count = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), count, "{name}: operation ids repeat");
        for (path, method, op) in ops {
            let at = format!("{name} {method} {path}");
            for (key, value) in op.as_object().unwrap() {
                assert!(!value.is_null(), "{at}: {key} is null");
            }
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{at}: no success response"
            );
            if path.starts_with(prefix) {
                for status in ["500", "503"] {
                    assert!(responses.contains_key(status), "{at}: no {status}");
                }
            }
            if let Some(security) = op["security"].as_array() {
                assert_eq!(
                    security,
                    &vec![
                        serde_json::json!({"bearer": []}),
                        serde_json::json!({ cookie: [] })
                    ],
                    "{at}"
                );
                assert!(responses.contains_key("401"), "{at}: no 401");
                assert!(responses.contains_key("403"), "{at}: no 403");
            }
            if op.get("requestBody").is_some() {
                for status in ["400", "413", "415"] {
                    assert!(responses.contains_key(status), "{at}: no {status}");
                }
            }
            for (status, response) in responses {
                if status.as_str() >= "400" {
                    let problem = &response["content"]["application/problem+json"];
                    assert_eq!(
                        problem["schema"]["$ref"], "#/components/schemas/Problem",
                        "{at} {status}"
                    );
                    let example = &problem["example"];
                    assert_eq!(example["status"].to_string(), *status, "{at}");
                    let code = example["code"].as_str().unwrap();
                    assert!(
                        code != "error",
                        "{at} {status}: the description names no code"
                    );
                    assert_eq!(
                        example["type"],
                        format!("urn:booking:problem:{code}"),
                        "{at}"
                    );
                }
            }
        }
    }
}

/// The identity and notification operations are one piece of code in both
/// services, so they are described the same way.
#[test]
fn shared_operations_are_described_alike() {
    let [(_, traveler), (_, owner)] = documents();
    for path in [
        "signup",
        "login",
        "logout",
        "me",
        "notifications",
        "notifications/stream",
    ] {
        let t = &traveler["paths"][format!("/api/travelers/{path}")];
        let o = &owner["paths"][format!("/api/owners/{path}")];
        assert!(t.is_object(), "{path}");
        let cookie_free = |v: &Value| {
            v.to_string()
                .replace("traveler_session", "SESSION")
                .replace("owner_session", "SESSION")
        };
        assert_eq!(cookie_free(t), cookie_free(o), "{path}");
    }
}

#[tokio::test]
async fn each_service_serves_its_document_and_reference() {
    let sys = System::embedded().await;
    let client = reqwest::Client::new();
    for ((name, doc), base) in documents().into_iter().zip([&sys.traveler, &sys.owner]) {
        let served = client
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(served.status(), 200, "{name}");
        let served: Value = served.json().await.unwrap();
        assert_eq!(
            served, doc,
            "{name}: /openapi.json is not the generated document"
        );

        let page = client.get(format!("{base}/docs")).send().await.unwrap();
        assert_eq!(page.status(), 200, "{name}");
        let csp = page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(csp.contains("script-src 'self'"), "{name}: {csp}");
        assert!(page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = page.text().await.unwrap();
        assert!(
            !html.contains("<script"),
            "{name}: the page needs no script"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{name}: the page loads nothing from elsewhere"
        );
        for (path, method, _) in operations(&doc) {
            assert!(
                html.contains(&format!(
                    "{}</span> <code>{path}</code>",
                    method.to_uppercase()
                )),
                "{name}: /docs does not show {method} {path}"
            );
        }
        for sheet in ["/assets/app.css", "/assets/docs.css"] {
            let css = client.get(format!("{base}{sheet}")).send().await.unwrap();
            assert_eq!(css.status(), 200, "{name} {sheet}");
        }

        // Every described path is routed: with no credentials and no body,
        // each answers something other than "no such route".
        for (path, method, _) in operations(&doc) {
            let url = format!(
                "{base}{}",
                path.replace("{id}", "0193a5df-0000-7000-8000-000000000000")
            );
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            if path.ends_with("/stream") {
                continue; // answers 401 without credentials, but keeps a stream open otherwise
            }
            let response = client.request(method.clone(), &url).send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                !body.contains("route_not_found") && status != 405,
                "{name} {method} {path}: {status} {body}"
            );
        }
    }
}
