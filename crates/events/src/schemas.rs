//! JSON Schemas of every message value, and the compatibility check a schema
//! registry would make.
//!
//! The platform has no schema registry: both services compile against this
//! crate instead. That catches a mismatch at build time only while both
//! services are built from the same commit; during a rolling deploy, or for a
//! message still on a topic (or on a dead-letter topic) from an older build, a
//! consumer reads what an *older or newer* producer wrote. So the schemas are
//! also published as files under `docs/events/` (one per event type and
//! schema version), and the crate's tests fail when a change to a payload would
//! break a consumer without `SCHEMA_VERSION` being raised.
//!
//! The schemas are generated with `schemars` from the very types serde writes,
//! so they cannot drift from the wire format; [`event_schemas`] reshapes the
//! per-topic envelope schema into one document per event type.

use std::collections::{BTreeMap, BTreeSet};

use schemars::generate::SchemaSettings;
use schemars::JsonSchema;
use serde_json::{json, Map, Value};

use crate::{
    topics, BookingRequestEvent, BookingUpdateEvent, Envelope, PropertyEvent, SCHEMA_VERSION,
};

/// The JSON Schema dialect of every generated document.
pub const JSON_SCHEMA_DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// One published schema: the whole Kafka message value of one event type, as
/// written by this build (`schema_version` = [`SCHEMA_VERSION`]).
#[derive(Debug, Clone, PartialEq)]
pub struct EventSchema {
    /// Default name of the topic the event is published on (see [`topics`]).
    pub topic: &'static str,
    /// The `event_type` of the envelope, e.g. `booking.requested`.
    pub event_type: String,
    /// The `schema_version` the document describes.
    pub schema_version: u32,
    /// The JSON Schema (draft 2020-12) of the message value, in canonical
    /// form (keys and `required` lists sorted), so it compares equal to the
    /// committed file read back.
    pub schema: Value,
}

impl EventSchema {
    /// Where the document lives under `docs/events/`, e.g.
    /// `booking-requests/booking.requested.v1.json`: one file per event type
    /// and version, so older versions stay next to the current one.
    pub fn relative_path(&self) -> String {
        schema_file_path(self.topic, &self.event_type, self.schema_version)
    }

    /// The document as committed: pretty-printed, keys sorted, trailing newline.
    /// Keys are sorted explicitly (see `canonical`) so the file is the same
    /// whether or not serde_json's `preserve_order` feature is on in a build.
    pub fn to_pretty_json(&self) -> String {
        let mut text =
            serde_json::to_string_pretty(&self.schema).expect("a JSON value always serialises");
        text.push('\n');
        text
    }
}

/// The path under `docs/events/` of the schema of `event_type` at `version`,
/// e.g. `booking-requests/booking.requested.v1.json`.
pub fn schema_file_path(topic: &str, event_type: &str, version: u32) -> String {
    format!("{topic}/{event_type}.v{version}.json")
}

/// Every event type of every topic, with the JSON Schema of its message value
/// at the current [`SCHEMA_VERSION`], in a stable order (topic, then event type
/// as declared).
///
/// The event types are read from the payload enums' schemas, so a new variant
/// gets a schema (and the drift test asks for its file) without touching this
/// module; a new *topic* is added here.
pub fn event_schemas() -> Vec<EventSchema> {
    let mut all = Vec::new();
    all.extend(topic_schemas::<BookingRequestEvent>(
        topics::BOOKING_REQUESTS,
    ));
    all.extend(topic_schemas::<BookingUpdateEvent>(topics::BOOKING_UPDATES));
    all.extend(topic_schemas::<PropertyEvent>(topics::PROPERTY_LISTINGS));
    all
}

