//! Helpers of the fault-injection suite (`tests/faults_*.rs`): private broker
//! and database servers a test may stop without disturbing the others,
//! bursts of concurrent clients that keep an independent record of what they
//! were told, probes of committed offsets and of the services' databases,
//! and the figures each fault test reports for `docs/reliability.md`.

#![allow(dead_code)]

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use chrono::{Duration as Days, Utc};
use futures::StreamExt;
use rdkafka::{
    config::ClientConfig,
    consumer::{BaseConsumer, Consumer},
    message::{Header, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
    util::Timeout,
    Offset, TopicPartitionList,
};
use reqwest::Method;
use serde_json::{json, Value};
use test_support::{eventually, read_topic, unique, ReadMessage, RealServers};

use crate::support::{free_port, ProcessEnv, System, User};

/// How long the suite waits for effects that cross services after a fault
/// (reconnect backoffs, rebalances and lease expiry included).
pub const RECOVERY: Duration = Duration::from_secs(90);

// ---- figures -----------------------------------------------------------------

/// One row of the reliability table, produced by a fault test from its own
/// independent record of what clients were told.
#[derive(Debug, Clone)]
pub struct Figures {
    /// File name of the row (`target/reliability/<id>.json`).
    pub id: &'static str,
    /// Position in the table (the fault's number in the issue).
    pub order: u32,
    pub fault: &'static str,
    pub injection: String,
    /// Operations started while the fault was injected (requests sent,
    /// events in transit).
    pub in_flight: usize,
    /// Of those, the ones a client got a success answer for (2xx), or for
    /// messages written straight to a topic, the ones the broker accepted.
    pub acknowledged: usize,
    /// Acknowledged operations whose effect is missing at the end.
    pub lost: usize,
    /// Effects applied more than once (listed twice, extra notifications,
    /// extra status events, extra dead letters).
    pub duplicated: usize,
    /// Anything else worth reading next to the numbers.
    pub notes: String,
}

/// Where the rows go: `<target dir>/reliability`.
pub fn reliability_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../target"));
    target.join("reliability")
}

impl Figures {
    /// Prints the row and writes it as one JSON line. Call it before the
    /// assertions so a failing run still reports what it saw.
    pub fn record(&self) {
        let row = json!({
            "id": self.id,
            "order": self.order,
            "fault": self.fault,
            "injection": self.injection,
            "in_flight": self.in_flight,
            "acknowledged": self.acknowledged,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "notes": self.notes,
            "recorded_at": Utc::now().to_rfc3339(),
        });
        println!("RELIABILITY {row}");
        let dir = reliability_dir();
        std::fs::create_dir_all(&dir).expect("create target/reliability");
        std::fs::write(dir.join(format!("{}.json", self.id)), format!("{row}\n"))
            .expect("write the figures");
    }
}

// ---- private servers -----------------------------------------------------------

/// How long a private server may take to start: a JVM's start-up is
/// seconds, many more while other tests keep both cores busy.
const SERVER_START: Duration = Duration::from_secs(90);

