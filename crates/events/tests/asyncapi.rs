//! `docs/asyncapi.yaml` is what the code says, and a valid AsyncAPI 3.0.0
//! document.
//!
//! Regenerate it after a change to the events:
//! `UPDATE_ASYNCAPI=1 cargo test -p events --test asyncapi`.

use std::path::{Path, PathBuf};

use events::asyncapi::asyncapi_document;
use serde_json::Value;

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

fn committed() -> (PathBuf, String) {
    let path = docs().join("asyncapi.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (path, text)
}

fn render(doc: &Value) -> String {
    let mut text = String::from(
        "# Generated from the `events` crate; do not edit. Regenerate with\n\
         # UPDATE_ASYNCAPI=1 cargo test -p events --test asyncapi\n",
    );
    text.push_str(&serde_saphyr::to_string(doc).expect("the document serialises"));
    text
}

#[test]
fn the_committed_document_matches_the_code() {
    let doc = asyncapi_document();
    let (path, text) = committed();
    if std::env::var_os("UPDATE_ASYNCAPI").is_some() {
        std::fs::write(&path, render(&doc)).unwrap();
        return;
    }
    let read: Value = serde_saphyr::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{} is missing or not YAML ({e}); regenerate it with \
             UPDATE_ASYNCAPI=1 cargo test -p events --test asyncapi",
            path.display()
        )
    });
    assert!(
        read == doc,
        "{} differs from the code; regenerate it with \
         UPDATE_ASYNCAPI=1 cargo test -p events --test asyncapi",
        path.display()
    );
}

#[test]
fn the_document_is_valid_asyncapi_3() {
    let schema: Value = serde_json::from_str(include_str!("fixtures/asyncapi-3.0.0.schema.json"))
        .expect("the AsyncAPI 3.0.0 schema parses");
    let validator = jsonschema::validator_for(&schema).expect("the AsyncAPI schema compiles");
    let doc = asyncapi_document();
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "invalid AsyncAPI 3.0.0: {errors:#?}");

    // A document that breaks the schema is refused: the check is not vacuous.
    let mut broken = doc.clone();
    broken["channels"]["bookingRequests"]["address"] = Value::from(42);
    assert!(!validator.is_valid(&broken));
}

#[test]
fn every_payload_refers_to_a_committed_event_schema() {
    let doc = asyncapi_document();
    let messages = doc["components"]["messages"].as_object().unwrap();
    let mut referenced = 0;
    for (id, message) in messages {
        let Some(file) = message["payload"]["schema"]["$ref"].as_str() else {
            assert_eq!(id, "deadLetter", "only dead letters have no schema file");
            continue;
        };
        let path = docs().join(file);
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{id}: {} ({e})", path.display())),
        )
        .unwrap();
        assert!(
            schema["properties"]["event_type"]["const"] == message["name"]
                || schema
                    .to_string()
                    .contains(message["name"].as_str().unwrap()),
            "{id}: {} describes another event",
            path.display()
        );
        referenced += 1;
    }
    assert_eq!(referenced, events::schemas::event_schemas().len());
}
