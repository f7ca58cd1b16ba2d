//! The published event schemas under `docs/events/`, and the compatibility
//! rules that stand in for a schema registry.
//!
//! - the committed schemas of the current `SCHEMA_VERSION` are exactly what the
//!   crate generates (with `UPDATE_EVENT_SCHEMAS=1` the files are rewritten
//!   instead, unless the change breaks consumers);
//! - no change to a payload breaks a consumer of the committed schemas unless
//!   `SCHEMA_VERSION` is raised, and the files of older versions are kept;
//! - `breaking_changes` itself, on hand-written schemas;
//! - real encoded events validate against their schema.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{NaiveDate, TimeZone, Utc};
use events::schemas::{breaking_changes, event_schemas, EventSchema};
use events::*;
use serde_json::{json, Value};

mod common;

const REGENERATE: &str = "UPDATE_EVENT_SCHEMAS=1 cargo test -p events --test event_schemas";

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/events")
}

fn updating() -> bool {
    std::env::var("UPDATE_EVENT_SCHEMAS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// A schema file under `docs/events/<topic>/<event_type>.v<N>.json`.
#[derive(Debug)]
struct Committed {
    topic: String,
    event_type: String,
    version: u32,
    path: String,
    schema: Value,
}

impl Committed {
    /// The path relative to `docs/events/`, as listed in its index.
    fn relative_path(&self) -> String {
        format!("{}/{}.v{}.json", self.topic, self.event_type, self.version)
    }
}

/// Every committed schema file; a file that is not of the expected name or
/// not JSON fails the test (it would otherwise be silently ignored).
fn committed() -> Vec<Committed> {
    let mut found = Vec::new();
    let Ok(topics) = std::fs::read_dir(docs_dir()) else {
        return found;
    };
    let mut topic_dirs: Vec<PathBuf> = topics
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    topic_dirs.sort();
    for dir in topic_dirs {
        let topic = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let path = format!("docs/events/{topic}/{name}");
            let (event_type, version) = name
                .strip_suffix(".json")
                .and_then(|stem| stem.rsplit_once(".v"))
                .and_then(|(event_type, v)| Some((event_type.to_string(), v.parse().ok()?)))
                .unwrap_or_else(|| panic!("{path}: not named <event_type>.v<schema_version>.json"));
            let text = std::fs::read_to_string(&file).unwrap();
            let schema = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{path} is not JSON: {e}; regenerate it: {REGENERATE}"));
            found.push(Committed {
                topic: topic.clone(),
                event_type,
                version,
                path,
                schema,
            });
        }
    }
    found
}

/// Compares the generated schemas with the committed files, once per test
/// run; with `UPDATE_EVENT_SCHEMAS=1`, writes the new and changed ones first.
/// Every test that reads the files calls this, so none reads a file while it
/// is being rewritten. Returns what is wrong with the committed files.
fn sync_committed_files() -> &'static [String] {
    static PROBLEMS: OnceLock<Vec<String>> = OnceLock::new();
    PROBLEMS.get_or_init(|| {
        let on_disk: BTreeMap<String, Value> = committed()
            .into_iter()
            .map(|c| (c.path, c.schema))
            .collect();
        let mut problems = Vec::new();
        for generated in event_schemas() {
            let path = format!("docs/events/{}", generated.relative_path());
            let problem = match on_disk.get(&path) {
                Some(old) if *old == generated.schema => continue,
                Some(old) => {
                    let breaking = breaking_changes(old, &generated.schema);
                    if !breaking.is_empty() {
                        // Never overwrite a published version with an
                        // incompatible one: that is what a version bump is for.
                        problems.push(format!(
                            "{path} is out of date, and the change breaks its consumers \
                             (see current_version_is_compatible_with_committed_schemas), \
                             so regenerating will not overwrite it:\n  - {}",
                            breaking.join("\n  - ")
                        ));
                        continue;
                    }
                    format!(
                        "{path} is out of date (a compatible change); regenerate it: {REGENERATE}"
                    )
                }
                None => format!("{path} is missing; generate it: {REGENERATE}"),
            };
            if updating() {
                write(&generated);
            } else {
                problems.push(problem);
            }
        }
        if updating() {
            // Record every file now present; entries are never removed.
            let mut published = published_index();
            published.extend(committed().into_iter().map(|c| c.relative_path()));
            let index = json!({
                "about": INDEX_ABOUT,
                "published": published,
            });
            let mut text = serde_json::to_string_pretty(&index).unwrap();
            text.push('\n');
            std::fs::write(docs_dir().join("index.json"), text).unwrap();
        }
        problems
    })
}