/// Waits until something listens on `127.0.0.1:port`.
pub fn wait_port(port: u16, what: &str, child: &mut Child) {
    let deadline = Instant::now() + SERVER_START;
    loop {
        if TcpStream::connect_timeout(
            &format!("127.0.0.1:{port}").parse().unwrap(),
            Duration::from_millis(200),
        )
        .is_ok()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before opening port {port}");
        }
        assert!(Instant::now() < deadline, "{what} did not open port {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the broker at `brokers` answers a metadata request naming
/// itself (it opens its port before it can serve one).
fn wait_metadata(brokers: &str, child: &mut Child) {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("metadata client");
    let deadline = Instant::now() + SERVER_START;
    loop {
        match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(m) if !m.brokers().is_empty() => return,
            _ => {}
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the Kafka broker at {brokers} exited with {status} before serving metadata");
        }
        assert!(
            Instant::now() < deadline,
            "the Kafka broker at {brokers} did not serve metadata"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Sends SIGTERM to a process.
pub fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

/// Waits for a process to exit, at most `timeout` (then kills it and says so).
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Result<std::process::ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("did not exit within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An Apache Kafka broker of this test alone (`scripts/kafka-broker.sh`: the
/// same KRaft broker as the shared one), on its own log directory, so it can
/// be killed and restarted on the same port with its data.
pub struct PrivateKafka {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl PrivateKafka {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("private-kafka"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut broker = Self {
            dir,
            port: free_port(),
            child: None,
        };
        broker.spawn();
        broker
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's own log (`server.log` of the Apache Kafka distribution).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("kafka.log")
    }

    /// Starts the broker (formatting its log directory the first time) and
    /// returns once it answers metadata, not only once its port is open.
    fn spawn(&mut self) {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/kafka-broker.sh");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut child = Command::new("bash")
            .arg(script)
            .arg("run")
            .arg(self.dir.join("broker"))
            .arg(self.port.to_string())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start a private Apache Kafka broker");
        wait_port(self.port, "private Kafka broker", &mut child);
        wait_metadata(&self.brokers(), &mut child);
        self.child = Some(child);
    }

    /// SIGKILL: the broker vanishes without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "kill the broker first");
        self.spawn();
    }
}

/// A private broker beside the shared MongoDB: the broker (to kill and
/// restart) and the servers to run the services against.
pub fn private_broker(shared: &RealServers) -> (PrivateKafka, RealServers) {
    let broker = PrivateKafka::start();
    let servers = RealServers {
        mongodb_uri: shared.mongodb_uri.clone(),
        kafka_brokers: broker.brokers(),
    };
    (broker, servers)
}

impl Drop for PrivateKafka {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A SecantusDB server of this test alone, storing on disk (not in memory)
/// so that its data survives a stop and a restart on the same port.
pub struct PrivateMongo {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl PrivateMongo {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(unique("faults-secantus"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            dir,
            port: free_port(),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    fn spawn(&mut self) {
        let bin = std::env::var("TEST_SECANTUS_BIN")
            .expect("TEST_SECANTUS_BIN (set by scripts/test-servers.sh start)");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("secantus.log"))
            .unwrap();
        let mut child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--storage-path",
                &self.dir.join("data").to_string_lossy(),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start private SecantusDB");
        wait_port(self.port, "private SecantusDB", &mut child);
        self.child = Some(child);
    }

    /// Stops the server (SIGTERM, as an operator or an orchestrator would;
    /// SIGKILL if it does not exit in 30 s) and returns once it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            sigterm(&child);
            if let Err(e) = wait_exit(&mut child, Duration::from_secs(30)) {
                eprintln!("private SecantusDB {e}; killed");
            }
        }
    }

    /// SIGKILL: the server crashes.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server first");
        self.spawn();
    }
}

impl Drop for PrivateMongo {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- Kafka probes ----------------------------------------------------------------

fn probe(brokers: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("probe consumer")
}

/// `(low, high)` watermarks of each partition of `topic`.
pub fn watermarks(brokers: &str, topic: &str) -> BTreeMap<i32, (i64, i64)> {
    let consumer = probe(brokers, &unique("probe"));
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("topic metadata");
    let mut out = BTreeMap::new();
    if let Some(meta) = metadata.topics().iter().find(|t| t.name() == topic) {
        for p in meta.partitions() {
            let w = consumer
                .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
                .expect("watermarks");
            out.insert(p.id(), w);
        }
    }
    out
}

/// The offsets `group` has committed on each partition of `topic` (absent:
/// nothing committed there), read without joining the group.
pub fn committed(brokers: &str, group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let partitions: Vec<i32> = watermarks(brokers, topic).keys().copied().collect();
    let consumer = probe(brokers, group);
    let mut tpl = TopicPartitionList::new();
    for p in &partitions {
        tpl.add_partition(topic, *p);
    }
    let offsets = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    offsets
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// Waits until `group` has committed the end of every non-empty partition
/// of `topic` (it has consumed everything there is).
pub async fn wait_consumed(brokers: &str, group: &str, topic: &str) {
    eventually(
        &format!("{group} consumed all of {topic}"),
        RECOVERY,
        || async {
            let ends = watermarks(brokers, topic);
            let done = committed(brokers, group, topic);
            ends.iter()
                .all(|(p, (low, high))| high <= low || done.get(p).is_some_and(|c| c >= high))
                .then_some(())
        },
    )
    .await;
}

/// Writes one raw message; unlike `test_support::produce_raw` it reports a
/// refusal instead of panicking (to find the broker's size limit).
pub async fn produce(
    brokers: &str,
    topic: &str,
    key: &[u8],
    value: &[u8],
    headers: &[(String, Vec<u8>)],
) -> Result<(i32, i64), String> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.max.bytes", "4000000")
        .set("message.timeout.ms", "15000")
        .create()
        .expect("test producer");
    let mut hs = OwnedHeaders::new();
    for (k, v) in headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(v),
        });
    }
    producer
        .send(
            FutureRecord::to(topic).key(key).payload(value).headers(hs),
            Timeout::After(Duration::from_secs(15)),
        )
        .await
        .map(|delivery| (delivery.partition, delivery.offset))
        .map_err(|(e, _)| e.to_string())
}

/// How long reading a whole topic may take. Generous: eight fault tests
/// share two cores with their brokers, and a short read is a failure.
const TOPIC_READ: Duration = Duration::from_secs(30);

/// Reads a whole topic, retrying until it holds at least `min` messages.
pub async fn read_at_least(brokers: &str, topic: &str, min: usize) -> Vec<ReadMessage> {
    eventually(
        &format!("{topic} holds at least {min} messages"),
        RECOVERY,
        || {
            let (brokers, topic) = (brokers.to_string(), topic.to_string());
            async move {
                let all =
                    tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, TOPIC_READ))
                        .await
                        .unwrap();
                (all.len() >= min).then_some(all)
            }
        },
    )
    .await
}

/// Every message of a topic, read on a blocking thread.
pub async fn read_all(brokers: &str, topic: &str) -> Vec<ReadMessage> {
    let (brokers, topic) = (brokers.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || read_topic(&brokers, &topic, TOPIC_READ))
        .await
        .unwrap()
}

/// How many messages carry each key (UTF-8 keys only).
pub fn per_key(messages: &[ReadMessage]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for m in messages {
        if let Some(k) = &m.key {
            *out.entry(String::from_utf8_lossy(k).into_owned())
                .or_default() += 1;
        }
    }
    out
}

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

// ---- the services' databases, read directly -------------------------------------------

pub async fn database(uri: &str, name: &str) -> mongodb::Database {
    let mut options = mongodb::options::ClientOptions::parse(uri)
        .await
        .expect("MongoDB URI");
    options.server_selection_timeout = Some(Duration::from_secs(10));
    mongodb::Client::with_options(options)
        .expect("MongoDB client")
        .database(name)
}

/// The `_id`s of a collection and how many documents still carry events in
/// their `outbox` (not yet relayed).
pub async fn stored(db: &mongodb::Database, collection: &str) -> (BTreeSet<String>, usize) {
    let coll = db.collection::<bson::Document>(collection);
    let mut cursor = coll
        .find(bson::doc! {})
        .projection(bson::doc! {"_id": 1, "outbox": 1})
        .await
        .expect("read collection");
    let mut ids = BTreeSet::new();
    let mut pending = 0;
    while let Some(doc) = cursor.next().await {
        let doc = doc.expect("document");
        ids.insert(doc.get_str("_id").expect("string _id").to_string());
        if doc.get_array("outbox").is_ok_and(|o| !o.is_empty()) {
            pending += 1;
        }
    }
    (ids, pending)
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
        Self(
            reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
        )
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
                            let a = client
                                .send(
                                    Method::POST,
                                    &url,
                                    Some(&r.token),
                                    Some(&r.body),
                                    &[("idempotency-key", &r.key)],
                                )
                                .await;
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
            *a = client
                .send(
                    Method::POST,
                    &url,
                    Some(&r.token),
                    Some(&r.body),
                    &[("idempotency-key", &r.key)],
                )
                .await;
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
    let notes: Vec<Value> = sys
        .owner_notifications(owner)
        .await
        .into_iter()
        .filter(|n| n["kind"] == "booking_requested")
        .collect();
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
    let property_id = sys.create_property(&owner, city).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut travelers = Vec::new();
    for i in 0..n {
        travelers.push(sys.traveler_signup(&format!("T{i}")).await);
    }
    for t in &travelers {
        sys.wait_catalog(t, &property_id, 1).await;
    }
    (owner, property_id, travelers)
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
