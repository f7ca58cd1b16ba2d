//! The harness every system test uses: a running system (embedded in memory,
//! or both binaries as processes on the real servers), an HTTP client that
//! returns status and JSON, and helpers for the steps of the booking flow.

#![allow(dead_code)]

pub mod sse;

use std::{
    path::PathBuf,
    process::{Child, Command},
    sync::Arc,
    time::Duration,
};

use chrono::{Duration as Days, NaiveDate, Utc};
use owner_service::OwnerService;
use reqwest::{header::HeaderMap, Method, StatusCode};
use serde_json::{json, Value};
use service_runtime::{
    assembly::{self, ServiceSettings},
    identity::IdentityConfig,
    messaging::memory::InMemoryBus,
};
use test_support::{eventually, unique, RealServers};
use tokio_util::sync::CancellationToken;
use traveler_service::TravelerService;

/// How long asynchronous effects (events crossing services) may take in tests.
pub const PROPAGATION: Duration = Duration::from_secs(30);

/// A JSON response.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        self.body
    }

    /// Asserts an RFC 9457 problem document with this status and code.
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.body
        );
        assert!(
            self.content_type.starts_with("application/problem+json"),
            "content type {:?}",
            self.content_type
        );
        assert_eq!(self.body["status"], status, "{}", self.body);
        assert_eq!(self.body["code"], code, "{}", self.body);
        for member in ["type", "title", "detail"] {
            assert!(
                self.body[member].is_string(),
                "problem lacks {member}: {}",
                self.body
            );
        }
        self.body
    }
}

/// A plain HTTP client whose every request gives up after `timeout`, so a
/// server that stops answering fails the test instead of hanging it.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("http client")
}

/// The HTTP client of the tests.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
}

impl Default for Http {
    fn default() -> Self {
        Self {
            client: http_client(Duration::from_secs(30)),
        }
    }
}

impl Http {
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let status = res.status();
        let content_type = content_type_of(res.headers());
        let bytes = res.bytes().await.expect("response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!(
                    "{url} answered {status} with non-JSON: {}",
                    String::from_utf8_lossy(&bytes)
                )
            })
        };
        Reply {
            status,
            content_type,
            body,
        }
    }

    /// `GET {base}/metrics`: the status, content type and text exposition.
    pub async fn scrape(&self, base: &str) -> (StatusCode, String, String) {
        let url = format!("{base}/metrics");
        let res = self
            .client
            .get(&url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {url} failed: {e}"));
        let content_type = content_type_of(res.headers());
        (
            res.status(),
            content_type,
            res.text().await.expect("metrics body"),
        )
    }

    pub async fn get(&self, url: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, url, token, None, &[]).await
    }

    pub async fn post(&self, url: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, url, token, Some(body), &[]).await
    }

    pub async fn put(&self, url: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        self.send(Method::PUT, url, token, body, &[]).await
    }

    pub async fn delete(&self, url: &str, token: Option<&str>) -> Reply {
        self.send(Method::DELETE, url, token, None, &[]).await
    }

    /// `POST {traveler_base}/api/travelers/bookings` with `token`: a stay of
    /// two guests at property `pid` (the answer as it came).
    pub async fn book_stay(
        &self,
        traveler_base: &str,
        token: &str,
        pid: &str,
        check_in: NaiveDate,
        check_out: NaiveDate,
    ) -> Reply {
        self.post(
            &format!("{traveler_base}/api/travelers/bookings"),
            Some(token),
            json!({"property_id": pid, "check_in": check_in.to_string(),
                   "check_out": check_out.to_string(), "guests": 2}),
        )
        .await
    }

    /// Every item of a paged list (`url` may carry filters), read 200 at a
    /// time by following `next_cursor`: the `member` arrays of all pages.
    pub async fn list_all(&self, url: &str, token: &str, member: &str) -> Vec<Value> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_url = match &cursor {
                None => format!("{url}{separator}limit=200"),
                Some(c) => format!("{url}{separator}limit=200&cursor={c}"),
            };
            let page = self.get(&page_url, Some(token)).await.expect(200);
            items.extend(
                page[member]
                    .as_array()
                    .unwrap_or_else(|| panic!("{url}: no {member} list in {page}"))
                    .iter()
                    .cloned(),
            );
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => {
                    assert!(page["next_cursor"].is_null(), "{url}: {page}");
                    return items;
                }
            }
        }
    }
}