const INDEX_ABOUT: &str = "Every event schema ever published, relative to docs/events/. \
Written by `UPDATE_EVENT_SCHEMAS=1 cargo test -p events --test event_schemas`, which only ever adds \
entries; the test fails while a listed file is missing. See README.md.";

/// The entries of `docs/events/index.json`: every schema file ever published.
fn published_index() -> BTreeSet<String> {
    let Ok(text) = std::fs::read_to_string(docs_dir().join("index.json")) else {
        return BTreeSet::new();
    };
    let index: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("docs/events/index.json is not JSON: {e}"));
    index["published"]
        .as_array()
        .expect("docs/events/index.json has a `published` list")
        .iter()
        .map(|entry| {
            entry
                .as_str()
                .expect("index entries are strings")
                .to_string()
        })
        .collect()
}

fn write(schema: &EventSchema) {
    let path = docs_dir().join(schema.relative_path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, schema.to_pretty_json()).unwrap();
    eprintln!("wrote docs/events/{}", schema.relative_path());
}

fn fail_with(problems: &[String], advice: &str) {
    assert!(
        problems.is_empty(),
        "{}\n\n{advice}",
        problems
            .iter()
            .map(|p| format!("- {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn committed_schemas_match_the_generated_ones() {
    fail_with(
        sync_committed_files(),
        &format!(
            "docs/events/ must hold the schemas generated from the events crate for \
             schema_version {SCHEMA_VERSION}. After a compatible change, regenerate them with \
             `{REGENERATE}` and commit the files."
        ),
    );
}

#[test]
fn current_version_is_compatible_with_committed_schemas() {
    sync_committed_files();
    let generated = event_schemas();
    let mut problems = Vec::new();
    for old in committed()
        .into_iter()
        .filter(|c| c.version == SCHEMA_VERSION)
    {
        let new = generated
            .iter()
            .find(|g| g.topic == old.topic && g.event_type == old.event_type);
        match new {
            None => problems.push(format!(
                "{}: event type {} is no longer published on {} (removed or renamed)",
                old.path, old.event_type, old.topic
            )),
            Some(new) => problems.extend(
                breaking_changes(&old.schema, &new.schema)
                    .into_iter()
                    .map(|change| format!("{}: {change}", old.path)),
            ),
        }
    }
    let next = SCHEMA_VERSION + 1;
    fail_with(
        &problems,
        &format!(
            "These changes break consumers of schema_version {SCHEMA_VERSION}. Either make the \
             change compatible (add an optional field instead; keep names and types), or raise \
             SCHEMA_VERSION to {next} in crates/events/src/envelope.rs, make every consumer read \
             both versions, and run `{REGENERATE}`: it writes the v{next} files and keeps the \
             v{SCHEMA_VERSION} ones. See docs/events/README.md."
        ),
    );
}

#[test]
fn schemas_of_older_versions_are_kept() {
    sync_committed_files();
    let committed = committed();
    let mut problems = Vec::new();

    let versions: BTreeSet<u32> = committed.iter().map(|c| c.version).collect();
    for v in 1..=SCHEMA_VERSION {
        if !versions.contains(&v) {
            problems.push(format!("no committed schema for schema_version {v}"));
        }
    }
    let published = published_index();
    let present: BTreeSet<String> = committed.iter().map(Committed::relative_path).collect();
    for gone in published.difference(&present) {
        problems.push(format!(
            "docs/events/{gone} was published (docs/events/index.json lists it) and is gone"
        ));
    }
    for unlisted in present.difference(&published) {
        problems.push(format!(
            "docs/events/{unlisted} is not listed in docs/events/index.json; run `{REGENERATE}`"
        ));
    }
    let mut by_event: BTreeMap<(&str, &str), BTreeSet<u32>> = BTreeMap::new();
    for c in &committed {
        if c.version == 0 || c.version > SCHEMA_VERSION {
            problems.push(format!(
                "{}: schema_version {} is not one this build has published (it writes {SCHEMA_VERSION})",
                c.path, c.version
            ));
        }
        by_event
            .entry((&c.topic, &c.event_type))
            .or_default()
            .insert(c.version);
        // The file name and the document must agree.
        let property = |name: &str| c.schema["properties"][name]["const"].clone();
        if property("event_type") != json!(c.event_type)
            || property("schema_version") != json!(c.version)
        {
            problems.push(format!(
                "{}: its event_type / schema_version consts do not match its name",
                c.path
            ));
        }
        if let Err(e) = jsonschema::meta::validate(&c.schema) {
            problems.push(format!("{}: not a valid JSON Schema: {e}", c.path));
        }
    }
    // An event type has no gap between its first and its last version.
    for ((topic, event_type), versions) in &by_event {
        let (first, last) = (*versions.first().unwrap(), *versions.last().unwrap());
        for v in first..=last {
            if !versions.contains(&v) {
                problems.push(format!(
                    "docs/events/{topic}/{event_type}.v{v}.json is missing (v{first} and v{last} exist)"
                ));
            }
        }
    }
    fail_with(
        &problems,
        "The schema of every version ever published stays committed: messages of older \
         versions remain on the topics and dead-letter topics, and their consumers read them \
         by it. Restore the deleted files from git history.",
    );
}

// ---- validating real events --------------------------------------------------

fn at(h: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 1, h, 0, 0).unwrap()
}

fn encoded<P: EventPayload>(topic: &'static str, payload: P) -> (&'static str, String, Value) {
    let envelope = Envelope::new("example-service", payload);
    let value = serde_json::from_str(&envelope.to_json()).unwrap();
    (topic, envelope.event_type().to_string(), value)
}

/// One encoded message of every event type, built as the services build them.
fn examples() -> Vec<(&'static str, String, Value)> {
    let details = PropertyDetails {
        name: "Sea view".into(),
        city: "Lisbon".into(),
        country: "PT".into(),
        address: None,
        description: Some("Two rooms".into()),
        price_per_night_cents: 10_000,
        cleaning_fee_cents: 2_000,
        service_fee_cents: 1_000,
        currency: "EUR".into(),
        max_guests: 4,
        bedrooms: Some(2),
        bathrooms: None,
        amenities: vec!["wifi".into()],
    };
    vec![
        encoded(
            topics::BOOKING_REQUESTS,
            common::pending_request(
                NaiveDate::from_ymd_opt(2030, 2, 1).unwrap(),
                33_000,
                "EUR",
                at(8),
            ),
        ),
        encoded(
            topics::BOOKING_REQUESTS,
            BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
                booking_id: "b-1".into(),
                traveler_id: "t-1".into(),
                reason: None,
                requested_at: at(9),
            }),
        ),
        encoded(
            topics::BOOKING_UPDATES,
            BookingUpdateEvent::StatusChanged(BookingStatusChanged {
                booking_id: "b-1".into(),
                property_id: "p-1".into(),
                owner_id: "o-1".into(),
                traveler_id: "t-1".into(),
                status: BookingStatus::Accepted,
                previous_status: BookingStatus::Pending,
                reason: Some("see you soon".into()),
                changed_by: Actor {
                    role: ActorRole::Owner,
                    id: "o-1".into(),
                },
                version: 1,
                changed_at: at(10),
            }),
        ),
        encoded(
            topics::PROPERTY_LISTINGS,
            PropertyEvent::Upserted(PropertySnapshot {
                property_id: "p-1".into(),
                owner_id: "o-1".into(),
                details,
                active: true,
                version: 3,
                created_at: at(1),
                updated_at: at(2),
            }),
        ),
        encoded(
            topics::PROPERTY_LISTINGS,
            PropertyEvent::Delisted(PropertyDelisted {
                property_id: "p-1".into(),
                owner_id: "o-1".into(),
                version: 4,
                delisted_at: at(3),
            }),
        ),
    ]
}

