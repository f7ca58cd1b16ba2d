//! Bad input, randomized: a property-based test of the REST API of both
//! services. Every case is one request built at random — any endpoint, a
//! random or wrong method, random or mangled path ids, random query strings,
//! any kind of credential, random content types and headers, and a body that
//! is random JSON, a valid body with random fields replaced, removed or
//! added, a number no type can hold, or random bytes. Whatever comes in, the
//! answer is never a 5xx, is always JSON, and every error is an RFC 9457
//! problem document with a stable `code`.
//!
//! Runs on `System::embedded()` (no servers needed). The seed is fixed so a
//! failure reproduces; `FAULTS_FUZZ_SEED` (any text) picks another seed and
//! `FAULTS_FUZZ_CASES` another number of cases. No failure file is written.
//! The authorization matrix (every endpoint × no token, expired, forged,
//! other role, other user) is the `api` test (`tests/api/`).

mod support;

use std::{
    cell::{Cell, RefCell},
    time::{Duration, Instant},
};

use proptest::{
    prelude::*,
    test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner},
};
use reqwest::{
    header::{HeaderName, HeaderValue},
    Method,
};
use serde_json::{json, Map, Value};
use service_runtime::auth::{JwtKeys, Role};
use support::{http_client, System, User, JWT_SECRET};

// ---- what a case is ----------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Service {
    Traveler,
    Owner,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Id {
    None,
    Property,
    Booking,
}

/// Every endpoint of both services: method, service, path (with `{}` for the
/// id), which id goes there, and which body template it takes.
#[rustfmt::skip]
const ENDPOINTS: &[(&str, Service, &str, Id, Template)] = {
    use Id::*;
    use Service::*;
    use Template as B;
    &[
        ("GET",    Traveler, "/health",                           None,     B::None),
        ("GET",    Owner,    "/health/ready",                     None,     B::None),
        ("POST",   Traveler, "/api/travelers/signup",             None,     B::Signup),
        ("POST",   Traveler, "/api/travelers/login",              None,     B::Login),
        ("GET",    Traveler, "/api/travelers/me",                 None,     B::None),
        ("GET",    Traveler, "/api/travelers/properties",         None,     B::None),
        ("GET",    Traveler, "/api/travelers/properties/{}",      Property, B::None),
        ("POST",   Traveler, "/api/travelers/bookings",           None,     B::Booking),
        ("GET",    Traveler, "/api/travelers/bookings",           None,     B::None),
        ("GET",    Traveler, "/api/travelers/bookings/{}",        Booking,  B::None),
        ("PUT",    Traveler, "/api/travelers/bookings/{}/cancel", Booking,  B::Reason),
        ("GET",    Traveler, "/api/travelers/notifications",      None,     B::None),
        ("POST",   Owner,    "/api/owners/signup",                None,     B::Signup),
        ("POST",   Owner,    "/api/owners/login",                 None,     B::Login),
        ("GET",    Owner,    "/api/owners/me",                    None,     B::None),
        ("GET",    Owner,    "/api/owners/properties",            None,     B::None),
        ("POST",   Owner,    "/api/owners/properties",            None,     B::Property),
        ("GET",    Owner,    "/api/owners/properties/{}",         Property, B::None),
        ("PUT",    Owner,    "/api/owners/properties/{}",         Property, B::Property),
        ("DELETE", Owner,    "/api/owners/properties/{}",         Property, B::None),
        ("GET",    Owner,    "/api/owners/bookings",              None,     B::None),
        ("GET",    Owner,    "/api/owners/bookings/{}",           Booking,  B::None),
        ("PUT",    Owner,    "/api/owners/bookings/{}/approve",   Booking,  B::None),
        ("PUT",    Owner,    "/api/owners/bookings/{}/reject",    Booking,  B::Reason),
        ("PUT",    Owner,    "/api/owners/bookings/{}/cancel",    Booking,  B::Reason),
        ("GET",    Owner,    "/api/owners/notifications",         None,     B::None),
    ]
};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Template {
    None,
    Signup,
    Login,
    Property,
    Booking,
    Reason,
}

