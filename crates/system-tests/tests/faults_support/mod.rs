//! Helpers of the fault-injection suite (`faults_system.rs`, and
//! `kafka_broker.rs`): bursts of concurrent clients that keep an independent
//! record of what they were told, and what the services stored and committed
//! compared with it. What is not about this system (private servers, Kafka
//! probes, direct database reads, the reliability figures) is in
//! `test_support`, re-exported here.

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use chrono::{Duration as Days, Utc};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{json, Value};
use test_support::{eventually, unique, ReadMessage, RealServers};
pub use test_support::{kafka::*, private::*, process::*, RECOVERY};

use crate::support::{http_client, ProcessEnv, System, User};

/// The number of messages in every dead-letter topic of the system.
pub async fn dead_letters(env: &ProcessEnv) -> usize {
    let mut n = 0;
    for t in ["booking-requests", "booking-updates", "property-listings"] {
        n += read_all(&env.servers.kafka_brokers, &format!("{}.dlq", env.topic(t)))
            .await
            .len();
    }
    n
}

/// What a consumer group's committed offsets say about the effects stored by
/// its service, for `booking.requested` events (keyed by booking id).
#[derive(Debug, Default)]
pub struct CommitAudit {
    /// Committed past an event whose booking is not stored: lost for good.
    pub committed_not_stored: Vec<String>,
    /// Stored, but no copy of its event is before the committed offset: will
    /// be applied again after a restart (harmless only because idempotent).
    pub stored_not_committed: Vec<String>,
}

pub fn audit_commits(
    messages: &[ReadMessage],
    committed: &BTreeMap<i32, i64>,
    stored: &BTreeSet<String>,
) -> CommitAudit {
    let mut audit = CommitAudit::default();
    let mut covered = BTreeSet::new();
    for m in messages {
        let Ok(v) = serde_json::from_slice::<Value>(&m.value) else {
            continue;
        };
        if v["event_type"] != "booking.requested" {
            continue;
        }
        let id = v["data"]["booking_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let is_committed = committed.get(&m.partition).is_some_and(|c| m.offset < *c);
        if is_committed {
            covered.insert(id.clone());
            if !stored.contains(&id) {
                audit.committed_not_stored.push(id);
            }
        }
    }
    for id in stored {
        if !covered.contains(id) {
            audit.stored_not_committed.push(id.clone());
        }
    }
    audit
}

// ---- clients that keep their own record ------------------------------------------------

/// An HTTP client for bursts: no panics, every outcome is data.
#[derive(Clone)]
pub struct Client(reqwest::Client);

impl Default for Client {
    fn default() -> Self {
        Self(http_client(Duration::from_secs(30)))
    }
}

/// What a client was told.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A 2xx with its JSON body.
    Ok(u16, Value),
    /// Any other status with its body.
    Refused(u16, Value),
    /// No answer: connection refused or reset, or the request timed out.
    Unanswered(String),
}

impl Answer {
    pub fn status(&self) -> Option<u16> {
        match self {
            Answer::Ok(s, _) | Answer::Refused(s, _) => Some(*s),
            Answer::Unanswered(_) => None,
        }
    }
}

impl Client {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.0.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) => return Answer::Unanswered(e.to_string()),
        };
        let status = res.status().as_u16();
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) => return Answer::Unanswered(format!("body cut off: {e}")),
        };
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        if (200..300).contains(&status) {
            Answer::Ok(status, body)
        } else {
            Answer::Refused(status, body)
        }
    }

    /// `POST bookings_url` of `request`, under its `Idempotency-Key`.
    pub async fn post_booking(&self, bookings_url: &str, request: &BookingRequest) -> Answer {
        self.send(
            Method::POST,
            bookings_url,
            Some(&request.token),
            Some(&request.body),
            &[("idempotency-key", &request.key)],
        )
        .await
    }
}

/// One booking a traveler asks for, with the `Idempotency-Key` a careful
/// client would retry it under.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    pub traveler: usize,
    pub token: String,
    pub key: String,
    pub body: Value,
}

