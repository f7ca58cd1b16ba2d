//! What the test modules share: the imports they all use, and the
//! assertions, request bodies and waits of the contract.

pub use std::collections::BTreeSet;

pub use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
pub use reqwest::Method;
pub use serde_json::{json, Value};
pub use service_runtime::{
    auth::{JwtKeys, Role},
    identity::{IdentityConfig, ThrottleLimits},
};
pub use test_support::{eventually, unique};

pub use crate::client::{Raw, RawClient};
pub use crate::endpoints::{endpoints, Body, Scene};
pub use crate::support::{Reply, System, User, JWT_SECRET, PROPAGATION};
pub use crate::tokens::{b64url_encode, bad_credentials};

/// The `field`s a validation problem lists, sorted and deduplicated; every
/// entry must have a non-empty message.
pub fn error_fields(problem: &Value) -> BTreeSet<String> {
    let errors = problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("validation problem without errors: {problem}"));
    assert!(!errors.is_empty(), "empty errors: {problem}");
    errors
        .iter()
        .map(|e| {
            assert!(
                e["message"].as_str().is_some_and(|m| !m.is_empty()),
                "error without message: {problem}"
            );
            e["field"]
                .as_str()
                .unwrap_or_else(|| panic!("error without field: {problem}"))
                .to_string()
        })
        .collect()
}

pub fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts a 400 validation problem listing exactly `expected` fields.
pub fn expect_invalid(reply: Reply, expected: &[&str]) -> Value {
    let body = reply.expect_problem(400, "validation_failed");
    assert_eq!(error_fields(&body), fields(expected), "{body}");
    body
}

pub fn assert_utc_timestamp(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    assert!(s.ends_with('Z'), "{what} is not in UTC: {s}");
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{what} is not RFC 3339 ({e}): {s}"));
}

pub fn assert_date(v: &Value, what: &str) -> NaiveDate {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    s.parse()
        .unwrap_or_else(|e| panic!("{what} is not a date ({e}): {s}"))
}

/// No member anywhere in `v` may carry a password or its hash.
pub fn assert_no_secrets(v: &Value) {
    match v {
        Value::Object(map) => {
            for (k, inner) in map {
                let k = k.to_ascii_lowercase();
                assert!(
                    !k.contains("password") && !k.contains("hash"),
                    "secret member {k:?} in {v}"
                );
                assert_no_secrets(inner);
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_secrets),
        Value::String(s) => assert!(!s.starts_with("$argon2"), "a password hash leaked: {s}"),
        _ => {}
    }
}

pub fn assert_user(user: &Value, name: &str, email: &str, role: &str) {
    assert!(user["id"].as_str().is_some_and(|s| !s.is_empty()), "{user}");
    assert_eq!(user["name"], name, "{user}");
    assert_eq!(user["email"], email, "{user}");
    assert_eq!(user["role"], role, "{user}");
    assert_no_secrets(user);
}

pub fn assert_booking_shape(b: &Value) {
    for k in [
        "id",
        "property_id",
        "owner_id",
        "traveler_id",
        "currency",
        "status",
    ] {
        assert!(
            b[k].as_str().is_some_and(|s| !s.is_empty()),
            "booking.{k} is not a string: {b}"
        );
    }
    for k in ["nights", "guests", "total_price_cents"] {
        assert!(b[k].is_u64(), "booking.{k} is not a count: {b}");
    }
    let check_in = assert_date(&b["check_in"], "check_in");
    let check_out = assert_date(&b["check_out"], "check_out");
    assert_eq!(
        (check_out - check_in).num_days() as u64,
        b["nights"].as_u64().unwrap(),
        "{b}"
    );
    assert_utc_timestamp(&b["created_at"], "booking.created_at");
    assert_utc_timestamp(&b["updated_at"], "booking.updated_at");
}

/// The date `days` from today (UTC), as the API writes it.
pub fn day(days: i64) -> String {
    (Utc::now().date_naive() + Days::days(days)).to_string()
}

pub fn stay(property_id: &str, from: i64, nights: i64, guests: i64) -> Value {
    json!({"property_id": property_id, "check_in": day(from), "check_out": day(from + nights), "guests": guests})
}

pub fn property_body(city: &str, max_guests: u32) -> Value {
    json!({
        "name": format!("Flat in {city}"), "city": city, "country": "PT",
        "price_per_night_cents": 10000, "cleaning_fee_cents": 2000,
        "service_fee_cents": 500, "max_guests": max_guests,
    })
}

pub fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["id"].as_str().expect("id is a string").to_string())
        .collect()
}