/// What goes where a path id belongs.
#[derive(Debug, Clone)]
enum PathId {
    /// The real id of the right kind.
    Real,
    /// A real id of the other kind (a booking id where a property id goes).
    OtherKind,
    /// Random text, percent-encoded.
    Text(String),
    /// Text put in the path as is, however invalid (`%ZZ`, `..`, `%00`).
    Raw(&'static str),
}

#[derive(Debug, Clone)]
enum Credential {
    None,
    /// A valid token of the endpoint's role.
    Right,
    /// A valid token of the other role.
    OtherRole,
    /// A token of another user of the same role.
    OtherUser,
    Expired,
    Forged,
    /// `Authorization: <random text>`.
    Garbage(String),
}

#[derive(Debug, Clone)]
enum Body {
    None,
    /// The endpoint's valid body, as a client would send it.
    Valid,
    /// Any JSON value.
    Json(Value),
    /// The endpoint's valid body with random members replaced, removed or added.
    Mutated(Vec<(usize, Option<Value>)>, Vec<(String, Value)>),
    /// The valid body with a member set to a number no type holds, as text.
    HugeNumber(usize, String),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Case {
    endpoint: usize,
    /// Another method instead of the endpoint's.
    method: Option<&'static str>,
    id: PathId,
    query: Vec<(String, String)>,
    credential: Credential,
    content_type: Option<String>,
    headers: Vec<(&'static str, Vec<u8>)>,
    body: Body,
}

// ---- strategies -----------------------------------------------------------------------

/// Text with what breaks parsers: any Unicode, controls, RTL marks, NULs,
/// emoji, long runs, injection-looking strings.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        2 => prop::collection::vec(
            prop::sample::select(vec!['a', 'Z', '0', ' ', '-', '@', '.', 'é', 'ü', '中', '🏠', '\u{0}', '\u{202e}', '\u{feff}', '"', '\\', '/', '%', '\n']),
            0..40
        )
        .prop_map(String::from_iter),
        1 => (1usize..20_000).prop_map(|n| "x".repeat(n)),
        1 => prop::sample::select(vec![
            "", " ", "null", "true", "0", "-1", "1e309", "NaN", "2030-02-30", "+262143-12-31",
            "' OR '1'='1", "{\"$gt\": \"\"}", "$where", "../../etc/passwd", "%00", "\u{0}",
            "PENDING", "accepted", "owner", "traveler", "a@b.co", "correct-horse-1",
        ])
        .prop_map(str::to_string),
    ]
}

/// Member names: the API's own and random ones.
fn member() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "name", "email", "password", "city", "country", "address", "description",
            "price_per_night_cents", "cleaning_fee_cents", "service_fee_cents", "currency",
            "max_guests", "bedrooms", "bathrooms", "amenities", "active", "property_id",
            "check_in", "check_out", "guests", "reason", "status", "id", "owner_id",
            "traveler_id", "version", "$set", "__proto__",
        ])
        .prop_map(str::to_string),
        1 => text(),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        prop::sample::select(vec![
            i64::MIN,
            -1,
            0,
            1,
            2,
            4,
            255,
            256,
            65_536,
            i32::MAX as i64,
            u32::MAX as i64,
            u32::MAX as i64 + 1,
            i64::MAX,
        ])
        .prop_map(Value::from),
        text().prop_map(Value::String),
        (-400i64..800).prop_map(|d| {
            json!((chrono::Utc::now().date_naive() + chrono::Duration::days(d)).to_string())
        }),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((member(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A number literal no Rust integer or float holds (or just barely does).
fn huge_number() -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        prop::collection::vec(0u8..10, 1..60),
        prop::option::of(-400i32..400),
    )
        .prop_map(|(neg, digits, exp)| {
            let mut s = String::from(if neg { "-" } else { "" });
            s.extend(digits.iter().map(|d| char::from(b'0' + d)));
            if let Some(e) = exp {
                s.push_str(&format!("e{e}"));
            }
            s
        })
}

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        text().prop_map(String::into_bytes),
    ]
}

fn endpoint() -> impl Strategy<Value = usize> {
    prop_oneof![
        // Signup and login hash a password (slow on purpose): fewer of those.
        1 => prop::sample::select(vec![2usize, 3, 12, 13]),
        12 => (0..ENDPOINTS.len()).prop_filter("not a hashing endpoint", |i| ![2, 3, 12, 13].contains(i)),
    ]
}

fn method() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        6 => Just(None),
        1 => prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]).prop_map(Some),
    ]
}

