//! The public HTTP contract of both services, checked the way an external
//! client sees it: status codes, problem documents, response shapes,
//! authorization, idempotency and the asynchronous booking flows.
//!
//! Everything runs against `System::embedded()` (both services in this
//! process on an in-memory bus), so no external servers are needed.

mod support;

use std::{collections::BTreeSet, time::Duration};

use chrono::{DateTime, Duration as Days, NaiveDate, Utc};
use reqwest::{header::HeaderMap, Method};
use serde_json::{json, Value};
use service_runtime::{
    auth::{JwtKeys, Role},
    identity::{IdentityConfig, ThrottleLimits},
};
use support::{Reply, System, User, JWT_SECRET, PROPAGATION};
use test_support::{eventually, unique};

// ---- helpers local to this file ---------------------------------------------

/// A response read without assuming anything about it.
#[derive(Debug)]
struct Raw {
    status: u16,
    content_type: String,
    headers: HeaderMap,
    text: String,
    /// The body parsed as JSON, or `Null` when it is not JSON.
    body: Value,
    is_json: bool,
}

impl Raw {
    /// Asserts an RFC 9457 problem document with this status and code.
    fn problem(&self, status: u16, code: &str) -> &Value {
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
struct RawClient(reqwest::Client);

impl RawClient {
    fn new() -> Self {
        Self(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        )
    }

    async fn send(
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

    async fn read(req: reqwest::RequestBuilder, url: &str) -> Raw {
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
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

    /// Sends `body` as JSON text with a JSON content type, and a bearer token if given.
    async fn json(&self, method: Method, url: &str, token: Option<&str>, body: &[u8]) -> Raw {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        self.send(method, url, &headers, Some(body.to_vec())).await
    }
}

/// The `field`s a validation problem lists, sorted and deduplicated; every
/// entry must have a non-empty message.
fn error_fields(problem: &Value) -> BTreeSet<String> {
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

fn fields(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// Asserts a 400 validation problem listing exactly `expected` fields.
fn expect_invalid(reply: Reply, expected: &[&str]) -> Value {
    let body = reply.expect_problem(400, "validation_failed");
    assert_eq!(error_fields(&body), fields(expected), "{body}");
    body
}

fn assert_utc_timestamp(v: &Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    assert!(s.ends_with('Z'), "{what} is not in UTC: {s}");
    DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{what} is not RFC 3339 ({e}): {s}"));
}

fn assert_date(v: &Value, what: &str) -> NaiveDate {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    s.parse()
        .unwrap_or_else(|e| panic!("{what} is not a date ({e}): {s}"))
}

/// No member anywhere in `v` may carry a password or its hash.
fn assert_no_secrets(v: &Value) {
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

fn assert_user(user: &Value, name: &str, email: &str, role: &str) {
    assert!(user["id"].as_str().is_some_and(|s| !s.is_empty()), "{user}");
    assert_eq!(user["name"], name, "{user}");
    assert_eq!(user["email"], email, "{user}");
    assert_eq!(user["role"], role, "{user}");
    assert_no_secrets(user);
}

fn assert_booking_shape(b: &Value) {
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
fn day(days: i64) -> String {
    (Utc::now().date_naive() + Days::days(days)).to_string()
}

fn stay(property_id: &str, from: i64, nights: i64, guests: i64) -> Value {
    json!({"property_id": property_id, "check_in": day(from), "check_out": day(from + nights), "guests": guests})
}

fn property_body(city: &str, max_guests: u32) -> Value {
    json!({
        "name": format!("Flat in {city}"), "city": city, "country": "PT",
        "price_per_night_cents": 10000, "cleaning_fee_cents": 2000,
        "service_fee_cents": 500, "max_guests": max_guests,
    })
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|x| x["id"].as_str().expect("id is a string").to_string())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn str_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_string()
}

/// `booking.requested` events for `booking_id` published so far.
fn requested_events(sys: &System, booking_id: &str) -> usize {
    request_events(sys)
        .iter()
        .filter(|e| e["event_type"] == "booking.requested" && e["data"]["booking_id"] == booking_id)
        .count()
}

fn request_events(sys: &System) -> Vec<Value> {
    sys.bus
        .as_ref()
        .expect("embedded bus")
        .messages(events::topics::BOOKING_REQUESTS)
        .iter()
        .map(|m| serde_json::from_slice(&m.value).expect("event is JSON"))
        .collect()
}

async fn wait_requested_published(sys: &System, booking_id: &str) {
    eventually(
        &format!("booking.requested for {booking_id} published"),
        PROPAGATION,
        || async { (requested_events(sys, booking_id) >= 1).then_some(()) },
    )
    .await;
}

async fn create_booking(sys: &System, traveler: &User, body: Value) -> Reply {
    sys.http
        .post(
            &format!("{}/api/travelers/bookings", sys.traveler),
            Some(&traveler.token),
            body,
        )
        .await
}

async fn create_booking_with_key(sys: &System, traveler: &User, body: Value, key: &str) -> Reply {
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

async fn create_property_with(sys: &System, owner: &User, body: Value) -> Reply {
    sys.http
        .post(
            &format!("{}/api/owners/properties", sys.owner),
            Some(&owner.token),
            body,
        )
        .await
}

/// Waits until owner-service shows the booking in `status`.
async fn wait_owner_status(sys: &System, owner: &User, booking_id: &str, status: &str) -> Value {
    let url = format!("{}/api/owners/bookings/{booking_id}", sys.owner);
    eventually(
        &format!("owner sees {booking_id} {status}"),
        PROPAGATION,
        || async {
            let r = sys.http.get(&url, Some(&owner.token)).await;
            (r.body["booking"]["status"] == status).then(|| r.body["booking"].clone())
        },
    )
    .await
}

/// Waits until the traveler has exactly `n` notifications.
async fn wait_traveler_notifications(sys: &System, traveler: &User, n: usize) -> Vec<Value> {
    eventually(
        &format!("traveler has {n} notifications"),
        PROPAGATION,
        || async {
            let notes = sys.traveler_notifications(traveler).await;
            (notes.len() >= n).then_some(notes)
        },
    )
    .await
}

async fn wait_owner_notifications(sys: &System, owner: &User, n: usize) -> Vec<Value> {
    eventually(
        &format!("owner has {n} notifications"),
        PROPAGATION,
        || async {
            let notes = sys.owner_notifications(owner).await;
            (notes.len() >= n).then_some(notes)
        },
    )
    .await
}

/// Notifications must be newest first and carry the contract's members.
fn assert_notifications_shape(notes: &[Value]) {
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

// ---- tokens ---------------------------------------------------------------

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn b64url_decode(s: &str) -> Vec<u8> {
    let (mut bits, mut n, mut out) = (0u32, 0u32, Vec::new());
    for c in s.bytes() {
        let v = B64
            .iter()
            .position(|&x| x == c)
            .expect("base64url character") as u32;
        bits = (bits << 6) | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
            bits &= (1 << n) - 1;
        }
    }
    out
}

/// Every kind of bad credential for an endpoint of `role`, with the expected
/// status and problem code. `user` is a real user of `role`; `other_role` a
/// valid token of the other role.
fn bad_credentials(
    user: &User,
    role: Role,
    other_role: &User,
) -> Vec<(String, Option<String>, u16, &'static str)> {
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let past = Utc::now().timestamp() - 120;
    let expired = keys.issue_with_expiry(&user.id, role, past);
    let forged = JwtKeys::new(b"a-completely-different-secret-0123456789").issue(&user.id, role);

    // The other role's real token with the role claim rewritten: the signature no longer matches.
    let parts: Vec<&str> = other_role.token.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).expect("claims");
    claims["role"] = json!(match role {
        Role::Traveler => "traveler",
        Role::Owner => "owner",
    });
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url_encode(claims.to_string().as_bytes()),
        parts[2]
    );
    // The same claims, unsigned (`alg: none`).
    let unsigned = format!(
        "{}.{}.",
        b64url_encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64url_encode(claims.to_string().as_bytes())
    );

    vec![
        ("no token".into(), None, 401, "missing_token"),
        (
            "garbage token".into(),
            Some("Bearer not-a-jwt".into()),
            401,
            "invalid_token",
        ),
        (
            "basic auth".into(),
            Some("Basic dXNlcjpwYXNzd29yZA==".into()),
            401,
            "invalid_token",
        ),
        (
            "bare token without scheme".into(),
            Some(user.token.clone()),
            401,
            "invalid_token",
        ),
        (
            "expired token".into(),
            Some(format!("Bearer {expired}")),
            401,
            "token_expired",
        ),
        (
            "token signed with another secret".into(),
            Some(format!("Bearer {forged}")),
            401,
            "invalid_token",
        ),
        (
            "tampered role claim".into(),
            Some(format!("Bearer {tampered}")),
            401,
            "invalid_token",
        ),
        (
            "unsigned token".into(),
            Some(format!("Bearer {unsigned}")),
            401,
            "invalid_token",
        ),
        (
            "other role".into(),
            Some(format!("Bearer {}", other_role.token)),
            403,
            "wrong_role",
        ),
    ]
}

// ---- health -----------------------------------------------------------------

#[tokio::test]
async fn health_and_readiness_answer_200_on_both_services() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    for base in [&sys.traveler, &sys.owner] {
        let live = raw
            .send(Method::GET, &format!("{base}/health"), &[], None)
            .await;
        assert_eq!(live.status, 200, "{}", live.text);
        assert!(
            live.content_type.starts_with("application/json"),
            "{}",
            live.content_type
        );
        assert_eq!(live.body["status"], "ok");

        let ready = raw
            .send(Method::GET, &format!("{base}/health/ready"), &[], None)
            .await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert!(
            ready.content_type.starts_with("application/json"),
            "{}",
            ready.content_type
        );
        assert_eq!(ready.body["status"], "ready");

        raw.send(Method::POST, &format!("{base}/health"), &[], None)
            .await
            .problem(405, "method_not_allowed");
    }
}

// ---- identity -----------------------------------------------------------------

#[tokio::test]
async fn identity_signup_login_and_me_follow_the_contract_on_both_services() {
    let sys = System::embedded().await;
    for (base, prefix, role) in [
        (&sys.traveler, "travelers", "traveler"),
        (&sys.owner, "owners", "owner"),
    ] {
        let api = format!("{base}/api/{prefix}");
        let (signup, login, me) = (
            format!("{api}/signup"),
            format!("{api}/login"),
            format!("{api}/me"),
        );
        let email = format!("{}@Example.COM", unique("Ada"));
        let lower = email.to_lowercase();

        // Sign-up: 201 {token, user}, name trimmed, email normalised.
        let reply = sys
            .http
            .post(
                &signup,
                None,
                json!({"name": "  Ada Lovelace ", "email": email, "password": "correct-horse-1"}),
            )
            .await;
        assert!(
            reply.content_type.starts_with("application/json"),
            "{}",
            reply.content_type
        );
        let created = reply.expect(201);
        assert_no_secrets(&created);
        let token = str_of(&created["token"]);
        let user = created["user"].clone();
        assert_user(&user, "Ada Lovelace", &lower, role);
        assert_eq!(
            created.as_object().unwrap().len(),
            2,
            "only token and user: {created}"
        );

        // me: the same user.
        let mine = sys.http.get(&me, Some(&token)).await.expect(200);
        assert_eq!(mine["user"], user);
        assert_no_secrets(&mine);

        // Login (email in another case): 200 {token, user}; the new token works too.
        let logged = sys
            .http
            .post(
                &login,
                None,
                json!({"email": email.to_uppercase(), "password": "correct-horse-1"}),
            )
            .await
            .expect(200);
        assert_eq!(logged["user"], user);
        assert_no_secrets(&logged);
        let token2 = str_of(&logged["token"]);
        assert_eq!(
            sys.http.get(&me, Some(&token2)).await.expect(200)["user"]["id"],
            user["id"]
        );

        // Bad credentials: 401, the same answer whether the email exists or not.
        let wrong = sys
            .http
            .post(
                &login,
                None,
                json!({"email": lower, "password": "wrong-horse-1"}),
            )
            .await
            .expect_problem(401, "invalid_credentials");
        let unknown = sys
            .http
            .post(&login, None, json!({"email": format!("{}@example.com", unique("nobody")), "password": "correct-horse-1"}))
            .await
            .expect_problem(401, "invalid_credentials");
        assert_eq!(wrong["detail"], unknown["detail"]);
        expect_invalid(
            sys.http.post(&login, None, json!({"email": lower})).await,
            &["password"],
        );

        // Duplicate email (in any case): 409, and the first account still logs in.
        for dup in [email.clone(), lower.clone(), email.to_uppercase()] {
            sys.http
                .post(
                    &signup,
                    None,
                    json!({"name": "Imposter", "email": dup, "password": "another-pass-1"}),
                )
                .await
                .expect_problem(409, "email_taken");
        }
        sys.http
            .post(
                &login,
                None,
                json!({"email": lower, "password": "another-pass-1"}),
            )
            .await
            .expect_problem(401, "invalid_credentials");

        // Invalid email, short password, blank name: 400 listing each field.
        for bad in ["not-an-email", "a@b", "a b@c.de", "@example.com", ""] {
            let body = expect_invalid(
                sys.http
                    .post(
                        &signup,
                        None,
                        json!({"name": "Bob", "email": bad, "password": "long-enough-1"}),
                    )
                    .await,
                &["email"],
            );
            assert_eq!(body["errors"][0]["field"], "email");
        }
        expect_invalid(
            sys.http
                .post(&signup, None, json!({"name": "Bob", "email": format!("{}@example.com", unique("bob")), "password": "1234567"}))
                .await,
            &["password"],
        );
        expect_invalid(
            sys.http
                .post(
                    &signup,
                    None,
                    json!({"name": "   ", "email": "x", "password": "short"}),
                )
                .await,
            &["name", "email", "password"],
        );
        let missing = expect_invalid(
            sys.http
                .post(
                    &signup,
                    None,
                    json!({"name": "Bob", "email": "bob@example.com"}),
                )
                .await,
            &["password"],
        );
        assert_eq!(missing["errors"][0]["message"], "is required");
        // Exactly eight characters is enough.
        let eight = sys
            .http
            .post(&signup, None, json!({"name": "Bea", "email": format!("{}@example.com", unique("bea")), "password": "12345678"}))
            .await
            .expect(201);
        assert_user(
            &eight["user"],
            "Bea",
            eight["user"]["email"].as_str().unwrap(),
            role,
        );
        assert_ne!(eight["user"]["id"], user["id"]);

        // A token whose account does not exist is refused by /me.
        let ghost = JwtKeys::new(JWT_SECRET.as_bytes()).issue(
            "00000000-0000-7000-8000-000000000000",
            if role == "owner" {
                Role::Owner
            } else {
                Role::Traveler
            },
        );
        sys.http
            .get(&me, Some(&ghost))
            .await
            .expect_problem(401, "invalid_token");
    }
}

// ---- limits on logins and sign-ups -------------------------------------------

/// Limits as in production, but believing `X-Forwarded-For` from this
/// process (the tests' loopback peer), so a test can be many clients; and
/// `signups` sign-ups per address.
fn trusting_loopback(signups: u32) -> IdentityConfig {
    IdentityConfig {
        limits: ThrottleLimits {
            signups_per_address: signups,
            ..ThrottleLimits::default()
        },
        trusted_proxies: "127.0.0.1/32, ::1".parse().unwrap(),
        ..IdentityConfig::default()
    }
}

/// `POST {api}/{action}` with a JSON body, forwarded for `client` if given.
async fn post_from(api: &str, action: &str, body: Value, client: Option<&str>) -> Raw {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = client {
        headers.push(("x-forwarded-for", c));
    }
    RawClient::new()
        .send(
            Method::POST,
            &format!("{api}/{action}"),
            &headers,
            Some(body.to_string().into_bytes()),
        )
        .await
}

async fn login_from(api: &str, email: &str, password: &str, client: Option<&str>) -> Raw {
    post_from(
        api,
        "login",
        json!({"email": email, "password": password}),
        client,
    )
    .await
}

async fn signup_from(api: &str, client: Option<&str>) -> Raw {
    let email = format!("{}@example.com", unique("new"));
    post_from(
        api,
        "signup",
        json!({"name": "New", "email": email, "password": "correct-horse-1"}),
        client,
    )
    .await
}

/// A 429 `too_many_attempts` problem with a `Retry-After` of at most the
/// 15-minute window, also in the body.
fn assert_throttled(r: &Raw) {
    r.problem(429, "too_many_attempts");
    let retry_after: u64 = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {}", r.text))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(r.body["retry_after"], retry_after, "{}", r.text);
}

fn apis(sys: &System) -> [String; 2] {
    [
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    ]
}

#[tokio::test]
async fn ten_failed_logins_lock_the_account_even_with_the_right_password() {
    let sys = System::embedded_with(trusting_loopback(10)).await;
    for api in apis(&sys) {
        let (ada, bob) = (signup_from(&api, None).await, signup_from(&api, None).await);
        let (ada, bob) = (
            str_of(&ada.body["user"]["email"]),
            str_of(&bob.body["user"]["email"]),
        );
        // Ten failures, each from another address: the account's limit.
        for i in 0..10 {
            login_from(
                &api,
                &ada,
                "wrong-horse-1",
                Some(&format!("198.51.100.{i}")),
            )
            .await
            .problem(401, "invalid_credentials");
        }
        let right = login_from(&api, &ada, "correct-horse-1", Some("198.51.100.200")).await;
        assert_throttled(&right);
        assert_throttled(&login_from(&api, &ada, "wrong-horse-1", Some("198.51.100.201")).await);
        // The email in another case is the same account.
        assert_throttled(
            &login_from(
                &api,
                &ada.to_uppercase(),
                "correct-horse-1",
                Some("198.51.100.202"),
            )
            .await,
        );
        // Other accounts, from the same addresses, are not affected.
        let ok = login_from(&api, &bob, "correct-horse-1", Some("198.51.100.0")).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures() {
    let sys = System::embedded_with(trusting_loopback(10)).await;
    let api = format!("{}/api/owners", sys.owner);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    let mut address = 0;
    let mut fail = |n: usize| {
        let from: Vec<String> = (0..n)
            .map(|_| {
                address += 1;
                format!("203.0.113.{address}")
            })
            .collect();
        let (api, ada) = (api.clone(), ada.clone());
        async move {
            for client in from {
                login_from(&api, &ada, "wrong-horse-1", Some(&client))
                    .await
                    .problem(401, "invalid_credentials");
            }
        }
    };
    fail(9).await;
    let ok = login_from(&api, &ada, "correct-horse-1", Some("203.0.113.100")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The count starts again: nine more are still only failures.
    fail(9).await;
    let ok = login_from(&api, &ada, "correct-horse-1", Some("203.0.113.101")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    fail(10).await;
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("203.0.113.102")).await);
}

#[tokio::test]
async fn ten_failed_logins_lock_the_client_address_across_accounts() {
    // No trusted proxy (the production default): the socket peer is the
    // client, whatever X-Forwarded-For claims.
    let sys = System::embedded().await;
    let api = format!("{}/api/travelers", sys.traveler);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    for i in 0..10 {
        let nobody = format!("{}@example.com", unique("nobody"));
        login_from(
            &api,
            &nobody,
            "wrong-horse-1",
            Some(&format!("192.0.2.{i}")),
        )
        .await
        .problem(401, "invalid_credentials");
    }
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("192.0.2.77")).await);
    // The other service keeps its own counts.
    let owner_api = format!("{}/api/owners", sys.owner);
    let olga = str_of(&signup_from(&owner_api, None).await.body["user"]["email"]);
    assert_eq!(
        login_from(&owner_api, &olga, "correct-horse-1", None)
            .await
            .status,
        200
    );

    // Behind a trusted proxy, the forwarded address is the client.
    let sys = System::embedded_with(trusting_loopback(10)).await;
    let api = format!("{}/api/travelers", sys.traveler);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    for _ in 0..10 {
        let nobody = format!("{}@example.com", unique("nobody"));
        // The client's own claim, left of what the proxy appended, is ignored.
        login_from(&api, &nobody, "wrong-horse-1", Some("6.6.6.6, 192.0.2.5"))
            .await
            .problem(401, "invalid_credentials");
    }
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("192.0.2.5")).await);
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("7.7.7.7, 192.0.2.5")).await);
    let other = login_from(&api, &ada, "correct-horse-1", Some("192.0.2.6")).await;
    assert_eq!(other.status, 200, "{}", other.text);
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let sys = System::embedded_with(trusting_loopback(3)).await;
    for api in apis(&sys) {
        for _ in 0..3 {
            assert_eq!(signup_from(&api, Some("192.0.2.1")).await.status, 201);
        }
        assert_throttled(&signup_from(&api, Some("192.0.2.1")).await);
        // An invalid body is refused as such, without counting.
        post_from(&api, "signup", json!({"name": "x"}), Some("192.0.2.9"))
            .await
            .problem(400, "validation_failed");
        assert_eq!(signup_from(&api, Some("192.0.2.2")).await.status, 201);
        // IPv6 clients count by their /64 network.
        for i in 1..=3 {
            let from = format!("2001:db8:1:2::{i}");
            assert_eq!(signup_from(&api, Some(&from)).await.status, 201);
        }
        assert_throttled(&signup_from(&api, Some("2001:db8:1:2:ffff::99")).await);
        assert_eq!(signup_from(&api, Some("2001:db8:1:3::1")).await.status, 201);
    }

    // The production limit: ten per address.
    let sys = System::embedded().await;
    let api = format!("{}/api/travelers", sys.traveler);
    for _ in 0..10 {
        assert_eq!(signup_from(&api, None).await.status, 201);
    }
    assert_throttled(&signup_from(&api, None).await);
}

// ---- authorization ------------------------------------------------------------

#[tokio::test]
async fn every_protected_endpoint_refuses_missing_bad_expired_forged_and_wrong_role_tokens() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let booking = sys.book(&traveler, &pid, 10, 2).await;
    let bid = str_of(&booking["id"]);
    sys.wait_owner_sees(&owner, &bid).await;
    wait_requested_published(&sys, &bid).await;

    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );
    let new_booking = stay(&pid, 40, 2, 2).to_string();
    let new_property = property_body("Porto", 2).to_string();
    let endpoints: Vec<(Role, Method, String, Option<String>)> = vec![
        (Role::Traveler, Method::GET, format!("{t}/me"), None),
        (
            Role::Traveler,
            Method::GET,
            format!("{t}/notifications"),
            None,
        ),
        (Role::Traveler, Method::GET, format!("{t}/properties"), None),
        (
            Role::Traveler,
            Method::GET,
            format!("{t}/properties/{pid}"),
            None,
        ),
        (
            Role::Traveler,
            Method::POST,
            format!("{t}/bookings"),
            Some(new_booking),
        ),
        (Role::Traveler, Method::GET, format!("{t}/bookings"), None),
        (
            Role::Traveler,
            Method::GET,
            format!("{t}/bookings/{bid}"),
            None,
        ),
        (
            Role::Traveler,
            Method::PUT,
            format!("{t}/bookings/{bid}/cancel"),
            Some(r#"{"reason":"x"}"#.into()),
        ),
        (Role::Owner, Method::GET, format!("{o}/me"), None),
        (Role::Owner, Method::GET, format!("{o}/notifications"), None),
        (Role::Owner, Method::GET, format!("{o}/properties"), None),
        (
            Role::Owner,
            Method::POST,
            format!("{o}/properties"),
            Some(new_property),
        ),
        (
            Role::Owner,
            Method::GET,
            format!("{o}/properties/{pid}"),
            None,
        ),
        (
            Role::Owner,
            Method::PUT,
            format!("{o}/properties/{pid}"),
            Some(r#"{"name":"Hijacked"}"#.into()),
        ),
        (
            Role::Owner,
            Method::DELETE,
            format!("{o}/properties/{pid}"),
            None,
        ),
        (Role::Owner, Method::GET, format!("{o}/bookings"), None),
        (
            Role::Owner,
            Method::GET,
            format!("{o}/bookings/{bid}"),
            None,
        ),
        (
            Role::Owner,
            Method::PUT,
            format!("{o}/bookings/{bid}/approve"),
            None,
        ),
        (
            Role::Owner,
            Method::PUT,
            format!("{o}/bookings/{bid}/reject"),
            Some(r#"{"reason":"x"}"#.into()),
        ),
        (
            Role::Owner,
            Method::PUT,
            format!("{o}/bookings/{bid}/cancel"),
            Some(r#"{"reason":"x"}"#.into()),
        ),
    ];
    let traveler_cases = bad_credentials(&traveler, Role::Traveler, &owner);
    let owner_cases = bad_credentials(&owner, Role::Owner, &traveler);
    for (role, method, url, body) in &endpoints {
        let cases = if *role == Role::Traveler {
            &traveler_cases
        } else {
            &owner_cases
        };
        for (what, auth, status, code) in cases {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a.as_str()));
            }
            let r = raw
                .send(
                    method.clone(),
                    url,
                    &headers,
                    body.as_ref().map(|b| b.as_bytes().to_vec()),
                )
                .await;
            assert_eq!(r.status, *status, "{method} {url} with {what}: {}", r.text);
            r.problem(*status, code);
            if *status == 401 {
                assert_eq!(
                    r.headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{method} {url} with {what}"
                );
            }
        }
    }

    // None of those requests changed anything.
    let seen = sys
        .http
        .get(&format!("{o}/bookings/{bid}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(seen["booking"]["status"], "PENDING");
    let mine = sys
        .http
        .get(&format!("{o}/properties"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(ids(&mine["properties"]), set(&[&pid]));
    assert_eq!(mine["properties"][0]["name"], "Flat in Lisbon");
    assert_eq!(mine["properties"][0]["active"], true);
    assert_eq!(mine["properties"][0]["version"], 1);
    let trips = sys
        .http
        .get(&format!("{t}/bookings"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[&bid]));
    assert!(
        trips["bookings"][0]["cancellation_requested_at"].is_null(),
        "{trips}"
    );
    assert_eq!(
        request_events(&sys).len(),
        1,
        "a refused request published an event"
    );
}

#[tokio::test]
async fn other_users_bookings_and_properties_are_404_and_never_listed() {
    let sys = System::embedded().await;
    let (owner_a, owner_b) = (sys.owner_signup("Ann").await, sys.owner_signup("Ben").await);
    let (traveler_a, traveler_b) = (
        sys.traveler_signup("Tia").await,
        sys.traveler_signup("Tim").await,
    );
    let property = sys.create_property(&owner_a, "Faro").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler_a, &pid, 1).await;
    let booking = sys.book(&traveler_a, &pid, 10, 2).await;
    let bid = str_of(&booking["id"]);
    sys.wait_owner_sees(&owner_a, &bid).await;
    wait_owner_notifications(&sys, &owner_a, 1).await;

    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );
    let http = &sys.http;
    let reason = || Some(json!({"reason": "not yours"}));

    // Owner B: another owner's property and booking do not exist for them, exactly like unknown ids.
    for (property_id, booking_id) in [(pid.as_str(), bid.as_str()), ("no-such-id", "no-such-id")] {
        let mut answers = Vec::new();
        for r in [
            http.get(
                &format!("{o}/properties/{property_id}"),
                Some(&owner_b.token),
            )
            .await,
            http.put(
                &format!("{o}/properties/{property_id}"),
                Some(&owner_b.token),
                Some(json!({"name": "Mine now"})),
            )
            .await,
            http.delete(
                &format!("{o}/properties/{property_id}"),
                Some(&owner_b.token),
            )
            .await,
        ] {
            answers.push(r.expect_problem(404, "not_found"));
        }
        for r in [
            http.get(&format!("{o}/bookings/{booking_id}"), Some(&owner_b.token))
                .await,
            sys.decide(&owner_b, booking_id, "approve", None).await,
            sys.decide(&owner_b, booking_id, "reject", reason()).await,
            sys.decide(&owner_b, booking_id, "cancel", reason()).await,
        ] {
            answers.push(r.expect_problem(404, "not_found"));
        }
        // Traveler B: another traveler's booking does not exist for them.
        for r in [
            http.get(
                &format!("{t}/bookings/{booking_id}"),
                Some(&traveler_b.token),
            )
            .await,
            http.put(
                &format!("{t}/bookings/{booking_id}/cancel"),
                Some(&traveler_b.token),
                reason(),
            )
            .await,
        ] {
            answers.push(r.expect_problem(404, "not_found"));
        }
        for a in &answers {
            assert!(
                !a.to_string().contains(&owner_a.id),
                "owner id revealed: {a}"
            );
            assert!(
                !a.to_string().contains(&traveler_a.id),
                "traveler id revealed: {a}"
            );
        }
    }
    // The detail of "yours does not exist" equals the detail of "nobody's exists".
    let other = http
        .get(&format!("{o}/bookings/{bid}"), Some(&owner_b.token))
        .await
        .body;
    let nobody = http
        .get(&format!("{o}/bookings/nope"), Some(&owner_b.token))
        .await
        .body;
    assert_eq!(other, nobody);
    let other = http
        .get(&format!("{t}/bookings/{bid}"), Some(&traveler_b.token))
        .await
        .body;
    let nobody = http
        .get(&format!("{t}/bookings/nope"), Some(&traveler_b.token))
        .await
        .body;
    assert_eq!(other, nobody);

    // Lists never include them.
    let b_props = http
        .get(&format!("{o}/properties"), Some(&owner_b.token))
        .await
        .expect(200);
    assert_eq!(b_props, json!({"properties": [], "next_cursor": null}));
    for q in ["", "?status=PENDING", &format!("?property_id={pid}")] {
        let b_bookings = http
            .get(&format!("{o}/bookings{q}"), Some(&owner_b.token))
            .await
            .expect(200);
        assert_eq!(
            b_bookings,
            json!({"bookings": [], "next_cursor": null}),
            "owner B bookings{q}"
        );
    }
    assert_eq!(
        http.get(&format!("{t}/bookings"), Some(&traveler_b.token))
            .await
            .expect(200),
        json!({"bookings": [], "next_cursor": null})
    );
    assert_eq!(sys.owner_notifications(&owner_b).await, Vec::<Value>::new());
    assert_eq!(
        sys.traveler_notifications(&traveler_b).await,
        Vec::<Value>::new()
    );

    // And the owners' own view is untouched.
    let mine = http
        .get(&format!("{o}/properties/{pid}"), Some(&owner_a.token))
        .await
        .expect(200);
    assert_eq!(mine["property"]["name"], "Flat in Faro");
    assert_eq!(mine["property"]["active"], true);
    assert_eq!(mine["property"]["version"], 1);
    let b = http
        .get(&format!("{o}/bookings/{bid}"), Some(&owner_a.token))
        .await
        .expect(200);
    assert_eq!(b["booking"]["status"], "PENDING");
    let b = http
        .get(&format!("{t}/bookings/{bid}"), Some(&traveler_a.token))
        .await
        .expect(200);
    assert!(b["booking"]["cancellation_requested_at"].is_null(), "{b}");
    let a_bookings = http
        .get(
            &format!("{o}/bookings?property_id={pid}"),
            Some(&owner_a.token),
        )
        .await
        .expect(200);
    assert_eq!(ids(&a_bookings["bookings"]), set(&[&bid]));
}

// ---- protocol-level errors ---------------------------------------------------

#[tokio::test]
async fn protocol_errors_are_problem_documents_with_the_right_status() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Braga").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let booking = sys.book(&traveler, &pid, 10, 2).await;
    let bid = str_of(&booking["id"]);
    sys.wait_owner_sees(&owner, &bid).await;
    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );
    let t_auth = format!("Bearer {}", traveler.token);
    let o_auth = format!("Bearer {}", owner.token);
    let (t_auth, o_auth) = (t_auth.as_str(), o_auth.as_str());
    let json_ct = ("content-type", "application/json");

    // Unknown routes: 404 on both services, with or without a token.
    for url in [
        format!("{t}/nope"),
        format!("{o}/nope"),
        format!("{}/nope", sys.traveler),
        // `/` is the owner app (tests/web_sessions.rs); other root paths are not routes.
        format!("{}/nope.html", sys.owner),
        format!("{t}/bookings/{bid}/approve"),
        format!("{o}/bookings/{bid}/cancel/now"),
        format!("{t}/bookings/"),
    ] {
        raw.send(Method::GET, &url, &[], None)
            .await
            .problem(404, "route_not_found");
        raw.send(Method::GET, &url, &[("authorization", t_auth)], None)
            .await
            .problem(404, "route_not_found");
    }

    // Wrong methods: 405 with Allow.
    for (method, url) in [
        (Method::DELETE, format!("{t}/bookings")),
        (Method::PATCH, format!("{o}/properties")),
        (Method::GET, format!("{t}/signup")),
        (Method::PUT, format!("{o}/login")),
        (Method::POST, format!("{o}/me")),
        (Method::GET, format!("{o}/bookings/{bid}/approve")),
        (Method::POST, format!("{t}/bookings/{bid}")),
        (Method::DELETE, format!("{t}/notifications")),
        (Method::OPTIONS, format!("{o}/properties")),
    ] {
        let r = raw
            .send(method.clone(), &url, &[("authorization", t_auth)], None)
            .await;
        r.problem(405, "method_not_allowed");
        assert!(
            r.headers.contains_key("allow"),
            "{method} {url} lacks Allow"
        );
    }

    // Wrong or missing content type: 415.
    let signup_body =
        br#"{"name":"Eve","email":"eve@example.com","password":"long-enough-1"}"#.to_vec();
    for (method, url, auth) in [
        (Method::POST, format!("{t}/signup"), None),
        (Method::POST, format!("{o}/login"), None),
        (Method::POST, format!("{t}/bookings"), Some(t_auth)),
        (Method::POST, format!("{o}/properties"), Some(o_auth)),
        (Method::PUT, format!("{o}/properties/{pid}"), Some(o_auth)),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/cancel"),
            Some(o_auth),
        ),
    ] {
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
            None,
        ] {
            let mut headers = Vec::new();
            if let Some(ct) = ct {
                headers.push(("content-type", ct));
            }
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            raw.send(method.clone(), &url, &headers, Some(signup_body.clone()))
                .await
                .problem(415, "unsupported_media_type");
        }
    }
    // The optional bodies too, when there is a body.
    raw.send(
        Method::PUT,
        &format!("{t}/bookings/{bid}/cancel"),
        &[("authorization", t_auth)],
        Some(br#"{"reason":"x"}"#.to_vec()),
    )
    .await
    .problem(415, "unsupported_media_type");
    for ct in ["text/plain", "application/xml"] {
        raw.send(
            Method::PUT,
            &format!("{t}/bookings/{bid}/cancel"),
            &[("content-type", ct), ("authorization", t_auth)],
            Some(br#"{"reason":"x"}"#.to_vec()),
        )
        .await
        .problem(415, "unsupported_media_type");
    }
    // JSON with parameters or a +json suffix is JSON.
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.booking+json",
    ] {
        let r = raw
            .send(
                Method::POST,
                &format!("{o}/properties"),
                &[("content-type", ct), ("authorization", o_auth)],
                Some(property_body("Evora", 2).to_string().into_bytes()),
            )
            .await;
        assert_eq!(r.status, 201, "{ct}: {}", r.text);
    }

    // Malformed JSON and empty bodies: 400 malformed_json.
    for body in [
        &b"{"[..],
        b"{\"name\": ",
        b"not json",
        b"",
        b"   ",
        b"{'a':1}",
        b"{\"name\":\"x\",}",
    ] {
        for (url, auth) in [
            (format!("{t}/signup"), None),
            (format!("{o}/signup"), None),
            (format!("{t}/login"), None),
            (format!("{t}/bookings"), Some(t_auth)),
            (format!("{o}/properties"), Some(o_auth)),
        ] {
            let mut headers = vec![json_ct];
            if let Some(a) = auth {
                headers.push(("authorization", a));
            }
            raw.send(Method::POST, &url, &headers, Some(body.to_vec()))
                .await
                .problem(400, "malformed_json");
        }
        let auth = [json_ct, ("authorization", o_auth)];
        raw.send(
            Method::PUT,
            &format!("{o}/properties/{pid}"),
            &auth,
            Some(body.to_vec()),
        )
        .await
        .problem(400, "malformed_json");
        // Cancel's body is optional: an empty one means "no reason" (400
        // validation_failed); a broken non-empty one is malformed.
        let expected = if body.iter().all(u8::is_ascii_whitespace) {
            "validation_failed"
        } else {
            "malformed_json"
        };
        raw.send(
            Method::PUT,
            &format!("{o}/bookings/{bid}/cancel"),
            &auth,
            Some(body.to_vec()),
        )
        .await
        .problem(400, expected);
    }
    // A complete, valid object followed by anything else is not JSON either.
    let mut trailing = signup_body.clone();
    trailing.extend_from_slice(b" trailing");
    raw.send(
        Method::POST,
        &format!("{t}/signup"),
        &[json_ct],
        Some(trailing),
    )
    .await
    .problem(400, "malformed_json");
    // The optional-body endpoints take "no body" as "no reason", but not a broken one.
    raw.send(
        Method::PUT,
        &format!("{t}/bookings/{bid}/cancel"),
        &[json_ct, ("authorization", t_auth)],
        Some(b"{\"reason\":".to_vec()),
    )
    .await
    .problem(400, "malformed_json");
    raw.send(
        Method::PUT,
        &format!("{o}/bookings/{bid}/reject"),
        &[json_ct, ("authorization", o_auth)],
        Some(b"{\"reason\":".to_vec()),
    )
    .await
    .problem(400, "malformed_json");

    // JSON that is not an object: 400 validation_failed on the body.
    for body in [&b"[]"[..], b"\"text\"", b"42", b"null", b"true"] {
        let r = raw
            .json(Method::POST, &format!("{o}/signup"), None, body)
            .await;
        r.problem(400, "validation_failed");
        assert!(!error_fields(&r.body).is_empty());
        raw.json(
            Method::POST,
            &format!("{t}/bookings"),
            Some(&traveler.token),
            body,
        )
        .await
        .problem(400, "validation_failed");
    }
    // Unknown property fields are refused, naming the field.
    let r = raw
        .json(
            Method::PUT,
            &format!("{o}/properties/{pid}"),
            Some(&owner.token),
            br#"{"colour":"red"}"#,
        )
        .await;
    r.problem(400, "validation_failed");
    assert!(
        r.body["errors"].to_string().contains("colour"),
        "{}",
        r.text
    );

    // Bodies over 64 KiB: 413, whatever the endpoint.
    let big_name = "x".repeat(70 * 1024);
    let big = json!({"name": big_name, "email": "big@example.com", "password": "long-enough-1", "reason": big_name})
        .to_string()
        .into_bytes();
    for (method, url, token) in [
        (Method::POST, format!("{t}/signup"), None),
        (Method::POST, format!("{o}/signup"), None),
        (Method::POST, format!("{o}/login"), None),
        (
            Method::POST,
            format!("{t}/bookings"),
            Some(traveler.token.as_str()),
        ),
        (
            Method::POST,
            format!("{o}/properties"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/properties/{pid}"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{t}/bookings/{bid}/cancel"),
            Some(traveler.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/reject"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/cancel"),
            Some(owner.token.as_str()),
        ),
    ] {
        raw.json(method, &url, token, &big)
            .await
            .problem(413, "payload_too_large");
    }
    // Just under the limit is read (and then judged on its content).
    let near = json!({"name": "n".repeat(60 * 1024), "email": "near@example.com", "password": "long-enough-1"});
    expect_invalid(
        sys.http.post(&format!("{t}/signup"), None, near).await,
        &["name"],
    );

    // Bad query parameters: 400.
    let r = raw
        .send(
            Method::GET,
            &format!("{t}/bookings?status=LOST"),
            &[("authorization", t_auth)],
            None,
        )
        .await;
    r.problem(400, "validation_failed");
    assert_eq!(error_fields(&r.body), fields(&["status"]));
    let r = raw
        .send(
            Method::GET,
            &format!("{o}/bookings?status=DONE"),
            &[("authorization", o_auth)],
            None,
        )
        .await;
    r.problem(400, "validation_failed");
    assert_eq!(error_fields(&r.body), fields(&["status"]));
    for q in [
        "guests=abc",
        "guests=0",
        "guests=-2",
        "guests=1.5",
        "guests=99999999999999999999",
    ] {
        let r = raw
            .send(
                Method::GET,
                &format!("{t}/properties?{q}"),
                &[("authorization", t_auth)],
                None,
            )
            .await;
        r.problem(400, "validation_failed");
        assert_eq!(error_fields(&r.body), fields(&["guests"]), "{q}");
    }
    raw.send(
        Method::GET,
        &format!("{t}/bookings?status=PENDING&status=ACCEPTED"),
        &[("authorization", t_auth)],
        None,
    )
    .await
    .problem(400, "invalid_query");

    // A bad Idempotency-Key: 400 naming the header; nothing is created.
    let r = create_booking_with_key(&sys, &traveler, stay(&pid, 50, 2, 2), &"k".repeat(256)).await;
    expect_invalid(r, &["Idempotency-Key"]);
    let r = RawClient::read(
        raw.0
            .post(format!("{t}/bookings"))
            .header("authorization", t_auth)
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
            )
            .body(stay(&pid, 50, 2, 2).to_string()),
        "bookings with a non-ASCII key",
    )
    .await;
    r.problem(400, "validation_failed");
    let trips = sys
        .http
        .get(&format!("{t}/bookings"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[&bid]));
}