/// A signed-up user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
    pub email: String,
}

/// A running system: where each service answers.
pub struct System {
    pub traveler: String,
    pub owner: String,
    pub http: Http,
    /// The in-process bus, when embedded.
    pub bus: Option<Arc<InMemoryBus>>,
    stop: Option<CancellationToken>,
    children: Vec<Child>,
    /// How the processes were started, when they are processes.
    pub env: Option<ProcessEnv>,
}

impl Drop for System {
    fn drop(&mut self) {
        if let Some(stop) = &self.stop {
            stop.cancel();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub use test_support::process::free_port;

/// The consumer-group session timeout the services run with here: how long
/// the broker keeps a member that stopped heart-beating (e.g. SIGKILLed).
pub const KAFKA_SESSION_TIMEOUT: Duration = Duration::from_secs(6);

pub const JWT_SECRET: &str = "system-tests-secret-0123456789abcdef";

impl System {
    /// Both services in this process on one in-memory bus, on ports chosen
    /// by the OS, with the production limits on logins and sign-ups.
    pub async fn embedded() -> Self {
        Self::embedded_with(IdentityConfig::default()).await
    }

    /// [`System::embedded`] with other limits or trusted proxies.
    pub async fn embedded_with(identity: IdentityConfig) -> Self {
        let bus = Arc::new(InMemoryBus::new());
        let grace = Duration::from_secs(5);
        let settings = ServiceSettings {
            identity,
            ..ServiceSettings::with_default_topics(JWT_SECRET, grace)
        };
        let traveler = assembly::in_memory::<TravelerService>(settings.clone(), bus.clone()).await;
        let owner = assembly::in_memory::<OwnerService>(settings, bus.clone()).await;
        let t = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let o = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (t_addr, o_addr) = (t.local_addr().unwrap(), o.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(traveler.run(t, stop.clone()));
        tokio::spawn(owner.run(o, stop.clone()));
        Self {
            traveler: format!("http://{t_addr}"),
            owner: format!("http://{o_addr}"),
            http: Http::default(),
            bus: Some(bus),
            stop: Some(stop),
            children: Vec::new(),
            env: None,
        }
    }

    /// Both binaries as separate processes on the real servers, with a fresh
    /// database pair and fresh topic names and consumer groups for this test.
    pub async fn processes(servers: &RealServers) -> Self {
        Self::processes_with(servers, &[]).await
    }

    /// [`System::processes`] on the real servers, or `None` (the test then
    /// passes without running, as [`test_support::real_servers`] says) when
    /// there are none: how the process tests that need nothing more start.
    pub async fn processes_for(test: &str) -> Option<Self> {
        let servers = test_support::real_servers(test)?;
        Some(Self::processes(&servers).await)
    }

    /// [`System::processes`] with settings that override the defaults in
    /// every process, replicas and restarts included.
    pub async fn processes_with(servers: &RealServers, settings: &[(&str, &str)]) -> Self {
        let run = unique("run").replace('-', "_");
        Self::restart(ProcessEnv::for_run(servers, &run, settings)).await
    }

    /// Sends SIGTERM to every service process and returns their exit statuses.
    pub fn terminate(&mut self) -> Vec<std::process::ExitStatus> {
        for child in &self.children {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill -TERM failed");
        }
        self.children
            .drain(..)
            .map(|mut child| child.wait().expect("wait for service process"))
            .collect()
    }

    /// Starts both binaries again with the same databases, topics and groups
    /// (after [`System::terminate`]).
    pub async fn restart(env: ProcessEnv) -> Self {
        let mut system = Self {
            traveler: String::new(),
            owner: String::new(),
            http: Http::default(),
            bus: None,
            stop: None,
            children: Vec::new(),
            env: None,
        };
        let (child, url) = env.spawn("traveler-service", free_port());
        system.children.push(child);
        system.traveler = url;
        let (child, url) = env.spawn("owner-service", free_port());
        system.children.push(child);
        system.owner = url;
        system.env = Some(env);
        system.wait_ready().await;
        system
    }

    /// Starts another owner-service process on the same database, topics and
    /// consumer group (a second replica) and returns its base URL once ready.
    pub async fn add_owner_replica(&mut self) -> String {
        self.add_replica("owner-service").await
    }

    /// Starts another traveler-service process, like [`System::add_owner_replica`].
    pub async fn add_traveler_replica(&mut self) -> String {
        self.add_replica("traveler-service").await
    }

    async fn add_replica(&mut self, binary: &str) -> String {
        let env = self
            .env
            .as_ref()
            .expect("only process systems have replicas");
        let (child, url) = env.spawn(binary, free_port());
        self.children.push(child);
        wait_until_ready(&self.http, &url).await;
        url
    }

    /// Stops an embedded system the way SIGTERM stops a binary.
    pub fn stop_embedded(&self) {
        self.stop
            .as_ref()
            .expect("only an embedded system is stopped this way")
            .cancel();
    }

    /// Waits until both services report ready.
    pub async fn wait_ready(&self) {
        for base in [&self.traveler, &self.owner] {
            wait_until_ready(&self.http, base).await;
        }
    }

    /// Each service's API root with the role of its users:
    /// `{traveler}/api/travelers` and `{owner}/api/owners`.
    pub fn apis(&self) -> [(&'static str, String); 2] {
        [
            ("traveler", format!("{}/api/travelers", self.traveler)),
            ("owner", format!("{}/api/owners", self.owner)),
        ]
    }

    // ---- requests as a signed-in user ----------------------------------------

    /// `m {traveler}/api/travelers/{path}` with the traveler's token.
    pub async fn as_traveler(&self, m: Method, t: &User, path: &str, b: Option<Value>) -> Reply {
        let url = format!("{}/api/travelers/{path}", self.traveler);
        self.http.send(m, &url, Some(&t.token), b, &[]).await
    }

    /// `m {owner}/api/owners/{path}` with the owner's token.
    pub async fn as_owner(&self, m: Method, o: &User, path: &str, b: Option<Value>) -> Reply {
        let url = format!("{}/api/owners/{path}", self.owner);
        self.http.send(m, &url, Some(&o.token), b, &[]).await
    }

    /// Changes the owner's property `pid` (`PUT /api/owners/properties/{pid}`).
    pub async fn update_property(&self, owner: &User, pid: &str, changes: Value) -> Reply {
        let path = format!("properties/{pid}");
        self.owner_put(owner, &path, Some(changes)).await
    }

    pub async fn traveler_get(&self, traveler: &User, path: &str) -> Reply {
        self.as_traveler(Method::GET, traveler, path, None).await
    }

    pub async fn traveler_put(&self, traveler: &User, path: &str, body: Option<Value>) -> Reply {
        self.as_traveler(Method::PUT, traveler, path, body).await
    }

    pub async fn owner_get(&self, owner: &User, path: &str) -> Reply {
        self.as_owner(Method::GET, owner, path, None).await
    }

    pub async fn owner_put(&self, owner: &User, path: &str, body: Option<Value>) -> Reply {
        self.as_owner(Method::PUT, owner, path, body).await
    }

    pub async fn owner_delete(&self, owner: &User, path: &str) -> Reply {
        self.as_owner(Method::DELETE, owner, path, None).await
    }

    // ---- steps of the flow -------------------------------------------------

    async fn signup(&self, base: &str, prefix: &str, name: &str) -> User {
        let email = format!("{}@example.com", unique(name));
        let body = self
            .http
            .post(
                &format!("{base}/api/{prefix}/signup"),
                None,
                json!({"name": name, "email": email, "password": "correct-horse-1"}),
            )
            .await
            .expect(201);
        User {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            token: body["token"].as_str().unwrap().to_string(),
            email,
        }
    }

    pub async fn owner_signup(&self, name: &str) -> User {
        self.signup(&self.owner, "owners", name).await
    }

    pub async fn traveler_signup(&self, name: &str) -> User {
        self.signup(&self.traveler, "travelers", name).await
    }

    /// Lists a property (nightly 100.00, cleaning 20.00, service 5.00, 4 guests).
    pub async fn create_property(&self, owner: &User, city: &str) -> Value {
        self.http
            .post(
                &format!("{}/api/owners/properties", self.owner),
                Some(&owner.token),
                json!({
                    "name": format!("Flat in {city}"), "city": city, "country": "PT",
                    "price_per_night_cents": 10000, "cleaning_fee_cents": 2000,
                    "service_fee_cents": 500, "max_guests": 4,
                }),
            )
            .await
            .expect(201)["property"]
            .clone()
    }

    /// [`System::create_property`], returning only the new property's id.
    pub async fn create_property_id(&self, owner: &User, city: &str) -> String {
        id_of(&self.create_property(owner, city).await)
    }

    /// An owner ("Olga"), a traveler ("Tom") and a property of the owner in
    /// `city` that the traveler's catalog already shows: the start of most
    /// booking scenarios. Returns (owner, traveler, property id).
    pub async fn listed_property(&self, city: &str) -> (User, User, String) {
        let owner = self.owner_signup("Olga").await;
        let traveler = self.traveler_signup("Tom").await;
        let pid = self.create_property_id(&owner, city).await;
        self.wait_catalog(&traveler, &pid, 1).await;
        (owner, traveler, pid)
    }

    /// Waits until the traveler's catalog shows `property_id` with `version`.
    pub async fn wait_catalog(&self, traveler: &User, property_id: &str, version: u64) -> Value {
        let url = format!("{}/api/travelers/properties/{property_id}", self.traveler);
        self.poll(
            &format!("catalog has {property_id} v{version}"),
            &url,
            traveler,
            |r| {
                (r.status == 200 && r.body["property"]["version"].as_u64() >= Some(version))
                    .then(|| r.body["property"].clone())
            },
        )
        .await
    }

    /// GETs `url` as `user` until `pick` takes something from the answer
    /// (within [`PROPAGATION`]): the one polling loop of the waiters below.
    async fn poll(
        &self,
        what: &str,
        url: &str,
        user: &User,
        pick: impl Fn(&Reply) -> Option<Value>,
    ) -> Value {
        eventually(what, PROPAGATION, || async {
            pick(&self.http.get(url, Some(&user.token)).await)
        })
        .await
    }

    /// Books `nights` nights starting `days_ahead` days from today.
    pub async fn book(&self, traveler: &User, pid: &str, from: i64, nights: i64) -> Value {
        let reply = self.try_book(traveler, pid, from, nights).await;
        reply.expect(201)["booking"].clone()
    }

    /// [`System::book`], returning only the new booking's id.
    pub async fn book_id(&self, traveler: &User, pid: &str, from: i64, nights: i64) -> String {
        id_of(&self.book(traveler, pid, from, nights).await)
    }

    /// Books (like [`System::book_id`]) and waits until the owner sees the
    /// booking and its notification ([`System::wait_owner_sees`]).
    pub async fn book_seen(&self, o: &User, t: &User, pid: &str, from: i64, n: i64) -> String {
        let id = self.book_id(t, pid, from, n).await;
        self.wait_owner_sees(o, &id).await;
        id
    }

    /// [`System::book`] without the status check: the answer as it came.
    pub async fn try_book(&self, traveler: &User, pid: &str, from: i64, nights: i64) -> Reply {
        let (check_in, check_out) = stay_dates(from, nights);
        self.http
            .book_stay(&self.traveler, &traveler.token, pid, check_in, check_out)
            .await
    }

    /// Waits until owner-service shows the booking to its owner, and its
    /// `booking_requested` notification (written just after the booking).
    pub async fn wait_owner_sees(&self, owner: &User, booking_id: &str) -> Value {
        let url = format!("{}/api/owners/bookings/{booking_id}", self.owner);
        let booking = self
            .poll(&format!("owner sees {booking_id}"), &url, owner, |r| {
                (r.status == 200).then(|| r.body["booking"].clone())
            })
            .await;
        eventually(
            &format!("owner is told of {booking_id}"),
            PROPAGATION,
            || async {
                self.owner_notifications(owner)
                    .await
                    .iter()
                    .any(|n| n["booking_id"] == booking_id && n["kind"] == "booking_requested")
                    .then_some(())
            },
        )
        .await;
        booking
    }

    /// Waits until owner-service shows the booking to its owner in `status`.
    pub async fn wait_owner_status(&self, owner: &User, booking_id: &str, status: &str) -> Value {
        let url = format!("{}/api/owners/bookings/{booking_id}", self.owner);
        self.poll(
            &format!("owner sees {booking_id} {status}"),
            &url,
            owner,
            |r| {
                (r.status == 200 && r.body["booking"]["status"] == status)
                    .then(|| r.body["booking"].clone())
            },
        )
        .await
    }

    /// An owner decision: `approve`, `reject` or `cancel`.
    pub async fn decide(&self, owner: &User, id: &str, action: &str, body: Option<Value>) -> Reply {
        self.owner_put(owner, &format!("bookings/{id}/{action}"), body)
            .await
    }

    /// Waits until the traveler sees the booking in `status` and, for a
    /// decision, the notification about it.
    pub async fn wait_traveler_status(
        &self,
        traveler: &User,
        booking_id: &str,
        status: &str,
    ) -> Value {
        let url = format!("{}/api/travelers/bookings/{booking_id}", self.traveler);
        let what = format!("traveler sees {booking_id} {status}");
        let booking = self
            .poll(&what, &url, traveler, |r| {
                (r.body["booking"]["status"] == status).then(|| r.body["booking"].clone())
            })
            .await;
        // A decision's notification is written just after the status.
        if status != "PENDING" {
            eventually(
                &format!("traveler is told of {booking_id} {status}"),
                PROPAGATION,
                || async {
                    self.traveler_notifications(traveler)
                        .await
                        .iter()
                        .any(|n| n["booking_id"] == booking_id && n["status"] == status)
                        .then_some(())
                },
            )
            .await;
        }
        booking
    }

    /// All the traveler's notifications, newest first (every page).
    pub async fn traveler_notifications(&self, traveler: &User) -> Vec<Value> {
        let url = format!("{}/api/travelers/notifications", self.traveler);
        self.http
            .list_all(&url, &traveler.token, "notifications")
            .await
    }

    /// All the owner's notifications, newest first (every page).
    pub async fn owner_notifications(&self, owner: &User) -> Vec<Value> {
        let url = format!("{}/api/owners/notifications", self.owner);
        self.http
            .list_all(&url, &owner.token, "notifications")
            .await
    }
}

/// The check-in `from` days from today (UTC) and the check-out `nights` later.
pub fn stay_dates(from: i64, nights: i64) -> (NaiveDate, NaiveDate) {
    let check_in = Utc::now().date_naive() + Days::days(from);
    (check_in, check_in + Days::days(nights))
}

/// The `Content-Type` of a response as text (empty when it has none).
pub fn content_type_of(headers: &HeaderMap) -> String {
    let value = headers.get("content-type").and_then(|v| v.to_str().ok());
    value.unwrap_or("").to_string()
}

/// The `id` member of a JSON object, as a string.
pub fn id_of(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

/// Waits until `base/health/ready` answers 200 (connection errors while the
/// process starts count as "not yet").
pub async fn wait_until_ready(http: &Http, base: &str) {
    let url = format!("{base}/health/ready");
    eventually(&format!("{url} ready"), Duration::from_secs(60), || {
        let (client, url) = (http.client.clone(), url.clone());
        async move {
            let ok = client
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            ok.then_some(())
        }
    })
    .await;
}

/// Environment for the service binaries in one test.
pub struct ProcessEnv {
    pub servers: RealServers,
    pub traveler_db: String,
    pub owner_db: String,
    pub topic_prefix: String,
    /// Settings every process of this environment gets beside the defaults
    /// (a test that provokes a path with a shorter timeout, say).
    pub extra_env: Vec<(String, String)>,
}

/// Where `cargo build` put the binaries (`BOOKING_BIN_DIR` overrides).
pub fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("BOOKING_BIN_DIR") {
        return dir.into();
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../target"));
    target.join("debug")
}

impl ProcessEnv {
    /// The databases `{run}_traveler` and `{run}_owner`, topics and groups
    /// prefixed with `run`, and `settings` for every process.
    pub fn for_run(servers: &RealServers, run: &str, settings: &[(&str, &str)]) -> Self {
        ProcessEnv {
            servers: servers.clone(),
            traveler_db: format!("{run}_traveler"),
            owner_db: format!("{run}_owner"),
            topic_prefix: run.to_string(),
            extra_env: settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    pub fn topic(&self, name: &str) -> String {
        format!("{}.{name}", self.topic_prefix)
    }

    /// Starts `binary` on `port`; returns the child and its base URL.
    pub fn spawn(&self, binary: &str, port: u16) -> (Child, String) {
        self.spawn_with(binary, port, &[])
    }
}

// ---- for the fault-injection suite (tests/faults_*.rs) ----------------------

impl System {
    /// A system of service processes the test started itself (for example
    /// each service on a different server, with [`ProcessEnv::spawn`]), in
    /// the order traveler-service, owner-service, then any replicas. Waits
    /// until both services report ready.
    pub async fn from_processes(
        traveler: String,
        owner: String,
        children: Vec<Child>,
        env: Option<ProcessEnv>,
    ) -> Self {
        let system = Self {
            traveler,
            owner,
            http: Http::default(),
            bus: None,
            stop: None,
            children,
            env,
        };
        system.wait_ready().await;
        system
    }

    /// Takes the service processes out of the system (to kill or signal one);
    /// the caller owns them from then on. Same order as they were started.
    pub fn take_children(&mut self) -> Vec<Child> {
        std::mem::take(&mut self.children)
    }

    /// Hands a process back to the system (it is killed when the system drops).
    pub fn adopt(&mut self, child: Child) {
        self.children.push(child);
    }
}

impl ProcessEnv {
    /// A copy of this environment on other servers (same databases, topics
    /// and groups), e.g. one service on a private database server.
    pub fn on_servers(&self, servers: RealServers) -> ProcessEnv {
        ProcessEnv {
            servers,
            traveler_db: self.traveler_db.clone(),
            owner_db: self.owner_db.clone(),
            topic_prefix: self.topic_prefix.clone(),
            extra_env: self.extra_env.clone(),
        }
    }

    /// Like [`ProcessEnv::spawn`], with extra environment variables that
    /// override the defaults (e.g. another `KAFKA_GROUP_ID`).
    pub fn spawn_with(&self, binary: &str, port: u16, extra: &[(&str, &str)]) -> (Child, String) {
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
            path.display()
        );
        let db = if binary == "owner-service" {
            &self.owner_db
        } else {
            &self.traveler_db
        };
        let log = std::fs::File::create(self.log_path(binary, port)).expect("log file");
        let mut command = Command::new(&path);
        command
            .env("PORT", port.to_string())
            .env("MONGODB_URI", &self.servers.mongodb_uri)
            .env("MONGODB_DATABASE", db)
            .env("KAFKA_BROKERS", &self.servers.kafka_brokers)
            .env("KAFKA_REQUEST_TOPIC", self.topic("booking-requests"))
            .env("KAFKA_RESPONSE_TOPIC", self.topic("booking-updates"))
            .env("KAFKA_PROPERTY_TOPIC", self.topic("property-listings"))
            .env("KAFKA_GROUP_ID", format!("{}.{binary}", self.topic_prefix))
            .env("KAFKA_TOPIC_PARTITIONS", "3")
            .env(
                "KAFKA_SESSION_TIMEOUT_MS",
                KAFKA_SESSION_TIMEOUT.as_millis().to_string(),
            )
            .env("JWT_SECRET", JWT_SECRET)
            .env("LOG_FORMAT", "json")
            .env(
                "RUST_LOG",
                std::env::var("TEST_SERVICE_LOG").unwrap_or_else(|_| "info".into()),
            );
        for (k, v) in &self.extra_env {
            command.env(k, v);
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        let child = command
            // The services log to stdout: keep it with stderr in the test's
            // log file, where a failing test's evidence is.
            .stdout(log.try_clone().expect("log file handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        (child, format!("http://127.0.0.1:{port}"))
    }

    /// Where [`ProcessEnv::spawn`] writes a process's log.
    pub fn log_path(&self, binary: &str, port: u16) -> PathBuf {
        std::env::temp_dir().join(format!("{}-{binary}-{port}.log", self.topic_prefix))
    }
}