/// Requests for `per_traveler` stays per traveler of 2 nights each, all on
/// different dates (3 days apart, from `first_day` days ahead, interleaved
/// across travelers), so any of them may be approved.
pub fn booking_requests(
    travelers: &[User],
    property_id: &str,
    per_traveler: usize,
    first_day: i64,
) -> Vec<BookingRequest> {
    let today = Utc::now().date_naive();
    let mut out = Vec::new();
    for j in 0..per_traveler {
        for (t, traveler) in travelers.iter().enumerate() {
            let slot = (j * travelers.len() + t) as i64;
            let check_in = today + Days::days(first_day + 3 * slot);
            out.push(BookingRequest {
                traveler: t,
                token: traveler.token.clone(),
                key: unique("idem"),
                body: json!({
                    "property_id": property_id,
                    "check_in": check_in.to_string(),
                    "check_out": (check_in + Days::days(2)).to_string(),
                    "guests": 2,
                }),
            });
        }
    }
    out
}

/// Adds a booking made outside a burst to the clients' record.
pub fn record_booking(
    requests: &mut Vec<BookingRequest>,
    answers: &mut Vec<Answer>,
    traveler: usize,
    user: &User,
    booking: &Value,
) {
    requests.push(BookingRequest {
        traveler,
        token: user.token.clone(),
        key: String::new(),
        body: Value::Null,
    });
    answers.push(Answer::Ok(201, json!({ "booking": booking })));
}

/// A burst of concurrent booking requests under way.
pub struct Burst {
    /// Requests answered so far (any answer, or none).
    pub finished: Arc<AtomicUsize>,
    /// 201s so far.
    pub created: Arc<AtomicUsize>,
    handle: tokio::task::JoinHandle<Vec<Answer>>,
}

impl Burst {
    /// Sends `requests` to `traveler_url` with `concurrency` at a time.
    pub fn start(traveler_url: &str, requests: &[BookingRequest], concurrency: usize) -> Self {
        Self::paced(traveler_url, requests, concurrency, Duration::ZERO)
    }

    /// Like [`Burst::start`], sending request `i` no earlier than `i × every`
    /// after the start: a burst that lasts while something else happens.
    pub fn paced(
        traveler_url: &str,
        requests: &[BookingRequest],
        concurrency: usize,
        every: Duration,
    ) -> Self {
        let began = tokio::time::Instant::now();
        let finished = Arc::new(AtomicUsize::new(0));
        let created = Arc::new(AtomicUsize::new(0));
        let client = Client::default();
        let url = format!("{traveler_url}/api/travelers/bookings");
        let requests = requests.to_vec();
        let (f, c) = (finished.clone(), created.clone());
        let handle = tokio::spawn(async move {
            let mut answers: Vec<(usize, Answer)> =
                futures::stream::iter(requests.into_iter().enumerate())
                    .map(|(i, r)| {
                        let (client, url, f, c) =
                            (client.clone(), url.clone(), f.clone(), c.clone());
                        async move {
                            tokio::time::sleep_until(began + every * i as u32).await;
                            let a = client.post_booking(&url, &r).await;
                            if a.status() == Some(201) {
                                c.fetch_add(1, Ordering::SeqCst);
                            }
                            f.fetch_add(1, Ordering::SeqCst);
                            (i, a)
                        }
                    })
                    .buffer_unordered(concurrency)
                    .collect()
                    .await;
            answers.sort_by_key(|(i, _)| *i);
            answers.into_iter().map(|(_, a)| a).collect()
        });
        Self {
            finished,
            created,
            handle,
        }
    }

    /// Waits until at least `n` requests got a 201.
    pub async fn wait_created(&self, n: usize) {
        eventually(&format!("{n} bookings created"), RECOVERY, || async {
            (self.created.load(Ordering::SeqCst) >= n).then_some(())
        })
        .await;
    }

