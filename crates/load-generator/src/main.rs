//! `booking-load`: drives a running booking system over HTTP only, as real
//! clients would, and prints figures. It asserts nothing about speed: it
//! measures.
//!
//! 1. Setup: signs up owners and travelers, lists properties, waits until the
//!    traveler catalog shows them all.
//! 2. Phase "create": a closed loop of `--clients` concurrent travelers makes
//!    `--bookings` booking requests as fast as answers come back: throughput,
//!    latency percentiles and errors of `POST /api/travelers/bookings`, then a
//!    check that every acknowledged booking arrived at owner-service.
//! 3. Phase "flow": an open loop offers `--rate` bookings per second; each
//!    booking is followed as it travels, through the notification streams
//!    as a web app would: POST 201 → the owner's stream shows the request →
//!    approved by the owner-side driver at once → the traveler's stream
//!    shows ACCEPTED.
//! 4. Memory: resident and peak resident memory of the processes given with
//!    `--pid name=PID`, read from /proc.
//!
//! Stays never overlap (each booking gets its own night of its property), so
//! every approval can succeed and a 409 would be a real finding.

mod client;
mod db_ops;
mod stats;
mod stream;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Parser;
use client::Api;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};
use stats::{Samples, StatusCounts};
use stream::NotificationStream;

#[derive(Parser, Debug)]
#[command(about = "Load generator for the booking system (HTTP only)")]
struct Args {
    /// traveler-service base URL.
    #[arg(long, default_value = "http://127.0.0.1:5005")]
    traveler: String,
    /// owner-service base URL.
    #[arg(long, default_value = "http://127.0.0.1:5002")]
    owner: String,
    /// Concurrent clients in the create phase (each its own traveler).
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Bookings made in the create phase.
    #[arg(long, default_value_t = 5000)]
    bookings: usize,
    /// Offered rate (bookings per second) in the flow phase.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Bookings made in the flow phase (0 skips it).
    #[arg(long, default_value_t = 1000)]
    flow_bookings: usize,
    /// Owners, each with an equal share of the properties.
    #[arg(long, default_value_t = 4)]
    owners: usize,
    /// Properties bookings are spread over.
    #[arg(long, default_value_t = 64)]
    properties: usize,
    /// Processes whose memory to report, as name=PID (repeatable or comma-separated).
    #[arg(long = "pid", value_delimiter = ',')]
    pids: Vec<String>,
    /// MongoDB to read operation counters from (serverStatus), to report
    /// database operations per booking. Server-wide: use a private server.
    #[arg(long)]
    mongodb_uri: Option<String>,
    /// A label for the report (e.g. "embedded", "real stack").
    #[arg(long, default_value = "run")]
    label: String,
    /// How long acknowledged bookings may take to reach owner-service.
    #[arg(long, default_value_t = 120)]
    arrival_timeout_secs: u64,
}

/// A traveler or owner the generator acts as.
#[derive(Clone)]
struct Actor {
    token: String,
}

/// A property and the index of its owner.
#[derive(Clone)]
struct Listing {
    id: String,
    owner: usize,
}

/// Everything set up before the phases.
struct World {
    api: Api,
    owners: Vec<Actor>,
    travelers: Vec<Actor>,
    listings: Vec<Listing>,
    /// The flow phase's own owner, traveler and properties, so its streams
    /// carry only that phase's notifications.
    flow_owner: Actor,
    flow_traveler: Actor,
    flow_listings: Vec<Listing>,
    today: chrono::NaiveDate,
}

impl World {
    /// The body of booking `i`: its own night of property `i % P`.
    fn booking_body(&self, i: usize) -> (Value, usize) {
        Self::body_for(&self.listings, self.today, i)
    }