fn path_id() -> impl Strategy<Value = PathId> {
    prop_oneof![
        4 => Just(PathId::Real),
        1 => Just(PathId::OtherKind),
        2 => text().prop_map(PathId::Text),
        1 => prop::sample::select(vec![
            "%ZZ", "%FF%FE", "%00", "..", "%2e%2e", "%2F", "99999999999999999999999999", "-1",
            "null", "%F0%9F%8F%A0", "a;b=c", "%20",
        ])
        .prop_map(PathId::Raw),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(
        (
            prop_oneof![
                3 => prop::sample::select(vec!["status", "property_id", "city", "guests", "status[]", "limit", "cursor"]).prop_map(str::to_string),
                1 => text(),
            ],
            prop_oneof![
                3 => text(),
                1 => huge_number(),
                1 => prop::sample::select(vec!["PENDING", "accepted", "%ZZ", "%FF", "-1", "1e40", "4"]).prop_map(str::to_string),
            ],
        ),
        0..4,
    )
}

fn credential() -> impl Strategy<Value = Credential> {
    prop_oneof![
        6 => Just(Credential::Right),
        1 => Just(Credential::None),
        1 => Just(Credential::OtherRole),
        1 => Just(Credential::OtherUser),
        1 => Just(Credential::Expired),
        1 => Just(Credential::Forged),
        1 => text().prop_map(Credential::Garbage),
    ]
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        6 => Just(Some("application/json".to_string())),
        1 => Just(None),
        2 => prop::sample::select(vec![
            "application/problem+json", "text/plain", "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x", "application/json; charset=utf-16",
            "application/json; charset=latin1", "application/+json", "*/*", "application/xml",
        ])
        .prop_map(|s| Some(s.to_string())),
        1 => text().prop_map(Some),
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, Vec<u8>)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "idempotency-key",
                "accept",
                "x-request-id",
                "accept-encoding",
                "content-encoding",
                "x-forwarded-for",
                "origin",
            ]),
            header_bytes(),
        ),
        0..3,
    )
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::None),
        3 => Just(Body::Valid),
        3 => json_value().prop_map(Body::Json),
        6 => (
            prop::collection::vec((0usize..16, prop::option::of(json_value())), 1..4),
            prop::collection::vec((member(), json_value()), 0..3),
        )
            .prop_map(|(changes, extra)| Body::Mutated(changes, extra)),
        1 => (0usize..16, huge_number()).prop_map(|(m, n)| Body::HugeNumber(m, n)),
        1 => prop::collection::vec(any::<u8>(), 0..2000).prop_map(Body::Bytes),
    ]
}

prop_compose! {
    /// One case: each part of the request drawn by the strategy of its name.
    fn case()(
        endpoint in endpoint(),
        method in method(),
        id in path_id(),
        query in query(),
        credential in credential(),
        content_type in content_type(),
        headers in headers(),
        body in body(),
    ) -> Case {
        Case { endpoint, method, id, query, credential, content_type, headers, body }
    }
}

// ---- turning a case into a request --------------------------------------------------------

/// What the system under test holds, to build requests from.
struct World {
    sys: System,
    owner: User,
    other_owner: User,
    traveler: User,
    other_traveler: User,
    property_id: String,
    booking_id: String,
    client: reqwest::Client,
}

fn template(t: Template, w: &World) -> Value {
    let day = |d: i64| (chrono::Utc::now().date_naive() + chrono::Duration::days(d)).to_string();
    match t {
        Template::None => json!({}),
        Template::Signup => {
            json!({"name": "Fuzz", "email": format!("{}@example.com", test_support::unique("fuzz")), "password": "correct-horse-1"})
        }
        Template::Login => json!({"email": w.traveler.email, "password": "correct-horse-1"}),
        Template::Property => json!({
            "name": "Flat", "city": "Lisbon", "country": "PT", "address": "Rua 1",
            "description": "nice", "price_per_night_cents": 10000, "cleaning_fee_cents": 2000,
            "service_fee_cents": 500, "currency": "EUR", "max_guests": 4, "bedrooms": 2,
            "bathrooms": 1, "amenities": ["wifi"], "active": true,
        }),
        Template::Booking => {
            json!({"property_id": w.property_id, "check_in": day(30), "check_out": day(32), "guests": 2})
        }
        Template::Reason => json!({"reason": "fuzz"}),
    }
}

/// Percent-encodes every byte that is not unreserved.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The request as sent, for the failure message.
struct Built {
    method: Method,
    url: String,
    request: reqwest::RequestBuilder,
    summary: String,
}