fn validator(schema: &EventSchema) -> jsonschema::Validator {
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema.schema)
        .unwrap_or_else(|e| panic!("{}: not a usable schema: {e}", schema.relative_path()))
}

fn schema_of<'a>(schemas: &'a [EventSchema], topic: &str, event_type: &str) -> &'a EventSchema {
    schemas
        .iter()
        .find(|s| s.topic == topic && s.event_type == event_type)
        .unwrap_or_else(|| panic!("no schema generated for {event_type} on {topic}"))
}

#[test]
fn every_event_type_has_one_schema_and_one_example() {
    let schemas = event_schemas();
    let generated: Vec<(&str, &str)> = schemas
        .iter()
        .map(|s| (s.topic, s.event_type.as_str()))
        .collect();
    let examples = examples();
    let encoded: Vec<(&str, &str)> = examples.iter().map(|(t, e, _)| (*t, e.as_str())).collect();
    assert_eq!(
        generated, encoded,
        "every event type needs an example in examples(), in schema order"
    );
    for schema in &schemas {
        assert_eq!(schema.schema_version, SCHEMA_VERSION);
        jsonschema::meta::validate(&schema.schema)
            .unwrap_or_else(|e| panic!("{}: {e}", schema.relative_path()));
    }
}

#[test]
fn encoded_events_validate_against_their_schema() {
    let schemas = event_schemas();
    for (topic, event_type, value) in examples() {
        let schema = schema_of(&schemas, topic, &event_type);
        let errors: Vec<String> = validator(schema)
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{event_type} does not match {}:\n{}\n{value:#}",
            schema.relative_path(),
            errors.join("\n")
        );
    }
}