    fn body_for(listings: &[Listing], today: chrono::NaiveDate, i: usize) -> (Value, usize) {
        let listing = &listings[i % listings.len()];
        let slot = (i / listings.len()) as i64;
        let check_in = today + chrono::Duration::days(1 + 2 * slot);
        let check_out = check_in + chrono::Duration::days(1);
        (
            json!({"property_id": listing.id, "check_in": check_in.to_string(), "check_out": check_out.to_string(), "guests": 1}),
            listing.owner,
        )
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    let api = Api::new(&args.traveler, &args.owner, args.clients * 2);
    println!("# booking-load: {}", args.label);
    println!(
        "clients {}, create-phase bookings {}, flow-phase {} at {}/s, {} owners, {} properties",
        args.clients, args.bookings, args.flow_bookings, args.rate, args.owners, args.properties
    );
    let world = Arc::new(setup(&api, &args).await);
    report_memory(&args.pids, "after setup");

    let db = match &args.mongodb_uri {
        Some(uri) => Some(
            mongodb::Client::with_uri_str(uri)
                .await
                .expect("connect to --mongodb-uri"),
        ),
        None => None,
    };
    let before = match &db {
        Some(c) => db_ops::read(c).await,
        None => None,
    };
    create_phase(&world, &args).await;
    report_db_ops(&db, &before, args.bookings, "create phase").await;
    report_memory(&args.pids, "after create phase");
    if args.flow_bookings > 0 {
        let before = match &db {
            Some(c) => db_ops::read(c).await,
            None => None,
        };
        flow_phase(&world, &args).await;
        report_db_ops(
            &db,
            &before,
            args.flow_bookings,
            "flow phase (with the two services' inbox watchers)",
        )
        .await;
        report_memory(&args.pids, "after flow phase");
    }
}

/// Users 0 to `count` - 1 of this `run`, on the owner side or the traveler
/// side, signed up at once: the load's owners and its travelers are made
/// alike.
async fn sign_up_all(api: &Api, owner_side: bool, run: &str, count: usize) -> Vec<Actor> {
    futures::future::join_all((0..count).map(|n| api.signup(owner_side, run, n)))
        .await
        .into_iter()
        .map(|(_, token)| Actor { token })
        .collect()
}

async fn setup(api: &Api, args: &Args) -> World {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let started = Instant::now();
    let owners = sign_up_all(api, true, &run, args.owners).await;
    let travelers = sign_up_all(api, false, &run, args.clients).await;
    let (_, flow_owner) = api.signup(true, &run, args.owners).await;
    let (_, flow_traveler) = api.signup(false, &run, args.clients).await;
    let (flow_owner, flow_traveler) = (
        Actor { token: flow_owner },
        Actor {
            token: flow_traveler,
        },
    );
    let mut listings = Vec::new();
    for i in 0..args.properties {
        let owner = i % owners.len();
        listings.push(create_listing(api, &owners[owner].token, i, owner).await);
    }
    let mut flow_listings = Vec::new();
    for i in 0..8 {
        flow_listings.push(create_listing(api, &flow_owner.token, args.properties + i, 0).await);
    }
    // Wait until the catalog knows every property.
    let token = &travelers[0].token;
    for l in listings.iter().chain(&flow_listings) {
        let url = format!("{}/api/travelers/properties/{}", api.traveler, l.id);
        let deadline = Instant::now() + Duration::from_secs(60);
        while api.call(Method::GET, &url, Some(token), None).await.status != 200 {
            assert!(Instant::now() < deadline, "catalog never showed {}", l.id);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    println!(
        "setup: {} owners, {} travelers, {} properties in the catalog after {:.1} s",
        owners.len(),
        travelers.len(),
        listings.len(),
        started.elapsed().as_secs_f64()
    );
    World {
        api: api.clone(),
        owners,
        travelers,
        listings,
        flow_owner,
        flow_traveler,
        flow_listings,
        today: chrono::Utc::now().date_naive(),
    }
}

async fn create_listing(api: &Api, owner_token: &str, i: usize, owner: usize) -> Listing {
    let body = json!({"name": format!("Load {i}"), "city": "Loadville", "country": "LT",
        "price_per_night_cents": 10000 + i as i64, "cleaning_fee_cents": 1500, "max_guests": 4});
    let url = format!("{}/api/owners/properties", api.owner);
    let r = api
        .call(Method::POST, &url, Some(owner_token), Some(&body))
        .await;
    assert_eq!(r.status, 201, "create property failed: {}", r.body);
    Listing {
        id: r.body["property"]["id"].as_str().unwrap().to_string(),
        owner,
    }
}

/// Index of the next booking across both phases, so no two overlap.
static NEXT_BOOKING: AtomicUsize = AtomicUsize::new(0);

async fn create_phase(world: &Arc<World>, args: &Args) {
    let end = NEXT_BOOKING.load(Ordering::SeqCst) + args.bookings;
    let consumed_before = world.api.owner_requests_consumed().await;
    let started = Instant::now();
    let workers = (0..args.clients).map(|c| {
        let world = world.clone();
        tokio::spawn(async move {
            let mut latency = Samples::default();
            let mut statuses = StatusCounts::default();
            let mut acknowledged = Vec::new();
            let url = format!("{}/api/travelers/bookings", world.api.traveler);
            loop {
                let i = NEXT_BOOKING.fetch_add(1, Ordering::SeqCst);
                if i >= end {
                    break;
                }
                let (body, owner) = world.booking_body(i);
                let r = world
                    .api
                    .call_as::<Created>(
                        Method::POST,
                        &url,
                        Some(&world.travelers[c].token),
                        Some(&body),
                    )
                    .await;
                statuses.add(r.status);
                if r.status == 201 {
                    latency.push(r.took);
                    acknowledged.push((r.body.booking.id, owner));
                }
            }
            (latency, statuses, acknowledged)
        })
    });
    let mut latency = Samples::default();
    let mut statuses = StatusCounts::default();
    let mut acknowledged = Vec::new();
    for w in futures::future::join_all(workers).await {
        let (l, s, a) = w.expect("worker");
        latency.extend(l);
        statuses.merge(s);
        acknowledged.extend(a);
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("\n## create phase ({} clients, closed loop)", args.clients);
    println!(
        "POST /api/travelers/bookings: {:.0} completed/s ({} acknowledged in {:.2} s)",
        acknowledged.len() as f64 / elapsed,
        acknowledged.len(),
        elapsed
    );
    println!("POST latency: {}", latency.summary());
    println!("responses by status: {statuses}");

    let arrival = Instant::now();
    if let Some(before) = consumed_before {
        let expected = before + acknowledged.len() as u64;
        let deadline = arrival + Duration::from_secs(args.arrival_timeout_secs);
        let mut consumed = before;
        while consumed < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            consumed = world
                .api
                .owner_requests_consumed()
                .await
                .unwrap_or(consumed);
        }
        println!(
            "owner catch-up: owner-service had consumed {} of {} acknowledged booking requests {:.2} s after the phase (its events_consumed_total)",
            consumed - before,
            acknowledged.len(),
            arrival.elapsed().as_secs_f64()
        );
    }
    let listing = Instant::now();
    let missing = await_arrival(
        world,
        &acknowledged,
        Duration::from_secs(args.arrival_timeout_secs),
    )
    .await;
    println!(
        "arrival check: {} of {} acknowledged bookings visible at owner-service ({} missing) {:.1} s after the phase ({:.1} s of it listing every owner's bookings)",
        acknowledged.len() - missing,
        acknowledged.len(),
        missing,
        arrival.elapsed().as_secs_f64(),
        listing.elapsed().as_secs_f64()
    );
}

/// Waits until owner-service lists every acknowledged booking; returns how many never appeared.
async fn await_arrival(
    world: &World,
    acknowledged: &[(String, usize)],
    timeout: Duration,
) -> usize {
    let mut expected: HashMap<usize, HashSet<&str>> = HashMap::new();
    for (id, owner) in acknowledged {
        expected.entry(*owner).or_default().insert(id.as_str());
    }
    let deadline = Instant::now() + timeout;
    loop {
        let mut missing = 0;
        for (owner, ids) in &expected {
            let listed = world
                .api
                .all_booking_ids(
                    &format!("{}/api/owners/bookings", world.api.owner),
                    &world.owners[*owner].token,
                )
                .await
                .unwrap_or_default();
            let seen: HashSet<&str> = listed.iter().map(String::as_str).collect();
            missing += ids.iter().filter(|id| !seen.contains(*id)).count();
        }
        if missing == 0 || Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// When each flow-phase booking passed each point.
#[derive(Default, Clone)]
struct Marks {
    acknowledged: Option<Instant>,
    at_owner: Option<Instant>,
    approved: Option<Instant>,
    at_traveler: Option<Instant>,
}

type Timeline = Arc<tokio::sync::Mutex<HashMap<String, Marks>>>;
type Approvals = Arc<tokio::sync::Mutex<(Samples, StatusCounts)>>;

/// Stamps booking `id`'s mark `point` with `at`: every point of the flow is
/// recorded in the timeline the same way.
async fn mark(
    timeline: &Timeline,
    id: String,
    point: fn(&mut Marks) -> &mut Option<Instant>,
    at: Instant,
) {
    *point(timeline.lock().await.entry(id).or_default()) = Some(at);
}

/// The notification stream of the `role` ("owners" or "travelers") user
/// holding `token` at the service `base`; `ready` is sent once it is open.
async fn open_notifications(
    base: &str,
    role: &str,
    token: &str,
    ready: tokio::sync::oneshot::Sender<()>,
) -> Option<NotificationStream> {
    let url = format!("{base}/api/{role}/notifications/stream");
    NotificationStream::open_signalling(&url, token, ready).await
}

/// The part of a `201` to `POST /bookings` the create phase keeps.
#[derive(Deserialize, Default)]
struct Created {
    booking: CreatedBooking,
}

#[derive(Deserialize, Default)]
struct CreatedBooking {
    id: String,
}

/// The owner-side driver: follows the flow owner's notification stream and
/// approves each requested booking the moment its notification arrives.
/// `ready` is sent once the stream is open.
async fn owner_driver(
    world: Arc<World>,
    timeline: Timeline,
    approvals: Approvals,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let Some(mut stream) =
        open_notifications(&world.api.owner, "owners", &world.flow_owner.token, ready).await
    else {
        return;
    };
    while let Some(n) = stream.next().await {
        if n.kind != "booking_requested" {
            continue;
        }
        let now = Instant::now();
        let id = n.booking_id;
        mark(&timeline, id.clone(), |m| &mut m.at_owner, now).await;
        let (world, timeline, approvals) = (world.clone(), timeline.clone(), approvals.clone());
        tokio::spawn(async move {
            let url = format!("{}/api/owners/bookings/{id}/approve", world.api.owner);
            // The consumer writes the booking before its notification, so a
            // 404 should not happen; it is retried rather
            // than taken for a lost booking, should a store ever reorder.
            let approve = || {
                world
                    .api
                    .call(Method::PUT, &url, Some(&world.flow_owner.token), None)
            };
            let mut a = approve().await;
            for _ in 0..200 {
                if a.status != 404 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                a = approve().await;
            }
            let mut l = approvals.lock().await;
            l.1.add(a.status);
            if a.status == 200 {
                l.0.push(a.took);
                mark(&timeline, id, |m| &mut m.approved, Instant::now()).await;
            }
        });
    }
}

/// The traveler side: follows the flow traveler's notification stream; the
/// ACCEPTED notification is the moment the traveler sees the decision.
async fn traveler_watcher(
    world: Arc<World>,
    timeline: Timeline,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let Some(mut stream) = open_notifications(
        &world.api.traveler,
        "travelers",
        &world.flow_traveler.token,
        ready,
    )
    .await
    else {
        return;
    };
    while let Some(n) = stream.next().await {
        if n.kind == "status_changed" && n.status == "ACCEPTED" {
            let now = Instant::now();
            mark(&timeline, n.booking_id, |m| &mut m.at_traveler, now).await;
        }
    }
}

async fn flow_phase(world: &Arc<World>, args: &Args) {
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let timeline: Timeline = Default::default();
    let approvals: Approvals = Default::default();
    let (owner_ready, owner_opened) = tokio::sync::oneshot::channel();
    let (traveler_ready, traveler_opened) = tokio::sync::oneshot::channel();
    let driver = tokio::spawn(owner_driver(
        world.clone(),
        timeline.clone(),
        approvals.clone(),
        owner_ready,
    ));
    let watcher = tokio::spawn(traveler_watcher(
        world.clone(),
        timeline.clone(),
        traveler_ready,
    ));
    if owner_opened.await.is_err() || traveler_opened.await.is_err() {
        eprintln!("flow phase skipped: a notification stream could not be opened");
        return;
    }

    let started = tokio::time::Instant::now();
    let mut posts = Vec::with_capacity(args.flow_bookings);
    for k in 0..args.flow_bookings {
        tokio::time::sleep_until(started + interval * k as u32).await;
        let (world, timeline) = (world.clone(), timeline.clone());
        posts.push(tokio::spawn(async move {
            let (body, _) = World::body_for(&world.flow_listings, world.today, k);
            let url = format!("{}/api/travelers/bookings", world.api.traveler);
            let r = world
                .api
                .call(
                    Method::POST,
                    &url,
                    Some(&world.flow_traveler.token),
                    Some(&body),
                )
                .await;
            if r.status == 201 {
                let id = r.body["booking"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                mark(&timeline, id, |m| &mut m.acknowledged, Instant::now()).await;
            }
            (r.status, r.took)
        }));
    }
    let offered_for = started.elapsed().as_secs_f64();
    let mut post = Samples::default();
    let mut post_status = StatusCounts::default();
    for p in futures::future::join_all(posts).await {
        let (status, took) = p.expect("post task");
        post_status.add(status);
        if status == 201 {
            post.push(took);
        }
    }
    // Follow until every acknowledged booking was seen ACCEPTED (or 30 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let complete = timeline
            .lock()
            .await
            .values()
            .all(|m| m.acknowledged.is_none() || m.at_traveler.is_some());
        if complete || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    driver.abort();
    watcher.abort();
    let total = started.elapsed().as_secs_f64();

    let (mut to_owner, mut to_traveler) = (Samples::default(), Samples::default());
    let mut whole = Samples::default();
    let (mut never_at_owner, mut never_at_traveler) = (0, 0);
    for m in timeline.lock().await.values() {
        let Some(ack) = m.acknowledged else { continue };
        match m.at_owner {
            Some(t) => to_owner.push(t.saturating_duration_since(ack)),
            None => never_at_owner += 1,
        }
        if let Some(t) = m.at_traveler {
            whole.push(t.saturating_duration_since(ack));
        }
        match (m.approved, m.at_traveler) {
            (Some(a), Some(t)) => to_traveler.push(t.saturating_duration_since(a)),
            _ => never_at_traveler += 1,
        }
    }
    // The end state, read independently: every acknowledged booking ACCEPTED.
    let url = format!(
        "{}/api/travelers/bookings?status=ACCEPTED",
        world.api.traveler
    );
    let accepted = world
        .api
        .all_booking_ids(&url, &world.flow_traveler.token)
        .await
        .map_or(0, |ids| ids.len());
    let (approve, approve_status) = approvals.lock().await.clone();

    println!(
        "\n## flow phase (offered {} bookings/s, open loop)",
        args.rate
    );
    println!(
        "offered {} bookings over {:.1} s; all followed to the end after {:.1} s",
        args.flow_bookings, offered_for, total
    );
    println!("POST latency: {}", post.summary());
    println!("POST responses by status: {post_status}");
    println!(
        "propagation POST 201 -> visible at owner-service: {}",
        to_owner.summary()
    );
    println!("approve latency: {}", approve.summary());
    println!("approve responses by status: {approve_status}");
    println!(
        "propagation approve 200 -> traveler sees ACCEPTED: {}",
        to_traveler.summary()
    );
    println!(
        "whole flow POST 201 -> owner's stream -> approve -> traveler's stream: {}",
        whole.summary()
    );
    println!(
        "end state: {accepted} of {} acknowledged bookings ACCEPTED at traveler-service; never seen at owner-service: {never_at_owner}; approved but not seen ACCEPTED within 30 s: {never_at_traveler}",
        post.len()
    );
    println!("(each side follows its notification stream: a propagation figure ends when the notification arrives)");
}

/// Prints database operations per booking since `before`, if counted.
async fn report_db_ops(
    db: &Option<mongodb::Client>,
    before: &Option<db_ops::OpCounters>,
    bookings: usize,
    phase: &str,
) {
    let (Some(client), Some(before)) = (db, before) else {
        return;
    };
    match db_ops::read(client).await {
        Some(after) => println!(
            "database operations, {phase}: {}",
            db_ops::per_booking(before, &after, bookings)
        ),
        None => println!("database operations: the server does not report opcounters"),
    }
}

/// Prints VmRSS and VmHWM (peak) of each `name=PID`.
fn report_memory(pids: &[String], when: &str) {
    for spec in pids {
        let Some((name, pid)) = spec.split_once('=') else {
            eprintln!("--pid expects name=PID, got {spec:?}");
            continue;
        };
        match std::fs::read_to_string(format!("/proc/{pid}/status")) {
            Ok(status) => {
                let field = |key: &str| {
                    status
                        .lines()
                        .find(|l| l.starts_with(key))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|kb| kb.parse::<f64>().ok())
                        .map(|kb| format!("{:.1} MB", kb / 1024.0))
                        .unwrap_or_else(|| "?".into())
                };
                println!(
                    "memory {when}: {name} resident {}, peak resident {}",
                    field("VmRSS:"),
                    field("VmHWM:")
                );
            }
            Err(e) => println!("memory {when}: {name} (pid {pid}) unreadable: {e}"),
        }
    }
}