pub fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

pub fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// `booking.requested` events for `booking_id` published so far.
pub fn requested_events(sys: &System, booking_id: &str) -> usize {
    request_events(sys)
        .iter()
        .filter(|e| e["event_type"] == "booking.requested" && e["data"]["booking_id"] == booking_id)
        .count()
}

pub fn request_events(sys: &System) -> Vec<Value> {
    sys.bus
        .as_ref()
        .expect("embedded bus")
        .messages(events::topics::BOOKING_REQUESTS)
        .iter()
        .map(|m| serde_json::from_slice(&m.value).expect("event is JSON"))
        .collect()
}

pub async fn wait_requested_published(sys: &System, booking_id: &str) {
    eventually(
        &format!("booking.requested for {booking_id} published"),
        PROPAGATION,
        || async { (requested_events(sys, booking_id) >= 1).then_some(()) },
    )
    .await;
}

pub async fn create_booking(sys: &System, traveler: &User, body: Value) -> Reply {
    sys.as_traveler(Method::POST, traveler, "bookings", Some(body))
        .await
}

pub async fn create_booking_with_key(
    sys: &System,
    traveler: &User,
    body: Value,
    key: &str,
) -> Reply {
    sys.http
        .send(
            Method::POST,
            &format!("{}/api/travelers/bookings", sys.traveler),
            Some(&traveler.token),
            Some(body),
            &[("Idempotency-Key", key)],
        )
        .await
}

/// A decision or cancellation body whose reason is one character over the
/// 1000 allowed.
pub fn too_long_reason() -> Option<Value> {
    Some(json!({"reason": "x".repeat(1001)}))
}

/// A traveler's cancellation (`PUT /api/travelers/bookings/{id}/cancel`),
/// with `body` if given (a reason).
pub async fn traveler_cancel(
    sys: &System,
    traveler: &User,
    id: &str,
    body: Option<Value>,
) -> Reply {
    sys.traveler_put(traveler, &format!("bookings/{id}/cancel"), body)
        .await
}

pub async fn create_property_with(sys: &System, owner: &User, body: Value) -> Reply {
    sys.as_owner(Method::POST, owner, "properties", Some(body))
        .await
}

/// Waits until `list` (all of one user's notifications) has at least `n`.
async fn wait_notifications<Fut>(whose: &str, n: usize, list: impl Fn() -> Fut) -> Vec<Value>
where
    Fut: std::future::Future<Output = Vec<Value>>,
{
    eventually(
        &format!("{whose} has {n} notifications"),
        PROPAGATION,
        || async {
            let notes = list().await;
            (notes.len() >= n).then_some(notes)
        },
    )
    .await
}

/// Waits until the traveler has at least `n` notifications.
pub async fn wait_traveler_notifications(sys: &System, traveler: &User, n: usize) -> Vec<Value> {
    wait_notifications("traveler", n, || sys.traveler_notifications(traveler)).await
}

pub async fn wait_owner_notifications(sys: &System, owner: &User, n: usize) -> Vec<Value> {
    wait_notifications("owner", n, || sys.owner_notifications(owner)).await
}

/// Each notification as (booking id, status, reason), in the list's order.
pub fn notification_summaries(notes: &[Value]) -> Vec<(String, String, Value)> {
    notes
        .iter()
        .map(|n| {
            (
                str_of(&n["booking_id"]),
                str_of(&n["status"]),
                n["reason"].clone(),
            )
        })
        .collect()
}

/// Notifications must be newest first and carry the contract's members.
pub fn assert_notifications_shape(notes: &[Value]) {
    for n in notes {
        assert!(n["booking_id"].is_string(), "{n}");
        assert!(n["status"].is_string(), "{n}");
        assert!(
            n.as_object().unwrap().contains_key("reason"),
            "notification without reason member: {n}"
        );
        assert_utc_timestamp(&n["created_at"], "notification.created_at");
    }
    let times: Vec<&str> = notes
        .iter()
        .map(|n| n["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );
}