// ---- owner-service: properties ---------------------------------------------------

#[tokio::test]
async fn owners_create_read_update_and_delist_their_properties() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let other = sys.owner_signup("Oscar").await;
    let base = format!("{}/api/owners/properties", sys.owner);

    // Create with every field.
    let full = create_property_with(
        &sys,
        &owner,
        json!({
            "name": " Sunny flat ", "city": "Lisbon", "country": "PT", "address": "Rua A 1",
            "description": "Bright and quiet", "price_per_night_cents": 12345, "cleaning_fee_cents": 1000,
            "service_fee_cents": 250, "currency": "eur", "max_guests": 4, "bedrooms": 2, "bathrooms": 1,
            "amenities": ["wifi", " kitchen "],
        }),
    )
    .await;
    assert!(full.content_type.starts_with("application/json"));
    let full = full.expect(201);
    assert_eq!(full.as_object().unwrap().len(), 1, "{full}");
    let p = &full["property"];
    let pid = str_of(&p["id"]);
    assert_eq!(p["owner_id"], owner.id.as_str());
    assert_eq!(p["active"], true);
    assert_eq!(p["name"], "Sunny flat");
    assert_eq!(p["city"], "Lisbon");
    assert_eq!(p["country"], "PT");
    assert_eq!(p["address"], "Rua A 1");
    assert_eq!(p["description"], "Bright and quiet");
    assert_eq!(p["price_per_night_cents"], 12345);
    assert_eq!(p["cleaning_fee_cents"], 1000);
    assert_eq!(p["service_fee_cents"], 250);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["max_guests"], 4);
    assert_eq!(p["bedrooms"], 2);
    assert_eq!(p["bathrooms"], 1);
    assert_eq!(p["amenities"], json!(["wifi", "kitchen"]));
    assert_utc_timestamp(&p["created_at"], "property.created_at");
    assert_utc_timestamp(&p["updated_at"], "property.updated_at");

    // Create with only the required fields: defaults.
    let min = create_property_with(
        &sys,
        &owner,
        json!({"name": "Cabin", "city": "Sintra", "country": "PT", "price_per_night_cents": 5000, "max_guests": 2}),
    )
    .await
    .expect(201)["property"]
        .clone();
    let min_id = str_of(&min["id"]);
    assert_eq!(min["currency"], "USD");
    assert_eq!(min["cleaning_fee_cents"], 0);
    assert_eq!(min["service_fee_cents"], 0);
    assert_eq!(min["amenities"], json!([]));
    assert_eq!(min["active"], true);
    assert!(
        min["address"].is_null() && min["bedrooms"].is_null(),
        "{min}"
    );
    assert_ne!(min_id, pid);

    // Another owner's property never shows in my list.
    let theirs = sys.create_property(&other, "Porto").await;
    let list = sys.http.get(&base, Some(&owner.token)).await.expect(200);
    assert_eq!(ids(&list["properties"]), set(&[&pid, &min_id]));
    let their_list = sys.http.get(&base, Some(&other.token)).await.expect(200);
    assert_eq!(
        ids(&their_list["properties"]),
        set(&[theirs["id"].as_str().unwrap()])
    );

    // Read one.
    let shown = sys
        .http
        .get(&format!("{base}/{pid}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(shown["property"], *p);

    // Update a subset: the rest stays.
    let updated = sys
        .http
        .put(
            &format!("{base}/{pid}"),
            Some(&owner.token),
            Some(json!({"name": "Sunnier flat", "max_guests": 6, "price_per_night_cents": 15000})),
        )
        .await
        .expect(200)["property"]
        .clone();
    assert_eq!(updated["id"], pid.as_str());
    assert_eq!(updated["name"], "Sunnier flat");
    assert_eq!(updated["max_guests"], 6);
    assert_eq!(updated["price_per_night_cents"], 15000);
    assert_eq!(updated["city"], "Lisbon");
    assert_eq!(updated["currency"], "EUR");
    assert_eq!(updated["amenities"], json!(["wifi", "kitchen"]));
    assert_eq!(updated["created_at"], p["created_at"]);
    assert!(updated["updated_at"].as_str() >= p["updated_at"].as_str());
    assert_eq!(updated["version"], 2);

    // An invalid update is refused whole and changes nothing.
    expect_invalid(
        sys.http
            .put(
                &format!("{base}/{pid}"),
                Some(&owner.token),
                Some(json!({"name": "Changed", "price_per_night_cents": 0})),
            )
            .await,
        &["price_per_night_cents"],
    );
    let after = sys
        .http
        .get(&format!("{base}/{pid}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(after["property"], updated);

    // Validation: every missing required field at once, then every bad value at once.
    expect_invalid(
        create_property_with(&sys, &owner, json!({})).await,
        &[
            "name",
            "city",
            "country",
            "price_per_night_cents",
            "max_guests",
        ],
    );
    expect_invalid(
        create_property_with(
            &sys,
            &owner,
            json!({
                "name": "   ", "city": "Lisbon", "country": "PT", "price_per_night_cents": 0,
                "cleaning_fee_cents": -1, "service_fee_cents": 100_000_001, "currency": "US",
                "max_guests": 0, "bedrooms": 101, "bathrooms": 101, "amenities": [""],
            }),
        )
        .await,
        &[
            "name",
            "price_per_night_cents",
            "cleaning_fee_cents",
            "service_fee_cents",
            "currency",
            "max_guests",
            "bedrooms",
            "bathrooms",
            "amenities",
        ],
    );
    let mut too_many = property_body("Lisbon", 101);
    expect_invalid(
        create_property_with(&sys, &owner, too_many.clone()).await,
        &["max_guests"],
    );
    too_many["max_guests"] = json!(4);
    too_many["price_per_night_cents"] = json!("10000");
    expect_invalid(
        create_property_with(&sys, &owner, too_many).await,
        &["price_per_night_cents"],
    );
    let list = sys.http.get(&base, Some(&owner.token)).await.expect(200);
    assert_eq!(
        list["properties"].as_array().unwrap().len(),
        2,
        "a refused create was saved"
    );

    // Unknown ids: 404.
    sys.http
        .get(&format!("{base}/no-such-id"), Some(&owner.token))
        .await
        .expect_problem(404, "not_found");
    sys.http
        .put(
            &format!("{base}/no-such-id"),
            Some(&owner.token),
            Some(json!({"name": "x"})),
        )
        .await
        .expect_problem(404, "not_found");
    sys.http
        .delete(&format!("{base}/no-such-id"), Some(&owner.token))
        .await
        .expect_problem(404, "not_found");

    // Delist: 200 with active false; still the owner's, and delisting again changes nothing.
    let delisted = sys
        .http
        .delete(&format!("{base}/{min_id}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(delisted["property"]["id"], min_id.as_str());
    assert_eq!(delisted["property"]["active"], false);
    assert_eq!(delisted["property"]["name"], "Cabin");
    let again = sys
        .http
        .delete(&format!("{base}/{min_id}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(again["property"]["active"], false);
    let shown = sys
        .http
        .get(&format!("{base}/{min_id}"), Some(&owner.token))
        .await
        .expect(200);
    assert_eq!(shown["property"]["active"], false);
    let list = sys.http.get(&base, Some(&owner.token)).await.expect(200);
    assert_eq!(ids(&list["properties"]), set(&[&pid, &min_id]));
}

// ---- traveler-service: catalog -------------------------------------------------

#[tokio::test]
async fn the_catalog_shows_active_properties_filters_them_and_forgets_delisted_ones() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let t = format!("{}/api/travelers", sys.traveler);
    let lisbon = create_property_with(
        &sys,
        &owner,
        json!({
            "name": "Sunny flat", "city": "Lisbon", "country": "PT", "price_per_night_cents": 12345,
            "cleaning_fee_cents": 1000, "service_fee_cents": 250, "currency": "EUR", "max_guests": 4,
            "amenities": ["wifi"],
        }),
    )
    .await
    .expect(201)["property"]
        .clone();
    let porto = create_property_with(&sys, &owner, property_body("Porto", 2))
        .await
        .expect(201)["property"]
        .clone();
    let (lid, poid) = (str_of(&lisbon["id"]), str_of(&porto["id"]));
    let seen = sys.wait_catalog(&traveler, &lid, 1).await;
    sys.wait_catalog(&traveler, &poid, 1).await;

    // One property: the same facts the owner listed.
    for k in [
        "id",
        "owner_id",
        "name",
        "city",
        "country",
        "price_per_night_cents",
        "cleaning_fee_cents",
        "service_fee_cents",
        "currency",
        "max_guests",
        "amenities",
    ] {
        assert_eq!(seen[k], lisbon[k], "catalog {k}");
    }
    assert_eq!(seen["active"], true);
    assert!(seen["id"].is_string() && seen["owner_id"].is_string());

    // Search: all, by city (any case), by guests, both.
    let search = |q: &'static str| {
        let (http, url, token) = (
            sys.http.clone(),
            format!("{t}/properties{q}"),
            traveler.token.clone(),
        );
        async move { ids(&http.get(&url, Some(&token)).await.expect(200)["properties"]) }
    };
    assert_eq!(search("").await, set(&[&lid, &poid]));
    assert_eq!(search("?city=lisbon").await, set(&[&lid]));
    assert_eq!(search("?city=PORTO").await, set(&[&poid]));
    assert_eq!(search("?guests=3").await, set(&[&lid]));
    assert_eq!(search("?guests=2").await, set(&[&lid, &poid]));
    assert_eq!(search("?city=Porto&guests=3").await, set(&[]));
    assert_eq!(search("?city=Nowhere").await, set(&[]));
    assert_eq!(search("?city=&guests=").await, set(&[&lid, &poid]));

    // An update reaches the catalog and the price of new bookings.
    sys.http
        .put(
            &format!("{}/api/owners/properties/{lid}", sys.owner),
            Some(&owner.token),
            Some(json!({"price_per_night_cents": 20000})),
        )
        .await
        .expect(200);
    let seen = sys.wait_catalog(&traveler, &lid, 2).await;
    assert_eq!(seen["price_per_night_cents"], 20000);
    let booking = create_booking(&sys, &traveler, stay(&lid, 5, 3, 4))
        .await
        .expect(201)["booking"]
        .clone();
    assert_eq!(booking["total_price_cents"], 3 * 20000 + 1000 + 250);
    assert_eq!(booking["currency"], "EUR");
    expect_invalid(
        create_booking(&sys, &traveler, stay(&lid, 5, 3, 5)).await,
        &["guests"],
    );

    // Delisting: 404 in the catalog, gone from searches, unbookable.
    let delisted = sys
        .http
        .delete(
            &format!("{}/api/owners/properties/{poid}", sys.owner),
            Some(&owner.token),
        )
        .await
        .expect(200);
    assert_eq!(delisted["property"]["active"], false);
    eventually("porto leaves the catalog", PROPAGATION, || async {
        let r = sys
            .http
            .get(&format!("{t}/properties/{poid}"), Some(&traveler.token))
            .await;
        (r.status == 404).then_some(r)
    })
    .await
    .expect_problem(404, "not_found");
    assert_eq!(search("").await, set(&[&lid]));
    assert_eq!(search("?city=porto").await, set(&[]));
    create_booking(&sys, &traveler, stay(&poid, 5, 2, 2))
        .await
        .expect_problem(404, "not_found");

    // Unknown ids: 404.
    sys.http
        .get(&format!("{t}/properties/no-such-id"), Some(&traveler.token))
        .await
        .expect_problem(404, "not_found");
    create_booking(&sys, &traveler, stay("no-such-id", 5, 2, 2))
        .await
        .expect_problem(404, "not_found");
}

// ---- paging -----------------------------------------------------------------

/// Reads a paged list from its first page, `limit` at a time (`None`: the
/// default), checking each page's shape; returns the pages' items.
async fn pages(
    sys: &System,
    url: &str,
    token: &str,
    member: &str,
    limit: Option<usize>,
) -> Vec<Vec<Value>> {
    pages_from(sys, url, token, member, limit, None).await
}

/// Like [`pages`], from the page after `cursor`.
async fn pages_from(
    sys: &System,
    url: &str,
    token: &str,
    member: &str,
    limit: Option<usize>,
    mut cursor: Option<String>,
) -> Vec<Vec<Value>> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    loop {
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={c}"));
        }
        let page_url = if query.is_empty() {
            url.to_string()
        } else {
            format!("{url}{separator}{}", query.join("&"))
        };
        let page = sys.http.get(&page_url, Some(token)).await.expect(200);
        let members: BTreeSet<&str> = page
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            BTreeSet::from([member, "next_cursor"]),
            "{page_url}: {page}"
        );
        let items = page[member].as_array().unwrap().clone();
        assert!(
            items.len() <= limit.unwrap_or(50),
            "{page_url}: {} items",
            items.len()
        );
        pages.push(items);
        match &page["next_cursor"] {
            Value::Null => return pages,
            Value::String(next) => {
                assert!(
                    next.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "a cursor needs no URL encoding: {next}"
                );
                cursor = Some(next.clone());
            }
            other => panic!("{page_url}: next_cursor is {other}"),
        }
    }
}

fn item_ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|x| str_of(&x["id"])).collect()
}