#[test]
fn schemas_reject_what_consumers_would_reject() {
    let schemas = event_schemas();
    let (topic, event_type, valid) = examples().remove(0);
    let check = validator(schema_of(&schemas, topic, &event_type));
    assert!(check.is_valid(&valid));

    let mut missing_field = valid.clone();
    missing_field["data"]
        .as_object_mut()
        .unwrap()
        .remove("traveler_id");
    let mut wrong_type = valid.clone();
    wrong_type["data"]["nights"] = json!("three");
    let mut unknown_status = valid.clone();
    unknown_status["data"]["status"] = json!("MAYBE");
    let mut other_event = valid.clone();
    other_event["event_type"] = json!("booking.cancellation_requested");
    let mut other_version = valid.clone();
    other_version["schema_version"] = json!(SCHEMA_VERSION + 1);
    let mut bad_timestamp = valid.clone();
    bad_timestamp["occurred_at"] = json!("yesterday");
    for (what, value) in [
        ("a missing field", missing_field),
        ("a wrong type", wrong_type),
        ("an unknown enum value", unknown_status),
        ("another event type", other_event),
        ("another schema version", other_version),
        ("a malformed timestamp", bad_timestamp),
    ] {
        assert!(!check.is_valid(&value), "accepted {what}: {value:#}");
    }

    // Consumers ignore fields they do not know, and so do the schemas:
    // that is what makes adding an optional field compatible.
    let mut extra = valid.clone();
    extra["data"]["something_new"] = json!(1);
    extra["trace_id"] = json!("abc");
    assert!(check.is_valid(&extra));
}

// ---- breaking_changes on hand-written schemas ---------------------------------