/// Splits the schema of `Envelope<P>` (envelope fields plus a `oneOf` with one
/// branch per variant) into one self-contained document per variant, which is
/// what a consumer of one event type wants to read and what is versioned.
fn topic_schemas<P: JsonSchema>(topic: &'static str) -> Vec<EventSchema> {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let root = generator.into_root_schema_for::<Envelope<P>>().to_value();
    let Value::Object(mut root) = root else {
        panic!("the envelope schema of {topic} is not an object");
    };
    let Some(Value::Array(branches)) = root.remove("oneOf") else {
        panic!("the envelope schema of {topic} has no oneOf of event types");
    };
    let envelope_description = root.remove("description");

    branches
        .into_iter()
        .map(|branch| {
            let Value::Object(mut branch) = branch else {
                panic!("an event-type branch of {topic} is not an object");
            };
            let event_type = branch
                .get("properties")
                .and_then(|p| p.get("event_type"))
                .and_then(|t| t.get("const"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("a branch of {topic} has no const event_type"))
                .to_string();
            let mut doc = root.clone();
            // Merge the branch (`event_type` const, `data`) into the envelope.
            let properties = doc
                .entry("properties")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("envelope properties are an object");
            if let Some(Value::Object(extra)) = branch.remove("properties") {
                properties.extend(extra);
            }
            // The version this document describes is part of the contract.
            if let Some(Value::Object(version)) = properties.get_mut("schema_version") {
                version.insert("const".into(), SCHEMA_VERSION.into());
            }
            let required = doc
                .entry("required")
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("envelope required is an array");
            if let Some(Value::Array(extra)) = branch.remove("required") {
                required.extend(extra);
            }
            branch.remove("type");
            branch.remove("description");
            assert!(
                branch.is_empty(),
                "unexpected keywords in the {event_type} branch of {topic}: {branch:?}; \
                 teach events::schemas to merge them"
            );

            let envelope = envelope_description
                .as_ref()
                .and_then(Value::as_str)
                .unwrap_or_default();
            doc.insert("$schema".into(), JSON_SCHEMA_DIALECT.into());
            doc.insert(
                "$id".into(),
                format!("urn:events:{topic}:{event_type}:v{SCHEMA_VERSION}").into(),
            );
            doc.insert(
                "title".into(),
                format!("{event_type} v{SCHEMA_VERSION}").into(),
            );
            doc.insert(
                "description".into(),
                format!(
                    "The value of a `{event_type}` message on the `{topic}` Kafka topic, \
                     schema_version {SCHEMA_VERSION}: the event envelope, with `event_type` \
                     fixed and the payload under `data`. Generated from the `events` crate \
                     (see docs/events/README.md); do not edit by hand.\n\n{envelope}"
                )
                .trim_end()
                .into(),
            );
            prune_definitions(&mut doc);
            EventSchema {
                topic,
                event_type,
                schema_version: SCHEMA_VERSION,
                schema: canonical(&Value::Object(doc)),
            }
        })
        .collect()
}

/// Drops the `$defs` a document does not reach through `$ref`: the shared
/// generator also defined the other variants' payloads.
fn prune_definitions(doc: &mut Map<String, Value>) {
    let Some(Value::Object(defs)) = doc.remove("$defs") else {
        return;
    };
    let mut reachable = BTreeSet::new();
    let mut pending = Vec::new();
    collect_refs(&Value::Object(doc.clone()), &mut pending);
    while let Some(name) = pending.pop() {
        if let Some(def) = defs.get(&name) {
            if reachable.insert(name) {
                collect_refs(def, &mut pending);
            }
        }
    }
    let kept: Map<String, Value> = defs
        .into_iter()
        .filter(|(name, _)| reachable.contains(name))
        .collect();
    if !kept.is_empty() {
        doc.insert("$defs".into(), Value::Object(kept));
    }
}

fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(name) = child.as_str().and_then(|r| r.strip_prefix("#/$defs/")) {
                        out.push(name.to_string());
                    }
                } else {
                    collect_refs(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, out)),
        _ => {}
    }
}

/// `value` with every object's keys in sorted order and every `required` list
/// sorted (its order carries no meaning), so rendering is deterministic.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(key, child)| {
                        let child = match (key.as_str(), child) {
                            ("required", Value::Array(names)) => {
                                let mut names = names.clone();
                                names.sort_by_key(|name| name.to_string());
                                Value::Array(names)
                            }
                            _ => canonical(child),
                        };
                        (key.clone(), child)
                    })
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The changes from schema `old` to schema `new` that break a consumer, one
/// human-readable line each; empty when `new` is compatible.
///
/// Consumers are written against one version and read messages written by
/// both older and newer producers (rolling deploys, replays, dead-letter
/// re-drives), so a change is breaking in either direction:
/// - a property removed (or renamed, which is a removal plus an addition):
///   an old consumer no longer finds it;
/// - a property's type changed: its `type` (`null` included), `format`,
///   `enum` or `const`, or the shape of an `anyOf`/`oneOf`/`allOf`;
/// - a property newly required (a new non-optional field, or an optional one
///   made required): a new consumer rejects messages of an older producer.
///
/// Adding an optional property is compatible (consumers ignore unknown
/// fields), as is making a required property optional.
///
/// The comparison starts at the document root and recurses through
/// `properties`, array `items` and the branches of `anyOf`/`oneOf`/`allOf`,
/// following local `$ref`s (`#/$defs/...`) into each document's own `$defs`,
/// so a definition renamed without changing its shape is not a change.
pub fn breaking_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut comparison = Comparison {
        old_root: old,
        new_root: new,
        in_progress: Vec::new(),
        changes: Vec::new(),
    };
    comparison.compare("", old, new);
    comparison.changes
}

struct Comparison<'a> {
    old_root: &'a Value,
    new_root: &'a Value,
    /// `$ref` pairs being compared further up the stack: recursive types stop there.
    in_progress: Vec<(String, String)>,
    changes: Vec<String>,
}

