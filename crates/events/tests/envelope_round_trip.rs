//! The wire format both services depend on: round trips, headers, and the
//! decode errors that send a message to the dead-letter topic.

use chrono::{NaiveDate, TimeZone, Utc};
use events::*;

mod common;

fn requested() -> BookingRequestEvent {
    common::pending_request(
        NaiveDate::from_ymd_opt(2030, 1, 1).unwrap(),
        30_000,
        "USD",
        Utc.with_ymd_and_hms(2029, 12, 1, 8, 30, 0).unwrap(),
    )
}

#[test]
fn envelope_round_trips_through_json() {
    let envelope = Envelope::new("traveler-service", requested());
    let json = envelope.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["event_type"], "booking.requested");
    assert_eq!(value["schema_version"], 1);
    assert_eq!(value["data"]["booking_id"], "b-1");
    assert_eq!(value["data"]["check_in"], "2030-01-01");
    let decoded: Envelope<BookingRequestEvent> = decode(json.as_bytes()).unwrap();
    assert_eq!(decoded, envelope);
    assert_eq!(decoded.key(), "b-1");
}

#[test]
fn event_ids_are_unique() {
    let a = Envelope::new("s", requested());
    let b = Envelope::new("s", requested());
    assert_ne!(a.event_id, b.event_id);
}

#[test]
fn headers_follow_cloudevents_kafka_binding() {
    let envelope = Envelope::new("traveler-service", requested());
    let headers = cloud_event_headers(&envelope);
    let get = |k: &str| {
        headers
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("ce_id"), envelope.event_id.as_str());
    assert_eq!(get("ce_type"), "booking.requested");
    assert_eq!(get("ce_source"), "traveler-service");
    assert_eq!(get("ce_specversion"), "1.0");
    assert_eq!(get("content-type"), "application/json");
    assert!(chrono::DateTime::parse_from_rfc3339(&get("ce_time")).is_ok());
}

#[test]
fn decode_classifies_bad_messages() {
    let bad_json = decode::<BookingRequestEvent>(b"{not json").unwrap_err();
    assert_eq!(bad_json.code(), "malformed_envelope");

    let mut value: serde_json::Value =
        serde_json::from_str(&Envelope::new("s", requested()).to_json()).unwrap();
    value["schema_version"] = 99.into();
    let err = decode::<BookingRequestEvent>(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.code(), "unsupported_schema_version");

    value["schema_version"] = 1.into();
    value["event_type"] = "booking.exploded".into();
    let err = decode::<BookingRequestEvent>(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.code(), "unknown_event_type");

    value["event_type"] = "booking.requested".into();
    value["data"].as_object_mut().unwrap().remove("traveler_id");
    let err = decode::<BookingRequestEvent>(value.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.code(), "invalid_data");
    assert!(err.to_string().contains("traveler_id"), "{err}");
}