fn build(c: &Case, w: &World) -> Built {
    let (method, service, path, id_kind, tpl) = ENDPOINTS[c.endpoint];
    let method = Method::from_bytes(c.method.unwrap_or(method).as_bytes()).unwrap();
    let base = match service {
        Service::Traveler => &w.sys.traveler,
        Service::Owner => &w.sys.owner,
    };
    let id = match (&c.id, id_kind) {
        (PathId::Real, Id::Booking) | (PathId::OtherKind, Id::Property) => w.booking_id.clone(),
        (PathId::Real, _) | (PathId::OtherKind, _) => w.property_id.clone(),
        (PathId::Text(t), _) => encode(t),
        (PathId::Raw(r), _) => r.to_string(),
    };
    let mut url = format!("{base}{}", path.replace("{}", &id));
    if !c.query.is_empty() {
        let q: Vec<String> = c
            .query
            .iter()
            .map(|(k, v)| {
                // Known malformed escapes go in raw, the rest encoded.
                let v = if v.starts_with('%') {
                    v.clone()
                } else {
                    encode(v)
                };
                format!("{}={v}", encode(k))
            })
            .collect();
        url = format!("{url}?{}", q.join("&"));
    }
    let mut request = w.client.request(method.clone(), &url);
    let role = match service {
        Service::Traveler => Role::Traveler,
        Service::Owner => Role::Owner,
    };
    let (right, other_user, other_role) = match service {
        Service::Traveler => (&w.traveler, &w.other_traveler, &w.owner),
        Service::Owner => (&w.owner, &w.other_owner, &w.traveler),
    };
    let keys = JwtKeys::new(JWT_SECRET.as_bytes());
    let token = match &c.credential {
        Credential::None => None,
        Credential::Right => Some(format!("Bearer {}", right.token)),
        Credential::OtherRole => Some(format!("Bearer {}", other_role.token)),
        Credential::OtherUser => Some(format!("Bearer {}", other_user.token)),
        Credential::Expired => Some(format!(
            "Bearer {}",
            keys.issue_with_expiry(&right.id, role, chrono::Utc::now().timestamp() - 3600)
        )),
        Credential::Forged => Some(format!(
            "Bearer {}",
            JwtKeys::new(b"not-the-secret-0123456789abcdef-xyz").issue(&right.id, role)
        )),
        Credential::Garbage(g) => Some(g.clone()),
    };
    if let Some(t) = &token {
        if let Ok(v) = HeaderValue::from_bytes(t.as_bytes()) {
            request = request.header("authorization", v);
        }
    }
    if let Some(ct) = &c.content_type {
        if let Ok(v) = HeaderValue::from_bytes(ct.as_bytes()) {
            request = request.header("content-type", v);
        }
    }
    for (name, value) in &c.headers {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            request = request.header(HeaderName::from_static(name), v);
        }
    }
    let valid = template(tpl, w);
    let body: Option<Vec<u8>> = match &c.body {
        Body::None => None,
        Body::Valid => Some(valid.to_string().into_bytes()),
        Body::Json(v) => Some(v.to_string().into_bytes()),
        Body::Mutated(changes, extra) => {
            let mut v = valid.clone();
            let keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            let obj = v.as_object_mut().unwrap();
            for (k, change) in changes {
                if keys.is_empty() {
                    break;
                }
                let key = &keys[k % keys.len()];
                match change {
                    Some(value) => {
                        obj.insert(key.clone(), value.clone());
                    }
                    None => {
                        obj.remove(key);
                    }
                }
            }
            for (k, value) in extra {
                obj.insert(k.clone(), value.clone());
            }
            Some(v.to_string().into_bytes())
        }
        Body::HugeNumber(k, n) => {
            let mut v = valid.clone();
            let obj = v.as_object_mut().unwrap();
            let keys: Vec<String> = obj.keys().cloned().collect();
            let key = if keys.is_empty() {
                "guests".to_string()
            } else {
                keys[k % keys.len()].clone()
            };
            obj.insert(key, json!("@@NUMBER@@"));
            Some(v.to_string().replace("\"@@NUMBER@@\"", n).into_bytes())
        }
        Body::Bytes(b) => Some(b.clone()),
    };
    let shown = body
        .as_ref()
        .map(|b| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned())
        .unwrap_or_default();
    if let Some(b) = body {
        request = request.body(b);
    }
    Built {
        summary: format!(
            "{method} {} auth={:?} content-type={:?} headers={:?} body={shown}",
            url.chars().take(300).collect::<String>(),
            c.credential,
            c.content_type,
            c.headers
                .iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(v).into_owned()))
                .collect::<Vec<_>>()
        ),
        method,
        url,
        request,
    }
}