/// Keywords that say what values a schema accepts and that a consumer depends on.
const TYPE_KEYWORDS: [&str; 4] = ["type", "format", "enum", "const"];
const COMPOSITION_KEYWORDS: [&str; 3] = ["anyOf", "oneOf", "allOf"];

impl<'a> Comparison<'a> {
    fn compare(&mut self, path: &str, old: &'a Value, new: &'a Value) {
        let (old_ref, old) = match resolve(self.old_root, old) {
            Ok(resolved) => resolved,
            Err(r) => return self.report(path, format!("old schema has an unresolvable $ref {r}")),
        };
        let (new_ref, new) = match resolve(self.new_root, new) {
            Ok(resolved) => resolved,
            Err(r) => return self.report(path, format!("new schema has an unresolvable $ref {r}")),
        };
        let refs = (old_ref.unwrap_or_default(), new_ref.unwrap_or_default());
        let followed_ref = !refs.0.is_empty() || !refs.1.is_empty();
        if followed_ref {
            if self.in_progress.contains(&refs) {
                return;
            }
            self.in_progress.push(refs);
        }

        for keyword in TYPE_KEYWORDS {
            let (before, after) = (normalised(old.get(keyword)), normalised(new.get(keyword)));
            if before != after {
                self.report(
                    path,
                    format!(
                        "type changed: {keyword} was {}, now {}",
                        describe(&before),
                        describe(&after)
                    ),
                );
            }
        }

        for keyword in COMPOSITION_KEYWORDS {
            match (array(old.get(keyword)), array(new.get(keyword))) {
                (None, None) => {}
                (Some(before), Some(after)) if before.len() == after.len() => {
                    for (i, (b, a)) in before.iter().zip(after).enumerate() {
                        self.compare(&format!("{path}({keyword} #{i})"), b, a);
                    }
                }
                (before, after) => self.report(
                    path,
                    format!(
                        "type changed: {keyword} had {} alternatives, now {}",
                        before.map_or(0, Vec::len),
                        after.map_or(0, Vec::len)
                    ),
                ),
            }
        }

        if let (Some(before), Some(after)) = (old.get("items"), new.get("items")) {
            self.compare(&format!("{path}[]"), before, after);
        }

        let old_properties = properties(old);
        let new_properties = properties(new);
        let added: Vec<&str> = new_properties
            .keys()
            .filter(|name| !old_properties.contains_key(*name))
            .copied()
            .collect();
        for (name, before) in &old_properties {
            let child = join(path, name);
            match new_properties.get(name) {
                Some(after) => self.compare(&child, before, after),
                None if added.is_empty() => self.report(&child, "property removed".into()),
                None => self.report(
                    &child,
                    format!(
                        "property removed (renamed? new properties here: {})",
                        added.join(", ")
                    ),
                ),
            }
        }
        let old_required = names(old.get("required"));
        for name in names(new.get("required")) {
            if !old_required.contains(&name) {
                let what = if old_properties.contains_key(name.as_str()) {
                    "optional property is now required"
                } else {
                    "new required property"
                };
                self.report(&join(path, &name), what.into());
            }
        }

        if followed_ref {
            self.in_progress.pop();
        }
    }

    fn report(&mut self, path: &str, change: String) {
        let path = if path.is_empty() { "(root)" } else { path };
        self.changes.push(format!("{path}: {change}"));
    }
}

/// Follows local `$ref`s to the schema they name. Returns the last `$ref`
/// followed (for cycle detection) or the unresolvable one as the error.
/// Keywords beside a `$ref` (a description, usually) are not compared.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> Result<(Option<String>, &'a Value), String> {
    let mut current = schema;
    let mut last = None;
    for _ in 0..32 {
        let Some(reference) = current.get("$ref").and_then(Value::as_str) else {
            return Ok((last, current));
        };
        current = reference
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .ok_or_else(|| reference.to_string())?;
        last = Some(reference.to_string());
    }
    Err(format!(
        "{} (a chain of more than 32)",
        last.unwrap_or_default()
    ))
}

/// A keyword's value in a form where equal meaning compares equal: `type` and
/// `enum` lists as sets.
fn normalised(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(|item| item.to_string());
            items.dedup();
            Some(Value::Array(items))
        }
        other => Some(other.clone()),
    }
}

fn describe(value: &Option<Value>) -> String {
    value
        .as_ref()
        .map_or_else(|| "absent".to_string(), Value::to_string)
}

fn properties(schema: &Value) -> BTreeMap<&str, &Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(name, property)| (name.as_str(), property))
        .collect()
}

fn array(value: Option<&Value>) -> Option<&Vec<Value>> {
    value.and_then(Value::as_array)
}

fn names(value: Option<&Value>) -> Vec<String> {
    array(value)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}