fn base() -> Value {
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "event_type": { "type": "string", "const": "thing.happened" },
            "data": { "$ref": "#/$defs/Payload" }
        },
        "required": ["event_type", "data"],
        "$defs": {
            "Payload": {
                "description": "What happened.",
                "type": "object",
                "properties": {
                    "id": { "type": "string" },
                    "count": { "type": "integer", "format": "uint32", "minimum": 0 },
                    "note": { "type": ["string", "null"] },
                    "status": { "$ref": "#/$defs/Status" },
                    "tags": { "type": "array", "items": { "type": "string" } },
                    "place": {
                        "type": "object",
                        "properties": { "city": { "type": "string" } },
                        "required": ["city"]
                    }
                },
                "required": ["id", "count", "status", "tags", "place"]
            },
            "Status": { "type": "string", "enum": ["OPEN", "CLOSED"] }
        }
    })
}

fn edited(edit: impl FnOnce(&mut Value)) -> Value {
    let mut schema = base();
    edit(&mut schema);
    schema
}

fn payload(schema: &mut Value) -> &mut Value {
    &mut schema["$defs"]["Payload"]
}

fn remove_property(schema: &mut Value, name: &str) -> Value {
    payload(schema)["properties"]
        .as_object_mut()
        .unwrap()
        .remove(name)
        .unwrap()
}

fn require(schema: &mut Value, name: &str) {
    payload(schema)["required"]
        .as_array_mut()
        .unwrap()
        .push(json!(name));
}

fn unrequire(schema: &mut Value, name: &str) {
    payload(schema)["required"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n != name);
}

/// Asserts that `new` breaks `base()` with exactly these messages.
fn assert_breaks(new: Value, expected: &[&str]) {
    assert_eq!(breaking_changes(&base(), &new), expected, "{new:#}");
}

#[test]
fn unchanged_schema_is_compatible() {
    assert_breaks(base(), &[]);
}

#[test]
fn removed_field_is_breaking() {
    assert_breaks(
        edited(|s| {
            remove_property(s, "count");
            unrequire(s, "count");
        }),
        &["data.count: property removed"],
    );
    // Also an optional one: old consumers read it.
    assert_breaks(
        edited(|s| {
            remove_property(s, "note");
        }),
        &["data.note: property removed"],
    );
}

#[test]
fn renamed_field_is_breaking() {
    assert_breaks(
        edited(|s| {
            let id = remove_property(s, "id");
            payload(s)["properties"]["booking_id"] = id;
            unrequire(s, "id");
            require(s, "booking_id");
        }),
        &[
            "data.id: property removed (renamed? new properties here: booking_id)",
            "data.booking_id: new required property",
        ],
    );
}