    pub async fn answers(self) -> Vec<Answer> {
        self.handle.await.expect("burst task")
    }
}

/// The booking id of a 201 answer.
pub fn created_id(a: &Answer) -> Option<String> {
    match a {
        Answer::Ok(201, body) => body["booking"]["id"].as_str().map(str::to_string),
        _ => None,
    }
}

/// Sends again, with the same `Idempotency-Key` and body, every request that
/// got no answer, as a careful client would; returns the new answers in place.
pub async fn retry_unanswered(
    traveler_url: &str,
    requests: &[BookingRequest],
    answers: &mut [Answer],
) -> usize {
    let client = Client::default();
    let url = format!("{traveler_url}/api/travelers/bookings");
    let mut retried = 0;
    for (r, a) in requests.iter().zip(answers.iter_mut()) {
        if matches!(a, Answer::Unanswered(_)) {
            retried += 1;
            *a = client.post_booking(&url, r).await;
        }
    }
    retried
}

// ---- checking the end state against the clients' record ----------------------------

/// An owner's bookings of one property, as owner-service lists them.
pub async fn owner_bookings(sys: &System, owner: &User, property_id: &str) -> Vec<Value> {
    let url = format!(
        "{}/api/owners/bookings?property_id={property_id}",
        sys.owner
    );
    sys.http.list_all(&url, &owner.token, "bookings").await
}

pub async fn traveler_bookings(sys: &System, traveler: &User) -> Vec<Value> {
    let url = format!("{}/api/travelers/bookings", sys.traveler);
    sys.http.list_all(&url, &traveler.token, "bookings").await
}

/// How many times each id occurs in a list of objects with an `id`
/// (or another member).
pub fn count_by(items: &[Value], member: &str) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for i in items {
        if let Some(id) = i[member].as_str() {
            *out.entry(id.to_string()).or_default() += 1;
        }
    }
    out
}

/// Waits until owner-service lists every id in `ids` for `property_id`.
pub async fn wait_owner_has_all(
    sys: &System,
    owner: &User,
    property_id: &str,
    ids: &BTreeSet<String>,
) {
    eventually(
        &format!(
            "owner-service shows all {} acknowledged bookings",
            ids.len()
        ),
        RECOVERY,
        || async {
            let listed = count_by(&owner_bookings(sys, owner, property_id).await, "id");
            ids.iter().all(|id| listed.contains_key(id)).then_some(())
        },
    )
    .await;
}

/// The verdict on a booking burst: every acknowledged booking exactly once
/// at owner-service (listed once, one `booking_requested` notification),
/// every traveler's list holding exactly one booking per logical request
/// that ended acknowledged, and nothing at owner-service the travelers
/// do not have.
#[derive(Debug, Default)]
pub struct Verdict {
    pub lost: usize,
    pub duplicated: usize,
    pub problems: Vec<String>,
}