/// The verdict on one answer: `Err` says what is wrong with it.
async fn judge(built: Built) -> Result<u16, String> {
    let res = built
        .request
        .send()
        .await
        .map_err(|e| format!("no answer to {} {}: {e}", built.method, built.url))?;
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = res
        .bytes()
        .await
        .map_err(|e| format!("body cut off: {e}"))?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(400)]).into_owned();
    let fail = |why: &str| Err(format!("{why}: {status} {content_type:?} {text}"));
    if status >= 500 {
        return fail("server error");
    }
    if status == 204 && bytes.is_empty() {
        return Ok(status);
    }
    let Ok(body) = serde_json::from_slice::<Value>(&bytes) else {
        return fail("not JSON");
    };
    if status >= 400 {
        if !content_type.starts_with("application/problem+json") {
            return fail("error without the problem content type");
        }
        if body["status"] != status {
            return fail("problem status member differs");
        }
        for m in ["type", "title", "detail", "code"] {
            if body[m].as_str().is_none_or(str::is_empty) {
                return fail(&format!("problem lacks {m}"));
            }
        }
    } else if !content_type.starts_with("application/json") {
        return fail("success without a JSON content type");
    }
    Ok(status)
}

#[test]
fn random_and_malformed_requests_never_cause_a_server_error() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let world = rt.block_on(async {
        let sys = System::embedded().await;
        let owner = sys.owner_signup("Olga").await;
        let other_owner = sys.owner_signup("Oscar").await;
        let traveler = sys.traveler_signup("Tom").await;
        let other_traveler = sys.traveler_signup("Tina").await;
        let property_id = sys.create_property_id(&owner, "Lisbon").await;
        sys.wait_catalog(&traveler, &property_id, 1).await;
        let booking_id = sys.book_seen(&owner, &traveler, &property_id, 10, 2).await;
        World {
            sys,
            owner,
            other_owner,
            traveler,
            other_traveler,
            property_id,
            booking_id,
            client: http_client(Duration::from_secs(30)),
        }
    });

    let cases: u32 = std::env::var("FAULTS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let seed_text = std::env::var("FAULTS_FUZZ_SEED").unwrap_or_else(|_| "booking".into());
    let mut seed = [0u8; 32];
    for (i, b) in seed_text.bytes().enumerate() {
        seed[i % 32] = seed[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 300,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let started = Instant::now();
    let statuses = RefCell::new(std::collections::BTreeMap::<u16, usize>::new());
    let sent = Cell::new(0usize);
    let result = runner.run(&case(), |c| {
        let built = build(&c, &world);
        let summary = built.summary.clone();
        sent.set(sent.get() + 1);
        match rt.block_on(judge(built)) {
            Ok(status) => {
                *statuses.borrow_mut().entry(status).or_default() += 1;
                Ok(())
            }
            Err(why) => Err(TestCaseError::fail(format!("{why}\n  request: {summary}"))),
        }
    });
    let elapsed = started.elapsed();
    let (sent, statuses) = (sent.get(), statuses.into_inner());
    println!(
        "{sent} random requests (seed {seed_text:?}) in {:.1} s; statuses: {statuses:?}",
        elapsed.as_secs_f64()
    );

    // Both services still answer normally.
    let alive = rt.block_on(async {
        let w = &world;
        let mut ok = true;
        for base in [&w.sys.traveler, &w.sys.owner] {
            ok &= w.sys.http.get(&format!("{base}/health"), None).await.status == 200;
        }
        let again = w.sys.try_book(&w.traveler, &w.property_id, 300, 1).await;
        ok && (again.status == 201 || again.status == 404)
    });

    test_support::figures::Figures {
        id: "bad_input",
        order: 9,
        fault: "Random and malformed requests on every endpoint",
        injection: format!(
            "proptest, {cases} cases (seed {seed_text:?}): random methods, ids, query strings, \
             credentials, content types, headers and bodies on the {} endpoints of both \
             services, embedded",
            ENDPOINTS.len()
        ),
        in_flight: sent,
        acknowledged: statuses.values().sum(),
        lost: 0,
        duplicated: 0,
        notes: format!(
            "{}; answers by status: {}",
            if result.is_err() {
                "a case broke the contract (see the test output)"
            } else {
                "no 5xx, every error a problem document"
            },
            statuses
                .iter()
                .map(|(s, n)| format!("{n}× {s}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
    .record();

    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, case)) => {
            panic!("a request broke the contract: {why}\nminimal case: {case:#?}")
        }
        Err(TestError::Abort(why)) => panic!("aborted: {why}"),
    }
    assert!(alive, "the services still answer after the fuzzing");
}