#[test]
fn type_change_is_breaking() {
    assert_breaks(
        edited(|s| payload(s)["properties"]["count"]["type"] = json!("string")),
        &[r#"data.count: type changed: type was "integer", now "string""#],
    );
    assert_breaks(
        edited(|s| payload(s)["properties"]["count"]["format"] = json!("uint64")),
        &[r#"data.count: type changed: format was "uint32", now "uint64""#],
    );
    // Made nullable (String -> Option<String>): old consumers cannot read null.
    assert_breaks(
        edited(|s| payload(s)["properties"]["id"]["type"] = json!(["string", "null"])),
        &[r#"data.id: type changed: type was "string", now ["null","string"]"#],
    );
    // Through a $ref: a new enum value is one an old consumer cannot decode.
    assert_breaks(
        edited(|s| s["$defs"]["Status"]["enum"] = json!(["OPEN", "CLOSED", "PAUSED"])),
        &[
            r#"data.status: type changed: enum was ["CLOSED","OPEN"], now ["CLOSED","OPEN","PAUSED"]"#,
        ],
    );
    // Inside arrays and nested objects.
    assert_breaks(
        edited(|s| payload(s)["properties"]["tags"]["items"]["type"] = json!("integer")),
        &[r#"data.tags[]: type changed: type was "string", now "integer""#],
    );
    assert_breaks(
        edited(|s| {
            payload(s)["properties"]["place"]["properties"]["city"] = json!({ "type": "number" })
        }),
        &[r#"data.place.city: type changed: type was "string", now "number""#],
    );
    // A struct replaced by a union (e.g. Option<Struct>).
    assert_breaks(
        edited(|s| {
            payload(s)["properties"]["status"] =
                json!({ "anyOf": [{ "$ref": "#/$defs/Status" }, { "type": "null" }] })
        }),
        &[
            r#"data.status: type changed: type was "string", now absent"#,
            r#"data.status: type changed: enum was ["CLOSED","OPEN"], now absent"#,
            "data.status: type changed: anyOf had 0 alternatives, now 2",
        ],
    );
    assert_breaks(
        edited(|s| s["properties"]["event_type"]["const"] = json!("thing.occurred")),
        &[r#"event_type: type changed: const was "thing.happened", now "thing.occurred""#],
    );
}

#[test]
fn new_required_field_is_breaking() {
    assert_breaks(
        edited(|s| {
            payload(s)["properties"]["owner_id"] = json!({ "type": "string" });
            require(s, "owner_id");
        }),
        &["data.owner_id: new required property"],
    );
    assert_breaks(
        edited(|s| require(s, "note")),
        &["data.note: optional property is now required"],
    );
    assert_breaks(
        edited(|s| {
            let place = &mut payload(s)["properties"]["place"];
            place["properties"]["zip"] = json!({ "type": "string" });
            place["required"].as_array_mut().unwrap().push(json!("zip"));
        }),
        &["data.place.zip: new required property"],
    );
}

#[test]
fn new_optional_field_is_compatible() {
    assert_breaks(
        edited(|s| payload(s)["properties"]["comment"] = json!({ "type": ["string", "null"] })),
        &[],
    );
    assert_breaks(
        edited(|s| s["properties"]["trace_id"] = json!({ "type": "string" })),
        &[],
    );
}

#[test]
fn changes_consumers_cannot_see_are_compatible() {
    assert_breaks(
        edited(|s| {
            // Descriptions, order, and the names of definitions.
            payload(s)["description"] = json!("Something else.");
            s["$defs"]["Status"]["enum"] = json!(["CLOSED", "OPEN"]);
            payload(s)["required"].as_array_mut().unwrap().reverse();
            let status = s["$defs"]
                .as_object_mut()
                .unwrap()
                .remove("Status")
                .unwrap();
            s["$defs"]["BookingState"] = status;
            payload(s)["properties"]["status"] = json!({ "$ref": "#/$defs/BookingState" });
            // A required field made optional: producers still write it.
            unrequire(s, "count");
        }),
        &[],
    );
}

#[test]
fn recursive_definitions_terminate() {
    let list = json!({
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": { "next": { "anyOf": [{ "$ref": "#/$defs/Node" }, { "type": "null" }] } }
            }
        }
    });
    assert!(breaking_changes(&list, &list).is_empty());
    let mut typed = list.clone();
    typed["$defs"]["Node"]["properties"]["value"] = json!({ "type": "string" });
    typed["$defs"]["Node"]["required"] = json!(["value"]);
    assert_eq!(
        breaking_changes(&list, &typed),
        ["value: new required property"]
    );
}

#[test]
fn unresolvable_refs_are_reported() {
    let broken = edited(|s| s["properties"]["data"] = json!({ "$ref": "#/$defs/Gone" }));
    assert_eq!(
        breaking_changes(&base(), &broken),
        ["data: new schema has an unresolvable $ref #/$defs/Gone"]
    );
}

#[test]
fn breaking_edits_of_real_schemas_are_detected() {
    for schema in event_schemas() {
        let path = schema.relative_path();
        assert_eq!(
            breaking_changes(&schema.schema, &schema.schema),
            Vec::<String>::new()
        );

        // The payload's fields live in $defs, behind data's $ref.
        let def = schema.schema["properties"]["data"]["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("{path}: data is not a $ref"))
            .to_string();
        let mut edited = schema.schema.clone();
        let properties = edited["$defs"][&def]["properties"].as_object_mut().unwrap();
        let first = properties.keys().next().unwrap().clone();
        properties.remove(&first);
        assert_eq!(
            breaking_changes(&schema.schema, &edited),
            [format!("data.{first}: property removed")],
            "{path}"
        );
    }
}