#[tokio::test]
async fn every_list_is_paged_in_a_stable_order_with_a_bounded_limit_and_an_opaque_cursor() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );

    // Seven properties, two pairs sharing a name.
    let mut pids = Vec::new();
    for (i, name) in [
        "Casa",
        "Apartamento",
        "Casa",
        "Quinta",
        "Barco",
        "Quinta",
        "Moinho",
    ]
    .iter()
    .enumerate()
    {
        let mut body = property_body("Lisbon", 2 + i as u32);
        body["name"] = json!(name);
        let p = create_property_with(&sys, &owner, body).await.expect(201);
        pids.push((name.to_string(), str_of(&p["property"]["id"])));
    }
    pids.sort();
    let by_name: Vec<String> = pids.iter().map(|(_, id)| id.clone()).collect();
    for (_, id) in &pids {
        sys.wait_catalog(&traveler, id, 1).await;
    }
    // The owner's properties and the catalog: by name, then id.
    for (url, token) in [
        (format!("{o}/properties"), &owner.token),
        (format!("{t}/properties"), &traveler.token),
    ] {
        for limit in [Some(1), Some(3), Some(7), None] {
            let pages = pages(&sys, &url, token, "properties", limit).await;
            let expected_pages = limit.map_or(1, |l| by_name.len().div_ceil(l));
            assert_eq!(pages.len(), expected_pages, "{url} limit {limit:?}");
            assert_eq!(item_ids(&pages.concat()), by_name, "{url} limit {limit:?}");
        }
    }
    // Filters page the same way: the three for six guests or more.
    let filtered = pages(
        &sys,
        &format!("{t}/properties?city=LISBON&guests=6"),
        &traveler.token,
        "properties",
        Some(2),
    )
    .await;
    let filtered: Vec<Value> = filtered.concat();
    assert_eq!(filtered.len(), 3, "{filtered:?}");
    let filtered_ids = item_ids(&filtered);
    let expected: Vec<String> = by_name
        .iter()
        .filter(|id| filtered_ids.contains(id))
        .cloned()
        .collect();
    assert_eq!(filtered_ids, expected);

    // 53 bookings: more than a default page.
    const BOOKINGS: usize = 53;
    let mut booked = Vec::new();
    for i in 0..BOOKINGS {
        let pid = &by_name[i % by_name.len()];
        let b = create_booking(&sys, &traveler, stay(pid, 10 + i as i64, 1, 2))
            .await
            .expect(201);
        booked.push((
            str_of(&b["booking"]["created_at"]),
            str_of(&b["booking"]["id"]),
        ));
    }
    booked.sort();
    booked.reverse();
    let newest_first: Vec<String> = booked.into_iter().map(|(_, id)| id).collect();
    for id in &newest_first {
        sys.wait_owner_sees(&owner, id).await;
    }
    // The owner is told of each request: as many notifications.
    wait_owner_notifications(&sys, &owner, BOOKINGS).await;

    for (url, token, member) in [
        (format!("{t}/bookings"), &traveler.token, "bookings"),
        (format!("{o}/bookings"), &owner.token, "bookings"),
        (format!("{o}/notifications"), &owner.token, "notifications"),
    ] {
        // The default page holds 50; the rest follows.
        let default = pages(&sys, &url, token, member, None).await;
        assert_eq!(
            default.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![50, 3],
            "{url}"
        );
        for limit in [Some(7), Some(53), Some(200)] {
            let pages = pages(&sys, &url, token, member, limit).await;
            let all = pages.concat();
            if member == "notifications" {
                // Newest first, ties by id; one per booking request.
                assert_notifications_shape(&all);
                let keys: Vec<(String, String)> = all
                    .iter()
                    .map(|n| (str_of(&n["created_at"]), str_of(&n["id"])))
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort();
                sorted.reverse();
                assert_eq!(keys, sorted, "{url} limit {limit:?}");
                let about: BTreeSet<String> =
                    all.iter().map(|n| str_of(&n["booking_id"])).collect();
                assert_eq!(about, newest_first.iter().cloned().collect::<BTreeSet<_>>());
                assert_eq!(all.len(), BOOKINGS);
            } else {
                assert_eq!(item_ids(&all), newest_first, "{url} limit {limit:?}");
            }
        }
    }
    // Filters page the same way.
    let p0 = &by_name[0];
    let of_p0 = pages(
        &sys,
        &format!("{o}/bookings?property_id={p0}&status=PENDING"),
        &owner.token,
        "bookings",
        Some(2),
    )
    .await
    .concat();
    let expected: Vec<String> = newest_first
        .iter()
        .filter(|id| of_p0.iter().any(|b| &str_of(&b["id"]) == *id))
        .cloned()
        .collect();
    assert_eq!(item_ids(&of_p0), expected);
    assert_eq!(of_p0.len(), BOOKINGS.div_ceil(by_name.len()));

    // A booking made while the pages are read does not disturb them: it
    // sorts before the first page, so the rest is exactly the unread part.
    let first = sys
        .http
        .get(&format!("{t}/bookings?limit=10"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(
        item_ids(first["bookings"].as_array().unwrap()),
        newest_first[..10]
    );
    let newcomer = create_booking(&sys, &traveler, stay(p0, 200, 1, 2))
        .await
        .expect(201);
    let cursor = str_of(&first["next_cursor"]);
    let rest = pages_from(
        &sys,
        &format!("{t}/bookings"),
        &traveler.token,
        "bookings",
        Some(10),
        Some(cursor),
    )
    .await;
    assert_eq!(item_ids(&rest.concat()), newest_first[10..]);
    let top = sys
        .http
        .get(&format!("{t}/bookings?limit=1"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(top["bookings"][0]["id"], newcomer["booking"]["id"]);

    // Bad limits and cursors: 400 naming the parameter, on every list.
    let cursor_of_properties = str_of(
        &sys.http
            .get(&format!("{o}/properties?limit=1"), Some(&owner.token))
            .await
            .expect(200)["next_cursor"],
    );
    for (list, token) in [
        (format!("{t}/bookings"), &traveler.token),
        (format!("{t}/properties"), &traveler.token),
        (format!("{t}/notifications"), &traveler.token),
        (format!("{o}/bookings"), &owner.token),
        (format!("{o}/properties"), &owner.token),
        (format!("{o}/notifications"), &owner.token),
    ] {
        for q in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=ten",
            "limit=1.5",
            "limit=99999999999999999999999",
        ] {
            let problem = sys
                .http
                .get(&format!("{list}?{q}"), Some(token))
                .await
                .expect_problem(400, "validation_failed");
            assert_eq!(problem["errors"][0]["field"], "limit", "{list}?{q}");
        }
        let foreign = if list.ends_with("/properties") && list.contains("/owners") {
            // A notifications cursor is not a properties cursor.
            let n = sys
                .http
                .get(&format!("{o}/notifications?limit=1"), Some(&owner.token))
                .await
                .expect(200);
            str_of(&n["next_cursor"])
        } else {
            cursor_of_properties.clone()
        };
        for cursor in [
            "garbage",
            "%%",
            "e30",
            "eyJsIjoiYm9va2luZ3MifQ",
            foreign.as_str(),
        ] {
            let problem = sys
                .http
                .get(&format!("{list}?cursor={cursor}"), Some(token))
                .await
                .expect_problem(400, "validation_failed");
            assert_eq!(
                problem["errors"][0]["field"], "cursor",
                "{list}?cursor={cursor}"
            );
        }
        sys.http
            .get(&format!("{list}?limit=200"), Some(token))
            .await
            .expect(200);
    }
}

// ---- traveler-service: bookings ------------------------------------------------

#[tokio::test]
async fn a_booking_is_created_priced_listed_and_read_with_the_contract_shape() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let t = format!("{}/api/travelers", sys.traveler);

    let reply = create_booking(&sys, &traveler, stay(&pid, 7, 4, 3)).await;
    assert!(reply.content_type.starts_with("application/json"));
    let created = reply.expect(201);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let b = created["booking"].clone();
    assert_booking_shape(&b);
    let bid = str_of(&b["id"]);
    assert_eq!(b["property_id"], pid.as_str());
    assert_eq!(b["owner_id"], owner.id.as_str());
    assert_eq!(b["traveler_id"], traveler.id.as_str());
    assert_eq!(b["check_in"], day(7));
    assert_eq!(b["check_out"], day(11));
    assert_eq!(b["nights"], 4);
    assert_eq!(b["guests"], 3);
    assert_eq!(b["total_price_cents"], 4 * 10000 + 2000 + 500);
    assert_eq!(b["currency"], "USD");
    assert_eq!(b["status"], "PENDING");

    // Read it back, list it, filter by status (any case).
    assert_eq!(
        sys.http
            .get(&format!("{t}/bookings/{bid}"), Some(&traveler.token))
            .await
            .expect(200)["booking"],
        b
    );
    let second = sys.book(&traveler, &pid, 30, 1).await;
    let sid = str_of(&second["id"]);
    assert_eq!(second["total_price_cents"], 10000 + 2000 + 500);
    for (q, expected) in [
        ("", vec![bid.as_str(), sid.as_str()]),
        ("?status=PENDING", vec![bid.as_str(), sid.as_str()]),
        ("?status=pending", vec![bid.as_str(), sid.as_str()]),
        ("?status=ACCEPTED", vec![]),
        ("?status=", vec![bid.as_str(), sid.as_str()]),
    ] {
        let list = sys
            .http
            .get(&format!("{t}/bookings{q}"), Some(&traveler.token))
            .await
            .expect(200);
        assert_eq!(list.as_object().unwrap().len(), 2, "{list}");
        assert!(list["next_cursor"].is_null(), "one page: {list}");
        assert_eq!(ids(&list["bookings"]), set(&expected), "bookings{q}");
        for item in list["bookings"].as_array().unwrap() {
            assert_booking_shape(item);
        }
    }

    // The owner sees the same booking.
    let mine = sys.wait_owner_sees(&owner, &bid).await;
    assert_booking_shape(&mine);
    for k in [
        "id",
        "property_id",
        "owner_id",
        "traveler_id",
        "check_in",
        "check_out",
        "nights",
        "guests",
        "total_price_cents",
        "currency",
        "status",
    ] {
        assert_eq!(mine[k], b[k], "owner's booking.{k}");
    }
    sys.wait_owner_sees(&owner, &sid).await;
    let list = sys
        .http
        .get(
            &format!("{}/api/owners/bookings", sys.owner),
            Some(&owner.token),
        )
        .await
        .expect(200);
    assert_eq!(ids(&list["bookings"]), set(&[&bid, &sid]));
    for (q, expected) in [
        (
            format!("?property_id={pid}"),
            vec![bid.as_str(), sid.as_str()],
        ),
        ("?property_id=other".to_string(), vec![]),
        (
            "?status=PENDING".to_string(),
            vec![bid.as_str(), sid.as_str()],
        ),
        ("?status=REJECTED".to_string(), vec![]),
        (
            format!("?status=pending&property_id={pid}"),
            vec![bid.as_str(), sid.as_str()],
        ),
    ] {
        let list = sys
            .http
            .get(
                &format!("{}/api/owners/bookings{q}", sys.owner),
                Some(&owner.token),
            )
            .await
            .expect(200);
        assert_eq!(ids(&list["bookings"]), set(&expected), "owner bookings{q}");
    }
}

#[tokio::test]
async fn invalid_booking_requests_are_refused_with_the_offending_fields() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await; // hosts 4
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;

    let cases: Vec<(Value, &[&str])> = vec![
        (stay(&pid, -1, 3, 2), &["check_in"]),
        (stay(&pid, -30, 3, 2), &["check_in"]),
        (stay(&pid, 5, 0, 2), &["check_out"]),
        (stay(&pid, 5, -2, 2), &["check_out"]),
        (stay(&pid, 5, 366, 2), &["check_out"]),
        (stay(&pid, 5, 3, 0), &["guests"]),
        (stay(&pid, 5, 3, 5), &["guests"]),
        (stay(&pid, 5, 3, -1), &["guests"]),
        (stay(&pid, -1, 0, 0), &["check_in", "check_out", "guests"]),
        (stay("", 5, 3, 2), &["property_id"]),
        (
            json!({"property_id": pid, "check_in": "2030-02-30", "check_out": day(9), "guests": 2}),
            &["check_in"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": "next week", "guests": 2}),
            &["check_out"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8), "guests": "2"}),
            &["guests"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8), "guests": 2.5}),
            &["guests"],
        ),
        (
            json!({"property_id": 42, "check_in": day(5), "check_out": day(8), "guests": 2}),
            &["property_id"],
        ),
        (
            json!({"check_in": day(5), "check_out": day(8), "guests": 2}),
            &["property_id"],
        ),
        (
            json!({"property_id": pid, "check_out": day(8), "guests": 2}),
            &["check_in"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "guests": 2}),
            &["check_out"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8)}),
            &["guests"],
        ),
        (
            json!({"property_id": pid, "check_in": null, "check_out": day(8), "guests": 2}),
            &["check_in"],
        ),
    ];
    for (body, expected) in cases {
        let r = create_booking(&sys, &traveler, body.clone()).await;
        let problem = r.expect_problem(400, "validation_failed");
        assert_eq!(
            error_fields(&problem),
            fields(expected),
            "{body} → {problem}"
        );
    }
    create_booking(&sys, &traveler, stay("no-such-property", 5, 3, 2))
        .await
        .expect_problem(404, "not_found");
    let trips = sys
        .http
        .get(
            &format!("{}/api/travelers/bookings", sys.traveler),
            Some(&traveler.token),
        )
        .await
        .expect(200);
    assert_eq!(
        trips,
        json!({"bookings": [], "next_cursor": null}),
        "a refused request was saved"
    );

    // The limits themselves are allowed: today, 365 nights, max_guests.
    let today = create_booking(&sys, &traveler, stay(&pid, 0, 1, 1))
        .await
        .expect(201);
    assert_eq!(today["booking"]["nights"], 1);
    let year = create_booking(&sys, &traveler, stay(&pid, 400, 365, 4))
        .await
        .expect(201);
    assert_eq!(year["booking"]["nights"], 365);
    assert_eq!(
        year["booking"]["total_price_cents"],
        365 * 10000 + 2000 + 500
    );
    let (a, b) = (
        str_of(&today["booking"]["id"]),
        str_of(&year["booking"]["id"]),
    );
    wait_requested_published(&sys, &a).await;
    wait_requested_published(&sys, &b).await;
    assert_eq!(
        request_events(&sys).len(),
        2,
        "only the accepted requests are published"
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_booking_and_refuses_a_different_body() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let other = sys.traveler_signup("Tina").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let key = unique("retry");
    let body = stay(&pid, 20, 2, 2);

    let first = create_booking_with_key(&sys, &traveler, body.clone(), &key)
        .await
        .expect(201)["booking"]
        .clone();
    let id = str_of(&first["id"]);
    wait_requested_published(&sys, &id).await;

    // Same key, same body: 201 with the same booking, however often.
    for _ in 0..3 {
        let again = create_booking_with_key(&sys, &traveler, body.clone(), &key)
            .await
            .expect(201);
        assert_eq!(again["booking"], first);
    }
    // Same key, different body: 422; the key stays bound to the first booking.
    for changed in [
        stay(&pid, 20, 2, 3),
        stay(&pid, 21, 2, 2),
        stay(&pid, 20, 3, 2),
    ] {
        create_booking_with_key(&sys, &traveler, changed, &key)
            .await
            .expect_problem(422, "idempotency_key_reused");
    }
    let again = create_booking_with_key(&sys, &traveler, body.clone(), &key)
        .await
        .expect(201);
    assert_eq!(again["booking"]["id"], id.as_str());

    // Keys belong to one traveler: another traveler's identical request is a new booking.
    let theirs = create_booking_with_key(&sys, &other, body.clone(), &key)
        .await
        .expect(201)["booking"]
        .clone();
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(theirs["traveler_id"], other.id.as_str());
    // A different key is a different booking.
    let fresh = create_booking_with_key(&sys, &traveler, body.clone(), &unique("other"))
        .await
        .expect(201);
    let fresh_id = str_of(&fresh["booking"]["id"]);
    assert_ne!(fresh_id, id);

    // Events are published in order: once the later bookings are out, any
    // event from the retries would be too. The first booking was published once.
    wait_requested_published(&sys, &fresh_id).await;
    wait_requested_published(&sys, theirs["id"].as_str().unwrap()).await;
    assert_eq!(
        requested_events(&sys, &id),
        1,
        "a retry published the booking again"
    );
    assert_eq!(request_events(&sys).len(), 3);

    let trips = sys
        .http
        .get(
            &format!("{}/api/travelers/bookings", sys.traveler),
            Some(&traveler.token),
        )
        .await
        .expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[&id, &fresh_id]));
    let notes = wait_owner_notifications(&sys, &owner, 3).await;
    assert_eq!(notes.len(), 3);
    assert_eq!(
        notes
            .iter()
            .filter(|n| n["booking_id"] == id.as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_booking_even_after_the_property_was_delisted() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let key = unique("retry");
    let body = stay(&pid, 20, 2, 2);
    let first = create_booking_with_key(&sys, &traveler, body.clone(), &key)
        .await
        .expect(201)["booking"]
        .clone();
    sys.wait_owner_sees(&owner, first["id"].as_str().unwrap())
        .await;

    sys.http
        .delete(
            &format!("{}/api/owners/properties/{pid}", sys.owner),
            Some(&owner.token),
        )
        .await
        .expect(200);
    eventually("the property leaves the catalog", PROPAGATION, || async {
        let r = sys
            .http
            .get(
                &format!("{}/api/travelers/properties/{pid}", sys.traveler),
                Some(&traveler.token),
            )
            .await;
        (r.status == 404).then_some(())
    })
    .await;

    // The booking exists: a client retrying its request (say, after a lost
    // response) must learn about it rather than be told the property is gone.
    let retry = create_booking_with_key(&sys, &traveler, body, &key).await;
    assert_eq!(
        retry.status.as_u16(),
        201,
        "POST /api/travelers/bookings retried with the same Idempotency-Key and body after the \
         property was delisted: expected 201 with booking {}, got {} {}",
        first["id"],
        retry.status,
        retry.body
    );
    assert_eq!(retry.body["booking"]["id"], first["id"]);
}

// ---- owner decisions --------------------------------------------------------------

#[tokio::test]
async fn owners_approve_reject_and_cancel_by_the_state_rules_and_travelers_are_told() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let b1 = str_of(&sys.book(&traveler, &pid, 10, 3).await["id"]); // nights 10, 11, 12
    let b2 = str_of(&sys.book(&traveler, &pid, 30, 2).await["id"]);
    let b3 = str_of(&sys.book(&traveler, &pid, 40, 2).await["id"]);
    let b4 = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]); // overlaps b1
    let b5 = str_of(&sys.book(&traveler, &pid, 13, 2).await["id"]); // starts the day b1 ends
    for id in [&b1, &b2, &b3, &b4, &b5] {
        let seen = sys.wait_owner_sees(&owner, id).await;
        assert_eq!(seen["status"], "PENDING");
        assert_eq!(seen["owner_id"], owner.id.as_str());
    }

    // Approve: 200 ACCEPTED; not twice, and an accepted booking cannot be rejected.
    let approved = sys.decide(&owner, &b1, "approve", None).await.expect(200);
    assert_eq!(approved.as_object().unwrap().len(), 1);
    assert_booking_shape(&approved["booking"]);
    assert_eq!(approved["booking"]["id"], b1.as_str());
    assert_eq!(approved["booking"]["status"], "ACCEPTED");
    sys.decide(&owner, &b1, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(
        &owner,
        &b1,
        "reject",
        Some(json!({"reason": "changed my mind"})),
    )
    .await
    .expect_problem(409, "invalid_transition");

    // Reject with a reason (trimmed), and without a body at all.
    let rejected = sys
        .decide(
            &owner,
            &b2,
            "reject",
            Some(json!({"reason": "  Owner is away  "})),
        )
        .await
        .expect(200);
    assert_eq!(rejected["booking"]["status"], "REJECTED");
    assert_eq!(rejected["booking"]["status_reason"], "Owner is away");
    expect_invalid(
        sys.decide(
            &owner,
            &b3,
            "reject",
            Some(json!({"reason": "x".repeat(1001)})),
        )
        .await,
        &["reason"],
    );
    let rejected = sys.decide(&owner, &b3, "reject", None).await.expect(200);
    assert_eq!(rejected["booking"]["status"], "REJECTED");
    assert!(rejected["booking"]["status_reason"].is_null());
    // A rejected booking is final.
    sys.decide(&owner, &b2, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(&owner, &b2, "cancel", Some(json!({"reason": "x"})))
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(&owner, &b2, "reject", None)
        .await
        .expect_problem(409, "invalid_transition");

    // Overlapping an accepted booking: 409 and the booking stays PENDING; adjacent is fine.
    sys.decide(&owner, &b4, "approve", None)
        .await
        .expect_problem(409, "dates_unavailable");
    let still = sys
        .http
        .get(
            &format!("{}/api/owners/bookings/{b4}", sys.owner),
            Some(&owner.token),
        )
        .await
        .expect(200);
    assert_eq!(still["booking"]["status"], "PENDING");
    assert_eq!(
        sys.decide(&owner, &b5, "approve", None).await.expect(200)["booking"]["status"],
        "ACCEPTED"
    );

    // Owner cancel: a reason is required (400) and nothing changes without one.
    for body in [json!({}), json!({"reason": "   "}), json!({"reason": null})] {
        expect_invalid(
            sys.decide(&owner, &b1, "cancel", Some(body)).await,
            &["reason"],
        );
    }
    // No body at all is "without a reason" too: 400, not 415.
    expect_invalid(sys.decide(&owner, &b1, "cancel", None).await, &["reason"]);
    expect_invalid(
        sys.decide(
            &owner,
            &b1,
            "cancel",
            Some(json!({"reason": "x".repeat(1001)})),
        )
        .await,
        &["reason"],
    );
    let still = sys
        .http
        .get(
            &format!("{}/api/owners/bookings/{b1}", sys.owner),
            Some(&owner.token),
        )
        .await
        .expect(200);
    assert_eq!(still["booking"]["status"], "ACCEPTED");
    let cancelled = sys
        .decide(&owner, &b1, "cancel", Some(json!({"reason": "Pipe burst"})))
        .await
        .expect(200);
    assert_eq!(cancelled["booking"]["status"], "CANCELLED");
    assert_eq!(cancelled["booking"]["status_reason"], "Pipe burst");
    sys.decide(&owner, &b1, "cancel", Some(json!({"reason": "again"})))
        .await
        .expect_problem(409, "invalid_transition");

    // With b1 cancelled its nights are free again.
    assert_eq!(
        sys.decide(&owner, &b4, "approve", None).await.expect(200)["booking"]["status"],
        "ACCEPTED"
    );

    // Owner-side filters reflect the decisions.
    let by_status = |s: &'static str| {
        let (http, url, token) = (
            sys.http.clone(),
            format!("{}/api/owners/bookings?status={s}", sys.owner),
            owner.token.clone(),
        );
        async move { ids(&http.get(&url, Some(&token)).await.expect(200)["bookings"]) }
    };
    assert_eq!(by_status("ACCEPTED").await, set(&[&b4, &b5]));
    assert_eq!(by_status("REJECTED").await, set(&[&b2, &b3]));
    assert_eq!(by_status("CANCELLED").await, set(&[&b1]));
    assert_eq!(by_status("PENDING").await, set(&[]));

    // The traveler sees every outcome, with reasons, and one notification per change.
    let t1 = sys.wait_traveler_status(&traveler, &b1, "CANCELLED").await;
    assert_eq!(t1["status_reason"], "Pipe burst");
    let t2 = sys.wait_traveler_status(&traveler, &b2, "REJECTED").await;
    assert_eq!(t2["status_reason"], "Owner is away");
    sys.wait_traveler_status(&traveler, &b3, "REJECTED").await;
    sys.wait_traveler_status(&traveler, &b4, "ACCEPTED").await;
    sys.wait_traveler_status(&traveler, &b5, "ACCEPTED").await;
    let notes = wait_traveler_notifications(&sys, &traveler, 6).await;
    assert_eq!(notes.len(), 6, "{notes:?}");
    assert_notifications_shape(&notes);
    let summary: BTreeSet<(String, String, String)> = notes
        .iter()
        .map(|n| {
            (
                str_of(&n["booking_id"]),
                str_of(&n["status"]),
                n["reason"].to_string(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        (&b1, "ACCEPTED", Value::Null),
        (&b1, "CANCELLED", json!("Pipe burst")),
        (&b2, "REJECTED", json!("Owner is away")),
        (&b3, "REJECTED", Value::Null),
        (&b4, "ACCEPTED", Value::Null),
        (&b5, "ACCEPTED", Value::Null),
    ]
    .into_iter()
    .map(|(b, s, r)| (b.clone(), s.to_string(), r.to_string()))
    .collect();
    assert_eq!(summary, expected);
    assert_eq!(
        notes[0]["booking_id"],
        b4.as_str(),
        "the newest (last decision) comes first"
    );

    // The owner is notified of the five requests only, not of their own decisions.
    let owner_notes = wait_owner_notifications(&sys, &owner, 5).await;
    assert_eq!(owner_notes.len(), 5, "{owner_notes:?}");
    assert_notifications_shape(&owner_notes);
    assert!(
        owner_notes.iter().all(|n| n["status"] == "PENDING"),
        "{owner_notes:?}"
    );
    let requested: BTreeSet<String> = owner_notes
        .iter()
        .map(|n| str_of(&n["booking_id"]))
        .collect();
    assert_eq!(requested, set(&[&b1, &b2, &b3, &b4, &b5]));
}

#[tokio::test]
async fn travelers_cancel_pending_and_accepted_bookings_through_owner_service() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let t = format!("{}/api/travelers", sys.traveler);

    // A PENDING booking, cancelled with a reason.
    let b1 = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]);
    sys.wait_owner_sees(&owner, &b1).await;
    expect_invalid(
        sys.http
            .put(
                &format!("{t}/bookings/{b1}/cancel"),
                Some(&traveler.token),
                Some(json!({"reason": "x".repeat(1001)})),
            )
            .await,
        &["reason"],
    );
    let accepted = sys
        .http
        .put(
            &format!("{t}/bookings/{b1}/cancel"),
            Some(&traveler.token),
            Some(json!({"reason": "Plans changed"})),
        )
        .await;
    assert!(accepted.content_type.starts_with("application/json"));
    let accepted = accepted.expect(202);
    assert_booking_shape(&accepted["booking"]);
    assert_eq!(accepted["booking"]["id"], b1.as_str());
    assert!(
        ["PENDING", "CANCELLED"].contains(&accepted["booking"]["status"].as_str().unwrap()),
        "{accepted}"
    );
    let done = sys.wait_traveler_status(&traveler, &b1, "CANCELLED").await;
    assert_eq!(done["status_reason"], "Plans changed");
    let owner_side = wait_owner_status(&sys, &owner, &b1, "CANCELLED").await;
    assert_eq!(owner_side["status_reason"], "Plans changed");
    let notes = wait_traveler_notifications(&sys, &traveler, 1).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["booking_id"], b1.as_str());
    assert_eq!(notes[0]["status"], "CANCELLED");
    assert_eq!(notes[0]["reason"], "Plans changed");
    assert_notifications_shape(&notes);

    // A cancelled booking stays cancelled.
    sys.http
        .put(
            &format!("{t}/bookings/{b1}/cancel"),
            Some(&traveler.token),
            None,
        )
        .await
        .expect_problem(409, "booking_final");
    sys.decide(&owner, &b1, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");

    // An ACCEPTED booking, cancelled without a body.
    let b2 = str_of(&sys.book(&traveler, &pid, 20, 3).await["id"]);
    sys.wait_owner_sees(&owner, &b2).await;
    sys.decide(&owner, &b2, "approve", None).await.expect(200);
    sys.wait_traveler_status(&traveler, &b2, "ACCEPTED").await;
    let accepted = sys
        .http
        .put(
            &format!("{t}/bookings/{b2}/cancel"),
            Some(&traveler.token),
            None,
        )
        .await
        .expect(202);
    assert_eq!(accepted["booking"]["id"], b2.as_str());
    let done = sys.wait_traveler_status(&traveler, &b2, "CANCELLED").await;
    assert!(done["status_reason"].is_null(), "{done}");
    wait_owner_status(&sys, &owner, &b2, "CANCELLED").await;

    // The traveler: one notification per change, newest first.
    let notes = wait_traveler_notifications(&sys, &traveler, 3).await;
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_notifications_shape(&notes);
    let order: Vec<(String, String)> = notes
        .iter()
        .map(|n| (str_of(&n["booking_id"]), str_of(&n["status"])))
        .collect();
    assert_eq!(
        order,
        vec![
            (b2.clone(), "CANCELLED".to_string()),
            (b2.clone(), "ACCEPTED".to_string()),
            (b1.clone(), "CANCELLED".to_string()),
        ]
    );

    // The owner: one notification per request and per traveler cancellation, newest first.
    let owner_notes = wait_owner_notifications(&sys, &owner, 4).await;
    assert_eq!(owner_notes.len(), 4, "{owner_notes:?}");
    assert_notifications_shape(&owner_notes);
    let order: Vec<(String, String, Value)> = owner_notes
        .iter()
        .map(|n| {
            (
                str_of(&n["booking_id"]),
                str_of(&n["status"]),
                n["reason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![
            (b2.clone(), "CANCELLED".to_string(), Value::Null),
            (b2.clone(), "PENDING".to_string(), Value::Null),
            (b1.clone(), "CANCELLED".to_string(), json!("Plans changed")),
            (b1.clone(), "PENDING".to_string(), Value::Null),
        ]
    );

    // Unknown bookings: 404.
    sys.http
        .put(
            &format!("{t}/bookings/no-such-id/cancel"),
            Some(&traveler.token),
            None,
        )
        .await
        .expect_problem(404, "not_found");
    sys.http
        .get(&format!("{t}/bookings/no-such-id"), Some(&traveler.token))
        .await
        .expect_problem(404, "not_found");
}

// ---- robustness ---------------------------------------------------------------------

#[tokio::test]
async fn weird_input_on_any_endpoint_never_causes_a_server_error() {
    let sys = System::embedded().await;
    let raw = RawClient::new();
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;
    let bid = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]);
    sys.wait_owner_sees(&owner, &bid).await;
    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );

    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let nested_obj = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
    let weird: Vec<Vec<u8>> = vec![
        b"{}".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"true".to_vec(),
        b"0".to_vec(),
        b"1e40".to_vec(),
        b"-1".to_vec(),
        b"\"text\"".to_vec(),
        json!({"name": "名前 🏠 \u{202e}abc", "email": "ü@ü.ü", "password": "pässwörd🔑🔑", "city": "Zürich",
               "country": "🇵🇹", "reason": "🙂".repeat(10), "property_id": "🏠"})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": 1e40, "max_guests": 1e40,
               "guests": 1e40, "check_in": day(5), "check_out": day(7), "property_id": pid})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": -1,
               "cleaning_fee_cents": i64::MIN, "max_guests": -5, "guests": -1, "bedrooms": -1,
               "property_id": pid, "check_in": day(5), "check_out": day(7)})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": u64::MAX,
               "service_fee_cents": i64::MAX, "max_guests": 4_294_967_296u64, "guests": 4_294_967_296u64,
               "property_id": pid, "check_in": day(5), "check_out": day(7)})
        .to_string()
        .into_bytes(),
        br#"{"price_per_night_cents": 1e400, "guests": 123456789012345678901234567890}"#.to_vec(),
        json!({"name": null, "email": null, "password": null, "city": null, "property_id": null, "reason": null,
               "check_in": null, "guests": null, "amenities": null, "price_per_night_cents": null})
        .to_string()
        .into_bytes(),
        json!({"name": [], "email": ["a@b.co"], "city": ["Lisbon"], "property_id": [pid], "reason": ["late"],
               "amenities": "wifi", "guests": [2]})
        .to_string()
        .into_bytes(),
        json!({"name": {"first": {"deep": {}}}, "email": {"a": 1}, "reason": {"text": "x"},
               "amenities": [{"a": 1}, 2, null], "property_id": {"id": pid}, "check_in": {"y": 2030}})
        .to_string()
        .into_bytes(),
        json!({"price_per_night_cents": "10000", "max_guests": "4", "guests": "2", "bedrooms": "two",
               "active": "yes", "reason": 42, "password": 12345678, "email": true})
        .to_string()
        .into_bytes(),
        json!({"property_id": pid, "check_in": "2030-02-30", "check_out": "tomorrow", "guests": 2})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "+262143-12-30", "check_out": "+262143-12-31", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "-262144-01-01", "check_out": "+262143-12-31", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "+262143-12-31", "check_out": "-262144-01-01", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": "\u{0}", "name": "\u{0}", "email": "a\u{0}@b.co", "password": "\u{0}".repeat(8),
               "city": "\u{0}", "country": "\u{0}", "reason": "\u{0}"})
        .to_string()
        .into_bytes(),
        json!({"name": "x".repeat(30_000), "password": "p".repeat(1000), "email": format!("{}@b.co", "a".repeat(300)),
               "reason": "r".repeat(1000), "amenities": vec!["a"; 5000]})
        .to_string()
        .into_bytes(),
        nested.into_bytes(),
        nested_obj.into_bytes(),
        br#"{"name": "\ud800", "reason": "\udfff", "property_id": "\ud83d"}"#.to_vec(),
        br#"{"reason": "a", "reason": "b", "name": "x", "name": "y"}"#.to_vec(),
        b"\xff\xfe\x00{".to_vec(),
        b"{\"reason\": \"\xff\xfe\"}".to_vec(),
        r#"{"active": false, "currency": "€€€", "max_guests": 0.0, "guests": 1.0}"#.as_bytes().to_vec(),
    ];

    let endpoints: Vec<(Method, String, Option<&str>)> = vec![
        (Method::POST, format!("{t}/signup"), None),
        (Method::POST, format!("{t}/login"), None),
        (
            Method::POST,
            format!("{t}/bookings"),
            Some(traveler.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{t}/bookings/{bid}/cancel"),
            Some(traveler.token.as_str()),
        ),
        (
            Method::GET,
            format!("{t}/bookings"),
            Some(traveler.token.as_str()),
        ),
        (
            Method::GET,
            format!("{t}/properties"),
            Some(traveler.token.as_str()),
        ),
        (Method::POST, format!("{o}/signup"), None),
        (Method::POST, format!("{o}/login"), None),
        (
            Method::POST,
            format!("{o}/properties"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/properties/{pid}"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/approve"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/reject"),
            Some(owner.token.as_str()),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/cancel"),
            Some(owner.token.as_str()),
        ),
        (
            Method::GET,
            format!("{o}/notifications"),
            Some(owner.token.as_str()),
        ),
    ];

    let mut failures = Vec::new();
    let mut check = |what: String, r: Raw| {
        let json_type = r.content_type.starts_with("application/json")
            || r.content_type.starts_with("application/problem+json");
        if r.status >= 500 || !json_type || !r.is_json {
            failures.push(format!(
                "{what} → {} {:?} {}",
                r.status,
                r.content_type,
                r.text.chars().take(300).collect::<String>()
            ));
        } else if r.status >= 400
            && !(r.content_type.starts_with("application/problem+json")
                && r.body["status"] == r.status
                && r.body["code"].is_string()
                && r.body["detail"].is_string()
                && r.body["title"].is_string()
                && r.body["type"].is_string())
        {
            failures.push(format!(
                "{what} → {} is not a problem document: {}",
                r.status, r.text
            ));
        }
    };
    for (method, url, token) in &endpoints {
        for body in &weird {
            let r = raw.json(method.clone(), url, *token, body).await;
            check(
                format!(
                    "{method} {url} {}",
                    String::from_utf8_lossy(&body[..body.len().min(120)])
                ),
                r,
            );
        }
    }

    // Weird query strings, paths and headers.
    let t_auth = format!("Bearer {}", traveler.token);
    let o_auth = format!("Bearer {}", owner.token);
    let (t_auth, o_auth) = (t_auth.as_str(), o_auth.as_str());
    let long = "a".repeat(4000);
    let gets: Vec<(String, &str)> = vec![
        (
            format!("{t}/properties?city=%F0%9F%8F%A0&guests=%00"),
            t_auth,
        ),
        (format!("{t}/properties?guests=1e40"), t_auth),
        (
            format!("{t}/properties?guests=18446744073709551616"),
            t_auth,
        ),
        (format!("{t}/properties?city=%ZZ&guests=%FF"), t_auth),
        (format!("{t}/properties?city[]=a&city[]=b"), t_auth),
        (format!("{t}/bookings?status=%00"), t_auth),
        (format!("{t}/bookings?status=%FF%FE"), t_auth),
        (
            format!("{o}/bookings?property_id=%00&status=pending"),
            o_auth,
        ),
        (format!("{o}/bookings?property_id={long}"), o_auth),
        (format!("{t}/bookings/%FF"), t_auth),
        (format!("{t}/bookings/%00"), t_auth),
        (format!("{t}/bookings/{long}"), t_auth),
        (format!("{t}/properties/..%2F..%2Fhealth"), t_auth),
        (format!("{o}/properties/%E2%80%AE"), o_auth),
        (format!("{o}/bookings/%2F/approve"), o_auth),
    ];
    for (url, auth) in &gets {
        let r = raw
            .send(Method::GET, url, &[("authorization", auth)], None)
            .await;
        check(format!("GET {url}"), r);
    }
    let puts = [
        format!("{o}/bookings/%FF/approve"),
        format!("{o}/properties/%FF"),
        format!("{t}/bookings/%FF/cancel"),
    ];
    for url in &puts {
        let auth = if url.starts_with(&o) { o_auth } else { t_auth };
        let r = raw
            .send(
                Method::PUT,
                url,
                &[
                    ("authorization", auth),
                    ("content-type", "application/json"),
                ],
                Some(b"{}".to_vec()),
            )
            .await;
        check(format!("PUT {url}"), r);
    }
    for auth in [
        "Bearer ".to_string(),
        "Bearer a.b.c".to_string(),
        "Bearer ....".to_string(),
        format!("Bearer {}", "x".repeat(8000)),
        format!(
            "Bearer {}.{}.{}",
            b64url_encode(b"{}"),
            b64url_encode(b"{}"),
            "sig"
        ),
        format!(
            "Bearer {}.{}.",
            b64url_encode(b"\"x\""),
            b64url_encode(b"[1]")
        ),
        "bearer".to_string(),
    ] {
        for url in [format!("{t}/me"), format!("{o}/bookings")] {
            let r = raw
                .send(Method::GET, &url, &[("authorization", auth.as_str())], None)
                .await;
            check(
                format!(
                    "GET {url} with Authorization {:?}",
                    &auth[..auth.len().min(40)]
                ),
                r,
            );
        }
    }
    for ct in [
        "application/json; charset=latin1",
        "application/+json",
        "application/json;;;",
        "*/*",
    ] {
        let r = raw
            .send(
                Method::POST,
                &format!("{t}/bookings"),
                &[("authorization", t_auth), ("content-type", ct)],
                Some(stay(&pid, 60, 1, 1).to_string().into_bytes()),
            )
            .await;
        check(format!("POST bookings with content type {ct}"), r);
    }

    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Both services still answer normally afterwards.
    for base in [&sys.traveler, &sys.owner] {
        assert_eq!(
            raw.send(Method::GET, &format!("{base}/health"), &[], None)
                .await
                .status,
            200
        );
    }
    sys.http
        .get(&format!("{t}/bookings/{bid}"), Some(&traveler.token))
        .await
        .expect(200);
}