pub async fn verify_bookings(
    sys: &System,
    owner: &User,
    property_id: &str,
    travelers: &[User],
    requests: &[BookingRequest],
    answers: &[Answer],
) -> Verdict {
    let mut v = Verdict::default();
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    let listed = count_by(&owner_bookings(sys, owner, property_id).await, "id");
    // Each notification is written just after its booking: a moment more.
    let requested = || async {
        sys.owner_notifications(owner)
            .await
            .into_iter()
            .filter(|n| n["kind"] == "booking_requested")
            .collect::<Vec<Value>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut notes = requested().await;
    while tokio::time::Instant::now() < deadline
        && !acked
            .iter()
            .filter(|id| listed.contains_key(*id))
            .all(|id| notes.iter().any(|n| n["booking_id"] == id.as_str()))
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
        notes = requested().await;
    }
    let notified = count_by(&notes, "booking_id");
    for id in &acked {
        match listed.get(id).copied().unwrap_or(0) {
            0 => {
                v.lost += 1;
                v.problems
                    .push(format!("acknowledged {id} missing at owner-service"));
            }
            1 => {}
            n => {
                v.duplicated += n - 1;
                v.problems
                    .push(format!("{id} listed {n} times at owner-service"));
            }
        }
        match notified.get(id).copied().unwrap_or(0) {
            0 => v
                .problems
                .push(format!("no booking_requested notification for {id}")),
            1 => {}
            n => {
                v.duplicated += n - 1;
                v.problems.push(format!("{n} notifications for {id}"));
            }
        }
    }
    let mut at_travelers = BTreeSet::new();
    for (t, traveler) in travelers.iter().enumerate() {
        let mine = traveler_bookings(sys, traveler).await;
        let wanted = requests
            .iter()
            .zip(answers)
            .filter(|(r, a)| r.traveler == t && created_id(a).is_some())
            .count();
        let unanswered = requests
            .iter()
            .zip(answers)
            .filter(|(r, a)| r.traveler == t && matches!(a, Answer::Unanswered(_)))
            .count();
        // Requests still unanswered may or may not have created a booking.
        if mine.len() < wanted || mine.len() > wanted + unanswered {
            v.problems.push(format!(
                "traveler {t} has {} bookings for {wanted} acknowledged requests \
                 (+{unanswered} unanswered)",
                mine.len()
            ));
            if mine.len() > wanted + unanswered {
                v.duplicated += mine.len() - wanted - unanswered;
            }
        }
        for b in &mine {
            at_travelers.insert(b["id"].as_str().unwrap().to_string());
        }
    }
    for id in &acked {
        if !at_travelers.contains(id) {
            v.lost += 1;
            v.problems
                .push(format!("acknowledged {id} missing at traveler-service"));
        }
    }
    for id in listed.keys() {
        if !at_travelers.contains(id) {
            v.problems
                .push(format!("owner-service has {id}, which no traveler has"));
        }
    }
    v
}

/// `booking.requested` copies on the topic per acknowledged booking beyond
/// the first (redeliveries the consumers must absorb), and acknowledged
/// bookings never published.
pub async fn wire_copies(env: &ProcessEnv, acked: &BTreeSet<String>) -> (usize, usize) {
    let all = read_all(&env.servers.kafka_brokers, &env.topic("booking-requests")).await;
    let keys = per_key(&all);
    let extra = acked
        .iter()
        .map(|id| keys.get(id).copied().unwrap_or(0).saturating_sub(1))
        .sum();
    let missing = acked.iter().filter(|id| !keys.contains_key(*id)).count();
    (extra, missing)
}

/// An owner, a property, and `n` travelers who see it in their catalog.
pub async fn cast(sys: &System, city: &str, n: usize) -> (User, String, Vec<User>) {
    let owner = sys.owner_signup("Olga").await;
    let property_id = sys.create_property_id(&owner, city).await;
    let mut travelers = Vec::new();
    for i in 0..n {
        travelers.push(sys.traveler_signup(&format!("T{i}")).await);
    }
    for t in &travelers {
        sys.wait_catalog(t, &property_id, 1).await;
    }
    (owner, property_id, travelers)
}

/// Both services as processes on `servers`, with [`cast`]'s owner, property
/// and `n` travelers, and [`booking_requests`] of `per_traveler` stays each
/// from 10 days ahead.
pub async fn burst_scene(
    servers: &RealServers,
    city: &str,
    n: usize,
    per_traveler: usize,
) -> (System, User, String, Vec<User>, Vec<BookingRequest>) {
    let sys = System::processes(servers).await;
    let (owner, pid, travelers) = cast(&sys, city, n).await;
    let requests = booking_requests(&travelers, &pid, per_traveler, 10);
    (sys, owner, pid, travelers, requests)
}

/// Counts of each kind of answer, for notes.
pub fn answer_summary(answers: &[Answer]) -> String {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for a in answers {
        let k = match a.status() {
            Some(s) => s.to_string(),
            None => "no answer".into(),
        };
        *by.entry(k).or_default() += 1;
    }
    by.iter()
        .map(|(k, v)| format!("{v}× {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}
