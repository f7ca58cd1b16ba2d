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
//!    booking is followed as it travels: POST 201 → visible at owner-service →
//!    approved by the owner-side driver at once → the traveler sees ACCEPTED.
//! 4. Memory: resident and peak resident memory of the processes given with
//!    `--pid name=PID`, read from /proc.
//!
//! Stays never overlap (each booking gets its own night of its property), so
//! every approval can succeed and a 409 would be a real finding.

mod client;
mod stats;

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
use serde_json::{json, Value};
use stats::{Samples, StatusCounts};

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
    today: chrono::NaiveDate,
}

impl World {
    /// The body of booking `i`: its own night of property `i % P`.
    fn booking_body(&self, i: usize) -> (Value, usize) {
        let listing = &self.listings[i % self.listings.len()];
        let slot = (i / self.listings.len()) as i64;
        let check_in = self.today + chrono::Duration::days(1 + 2 * slot);
        let check_out = check_in + chrono::Duration::days(1);
        (
            json!({"property_id": listing.id, "check_in": check_in.to_string(), "check_out": check_out.to_string(), "guests": 1}),
            listing.owner,
        )
    }
}

#[tokio::main]
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

    create_phase(&world, &args).await;
    report_memory(&args.pids, "after create phase");
    if args.flow_bookings > 0 {
        flow_phase(&world, &args).await;
        report_memory(&args.pids, "after flow phase");
    }
}

async fn setup(api: &Api, args: &Args) -> World {
    let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    let started = Instant::now();
    let owners: Vec<Actor> =
        futures::future::join_all((0..args.owners).map(|n| api.signup(true, &run, n)))
            .await
            .into_iter()
            .map(|(_, token)| Actor { token })
            .collect();
    let travelers: Vec<Actor> =
        futures::future::join_all((0..args.clients).map(|n| api.signup(false, &run, n)))
            .await
            .into_iter()
            .map(|(_, token)| Actor { token })
            .collect();
    let mut listings = Vec::new();
    for i in 0..args.properties {
        let owner = i % owners.len();
        let body = json!({"name": format!("Load {i}"), "city": "Loadville", "country": "LT",
            "price_per_night_cents": 10000 + i as i64, "cleaning_fee_cents": 1500, "max_guests": 4});
        let r = api
            .call(
                Method::POST,
                &format!("{}/api/owners/properties", api.owner),
                Some(&owners[owner].token),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201, "create property failed: {}", r.body);
        listings.push(Listing {
            id: r.body["property"]["id"].as_str().unwrap().to_string(),
            owner,
        });
    }
    // Wait until the catalog knows every property.
    let token = &travelers[0].token;
    for l in &listings {
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
        today: chrono::Utc::now().date_naive(),
    }
}

/// Index of the next booking across both phases, so no two overlap.
static NEXT_BOOKING: AtomicUsize = AtomicUsize::new(0);

async fn create_phase(world: &Arc<World>, args: &Args) {
    let end = NEXT_BOOKING.load(Ordering::SeqCst) + args.bookings;
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
                    .call(
                        Method::POST,
                        &url,
                        Some(&world.travelers[c].token),
                        Some(&body),
                    )
                    .await;
                statuses.add(r.status);
                if r.status == 201 {
                    latency.push(r.took);
                    acknowledged.push((
                        r.body["booking"]["id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        owner,
                    ));
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
    let missing = await_arrival(
        world,
        &acknowledged,
        Duration::from_secs(args.arrival_timeout_secs),
    )
    .await;
    println!(
        "arrival check: {} of {} acknowledged bookings visible at owner-service ({} missing) {:.1} s after the phase",
        acknowledged.len() - missing,
        acknowledged.len(),
        missing,
        arrival.elapsed().as_secs_f64()
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
            let r = world
                .api
                .call(
                    Method::GET,
                    &format!("{}/api/owners/bookings", world.api.owner),
                    Some(&world.owners[*owner].token),
                    None,
                )
                .await;
            let seen: HashSet<&str> = r.body["bookings"]
                .as_array()
                .map(|a| a.iter().filter_map(|b| b["id"].as_str()).collect())
                .unwrap_or_default();
            missing += ids.iter().filter(|id| !seen.contains(*id)).count();
        }
        if missing == 0 || Instant::now() >= deadline {
            return missing;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// What happened to one booking in the flow phase.
#[derive(Default)]
struct Trace {
    post: Option<(u16, Duration)>,
    to_owner: Option<Duration>,
    approve: Option<(u16, Duration)>,
    to_traveler: Option<Duration>,
}

/// Polls `url` until `done` holds for the body; returns the time it took.
/// The interval starts at 2 ms and grows by half up to 50 ms, so a slow
/// system is measured without being flooded by the measurement itself.
async fn poll_until(
    api: &Api,
    url: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> Option<Duration> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(30);
    let mut interval = Duration::from_millis(2);
    while Instant::now() < deadline {
        let r = api.call(Method::GET, url, Some(token), None).await;
        if r.status == 200 && done(&r.body) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(interval).await;
        interval = (interval * 3 / 2).min(Duration::from_millis(50));
    }
    None
}

async fn follow(world: Arc<World>, i: usize) -> Trace {
    let mut trace = Trace::default();
    let traveler = &world.travelers[i % world.travelers.len()].token;
    let (body, owner) = world.booking_body(i);
    let owner = &world.owners[owner].token;
    let api = &world.api;
    let r = api
        .call(
            Method::POST,
            &format!("{}/api/travelers/bookings", api.traveler),
            Some(traveler),
            Some(&body),
        )
        .await;
    trace.post = Some((r.status, r.took));
    if r.status != 201 {
        return trace;
    }
    let id = r.body["booking"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    trace.to_owner = poll_until(
        api,
        &format!("{}/api/owners/bookings/{id}", api.owner),
        owner,
        |_| true,
    )
    .await;
    if trace.to_owner.is_none() {
        return trace;
    }
    let a = api
        .call(
            Method::PUT,
            &format!("{}/api/owners/bookings/{id}/approve", api.owner),
            Some(owner),
            None,
        )
        .await;
    trace.approve = Some((a.status, a.took));
    if a.status == 200 {
        trace.to_traveler = poll_until(
            api,
            &format!("{}/api/travelers/bookings/{id}", api.traveler),
            traveler,
            |b| b["booking"]["status"] == "ACCEPTED",
        )
        .await;
    }
    trace
}

async fn flow_phase(world: &Arc<World>, args: &Args) {
    let first = NEXT_BOOKING.fetch_add(args.flow_bookings, Ordering::SeqCst);
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.flow_bookings);
    for k in 0..args.flow_bookings {
        tokio::time::sleep_until(started + interval * k as u32).await;
        tasks.push(tokio::spawn(follow(world.clone(), first + k)));
    }
    let offered_for = started.elapsed().as_secs_f64();
    let traces: Vec<Trace> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|t| t.expect("flow task"))
        .collect();
    let total = started.elapsed().as_secs_f64();

    let (mut post, mut approve, mut to_owner, mut to_traveler) = (
        Samples::default(),
        Samples::default(),
        Samples::default(),
        Samples::default(),
    );
    let (mut post_status, mut approve_status) = (StatusCounts::default(), StatusCounts::default());
    let mut never_arrived = 0;
    for t in &traces {
        if let Some((s, d)) = t.post {
            post_status.add(s);
            if s == 201 {
                post.push(d);
                match t.to_owner {
                    Some(d) => to_owner.push(d),
                    None => never_arrived += 1,
                }
            }
        }
        if let Some((s, d)) = t.approve {
            approve_status.add(s);
            if s == 200 {
                approve.push(d);
            }
        }
        if let Some(d) = t.to_traveler {
            to_traveler.push(d);
        }
    }
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
    println!("acknowledged but never seen at owner-service within 30 s: {never_arrived}");
    println!("(propagation is observed by polling from 2 ms growing to 50 ms apart: a figure includes up to one interval of polling delay, about a third of the figure itself)");
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
