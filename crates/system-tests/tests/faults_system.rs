//! Fault injection against the whole system: both binaries as processes on
//! the real broker (Apache Kafka 4.1.1) and MongoDB-protocol server
//! (SecantusDB). Each test injects one fault while clients are busy, keeps
//! its own record of what the clients were told (the 201s and 200s), and
//! checks the end state against that record: every acknowledged operation
//! has its effect, exactly once. Each test writes its figures to
//! `target/reliability/<test>.json` (see `docs/reliability.md`).
//!
//! Faults that stop a server use a private server started by the test, so
//! tests running in parallel are not disturbed.

mod faults_support;
mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use faults_support::*;
use reqwest::Method;
use serde_json::{json, Value};
use support::{free_port, ProcessEnv, System, PROPAGATION};
use test_support::{
    eventually,
    figures::Figures,
    mongo::{database, stored},
    real_servers, unique, RealServers,
};

/// `GET /health/ready` of a service: status and report.
async fn readiness(sys: &System, base: &str) -> (u16, Value) {
    let r = sys.http.get(&format!("{base}/health/ready"), None).await;
    (r.status.as_u16(), r.body)
}

/// Waits until readiness answers `status`; returns the report.
async fn wait_readiness(sys: &System, base: &str, status: u16) -> Value {
    eventually(
        &format!("{base}/health/ready answers {status}"),
        RECOVERY,
        || async {
            let (s, body) = readiness(sys, base).await;
            (s == status).then_some(body)
        },
    )
    .await
}

/// The restarted service's consumer as `/health/ready` lists it, once it
/// holds a partition: its group must be `group`.
async fn consumer_in_readiness(sys: &System, base: &str, group: &str) -> Value {
    eventually(
        &format!("{base}/health/ready lists a consumer of {group} holding partitions"),
        RECOVERY,
        || async {
            let (status, body) = readiness(sys, base).await;
            let consumer = body["checks"]["consumers"]["consumers"][0].clone();
            let holds = consumer["assigned_partitions"]
                .as_array()
                .is_some_and(|ps| !ps.is_empty());
            (status == 200
                && consumer["group"] == group
                && holds
                && consumer["last_poll_at"].is_string())
            .then_some(consumer)
        },
    )
    .await
}

/// A request that fails because the database is down: 503 problem document
/// with `Retry-After`, and an `error_id` that the service's log also has
/// (with the driver's error as the cause).
async fn assert_unavailable_is_retryable_and_logged(
    sys: &System,
    base: &str,
    binary: &str,
    token: &str,
) {
    let path = if binary == "owner-service" {
        "/api/owners/bookings"
    } else {
        "/api/travelers/bookings"
    };
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("the service answers while its database is down");
    assert_eq!(res.status().as_u16(), 503);
    let retry_after = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(retry_after.as_deref(), Some("2"), "Retry-After");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "dependency_unavailable", "{problem}");
    let error_id = problem["error_id"]
        .as_str()
        .expect("an error_id")
        .to_string();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    let log_path = env_of(sys).log_path(binary, port);
    let line = eventually("the error id in the service log", RECOVERY, || {
        let (log_path, error_id) = (log_path.clone(), error_id.clone());
        async move {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            log.lines()
                .find(|l| l.contains(&error_id))
                .map(str::to_string)
        }
    })
    .await;
    assert!(
        line.contains("store unavailable"),
        "the log line keeps the cause: {line}"
    );
}

fn env_of(sys: &System) -> &ProcessEnv {
    sys.env.as_ref().expect("a process system")
}

/// SIGKILL: the process dies at once, and is reaped.
fn sigkill(child: &mut std::process::Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Starts `binary` again at once on a new port (after [`sigkill`]), gives
/// the system back the `survivor` (the other service) and the new process,
/// and waits until both are ready.
async fn respawn(sys: &mut System, binary: &str, survivor: std::process::Child) {
    let (child, url) = env_of(sys).spawn(binary, free_port());
    if binary == "owner-service" {
        sys.owner = url;
    } else {
        sys.traveler = url;
    }
    sys.adopt(survivor);
    sys.adopt(child);
    sys.wait_ready().await;
}

/// owner-service's consumer of `booking-requests`: the brokers, the topic,
/// the group and the offsets it has committed.
fn owner_requests_commits(env: &ProcessEnv) -> (String, String, String, BTreeMap<i32, i64>) {
    let brokers = env.servers.kafka_brokers.clone();
    let topic = env.topic("booking-requests");
    let group = format!("{}.owner-service", env.topic_prefix);
    let offsets = committed(&brokers, &group, &topic);
    (brokers, topic, group, offsets)
}

/// What a burst left, once every acknowledged booking reached owner-service:
/// the verdict, `booking.requested` copies on the topic beyond one per
/// booking, acknowledged bookings never published, and dead letters.
async fn settle(
    sys: &System,
    owner: &support::User,
    pid: &str,
    travelers: &[support::User],
    requests: &[BookingRequest],
    answers: &[Answer],
    acked: &BTreeSet<String>,
) -> (Verdict, usize, usize, usize) {
    let verdict = verify_bookings(sys, owner, pid, travelers, requests, answers).await;
    let env = env_of(sys);
    let (wire_extra, unpublished) = wire_copies(env, acked).await;
    let dead = dead_letters(env).await;
    (verdict, wire_extra, unpublished, dead)
}

fn assert_retries_booked_all(
    acked: &BTreeSet<String>,
    requests: &[BookingRequest],
    answers: &[Answer],
) {
    assert_eq!(
        acked.len(),
        requests.len(),
        "after the retries every request has its booking: {}",
        answer_summary(answers)
    );
}

/// Nothing lost or doubled, everything published, nothing dead-lettered.
fn assert_clean(verdict: &Verdict, unpublished: usize, dead: usize) {
    assert!(verdict.problems.is_empty(), "{:#?}", verdict.problems);
    assert_eq!(unpublished, 0, "acknowledged bookings never published");
    assert_eq!(dead, 0, "nothing is dead-lettered");
}

// ---- 1. Kafka broker stopped while travelers create bookings -----------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_broker_killed_during_a_booking_burst_loses_and_duplicates_nothing() {
    let Some((mut broker, servers)) = private_broker_for("faults: kafka broker killed") else {
        return;
    };
    let (sys, owner, pid, travelers, requests) = burst_scene(&servers, "Tavira", 4, 10).await;

    let burst = Burst::start(&sys.traveler, &requests, 8);
    burst.wait_created(8).await;
    broker.kill();
    let answered_before_kill = burst.finished.load(Ordering::SeqCst);
    let killed_at = Instant::now();
    let mut answers = burst.answers().await;
    // The outage is visible to operators, and bookings are still taken.
    let report = wait_readiness(&sys, &sys.traveler, 503).await;
    assert_eq!(report["checks"]["kafka"]["status"], "down", "{report}");
    assert_eq!(report["checks"]["mongodb"]["status"], "up", "{report}");
    let during = sys.book(&travelers[0], &pid, 400, 2).await;
    broker.restart();
    let outage = killed_at.elapsed();
    // The booking made during the outage joins the clients' record.
    let mut requests = requests;
    record_booking(&mut requests, &mut answers, 0, &travelers[0], &during);

    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    wait_readiness(&sys, &sys.traveler, 200).await;
    let (verdict, wire_extra, unpublished, dead) =
        settle(&sys, &owner, &pid, &travelers, &requests, &answers, &acked).await;

    Figures {
        id: "kafka_broker_killed",
        order: 1,
        fault: "Kafka broker stopped while travelers create bookings",
        injection: format!(
            "SIGKILL of a private Apache Kafka broker after {answered_before_kill} of {} concurrent POST \
             /bookings (8 at a time) were answered; restarted on the same port and data \
             {:.1} s later",
            requests.len() - 1,
            outage.as_secs_f64()
        ),
        in_flight: requests.len(),
        acknowledged: acked.len(),
        lost: verdict.lost + unpublished,
        duplicated: verdict.duplicated,
        notes: format!(
            "answers: {}; booking.requested copies on the topic beyond one: {wire_extra}; \
             dead letters: {dead}",
            answer_summary(&answers)
        ),
    }
    .record();

    assert_eq!(
        acked.len(),
        requests.len(),
        "every booking request is acknowledged while Kafka is down: {}",
        answer_summary(&answers)
    );
    assert_clean(&verdict, unpublished, dead);
}

// ---- 2. MongoDB stopped while events arrive ---------------------------------------------

/// Watches `group`'s committed offsets on `topic` for `window` and returns the
/// partitions where it committed past `limit` (the ends before the outage).
async fn commits_past(
    brokers: &str,
    group: &str,
    topic: &str,
    limit: &BTreeMap<i32, (i64, i64)>,
    window: Duration,
) -> Vec<String> {
    let mut past = Vec::new();
    let until = Instant::now() + window;
    while Instant::now() < until {
        for (p, c) in committed(brokers, group, topic) {
            let end = limit.get(&p).map(|(_, high)| *high).unwrap_or(0);
            if c > end {
                past.push(format!("partition {p}: committed {c} > {end}"));
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    past
}

/// Waits until `topic` holds `sent` messages in all (high watermarks).
async fn wait_on_topic(what: &str, brokers: &str, topic: &str, sent: i64) {
    eventually(&format!("{what} are on the topic"), RECOVERY, || async {
        let now: i64 = watermarks(brokers, topic).values().map(|(_, h)| h).sum();
        (now >= sent).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_stopped_while_events_arrive_pauses_consumers_and_they_catch_up() {
    let Some(shared) = real_servers("faults: mongodb stopped") else {
        return;
    };
    let mut traveler_db = PrivateMongo::start();
    let mut owner_db = PrivateMongo::start();
    let run = unique("run").replace('-', "_");
    let env = ProcessEnv::for_run(&shared, &run, &[]);
    let brokers = shared.kafka_brokers.clone();
    let on = |db: &PrivateMongo| RealServers {
        mongodb_uri: db.uri(),
        kafka_brokers: brokers.clone(),
    };
    let (t_child, t_url) = env
        .on_servers(on(&traveler_db))
        .spawn("traveler-service", free_port());
    let (o_child, o_url) = env
        .on_servers(on(&owner_db))
        .spawn("owner-service", free_port());
    let sys = System::from_processes(t_url, o_url, vec![t_child, o_child], Some(env)).await;
    let env = env_of(&sys);
    let (owner, pid, travelers) = cast(&sys, "Evora", 2).await;
    let requests_topic = env.topic("booking-requests");
    let updates_topic = env.topic("booking-updates");
    let owner_group = format!("{run}.owner-service");
    let traveler_group = format!("{run}.traveler-service");
    let first = sys.book(&travelers[0], &pid, 5, 1).await;
    sys.wait_owner_sees(&owner, first["id"].as_str().unwrap())
        .await;
    wait_consumed(&brokers, &owner_group, &requests_topic).await;

    // Phase A: owner-service's database crashes while booking requests arrive.
    let before_a = watermarks(&brokers, &requests_topic);
    let stopped = Instant::now();
    owner_db.kill();
    let report = wait_readiness(&sys, &sys.owner, 503).await;
    assert_eq!(report["checks"]["mongodb"]["status"], "down", "{report}");
    assert_eq!(report["code"], "not_ready", "{report}");
    let during = Client::default()
        .send(
            Method::GET,
            &format!("{}/api/owners/bookings", sys.owner),
            Some(&owner.token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        during.status(),
        Some(503),
        "an API call while the database is down: {during:?}"
    );
    assert_unavailable_is_retryable_and_logged(&sys, &sys.owner, "owner-service", &owner.token)
        .await;
    let mut requests = booking_requests(&travelers, &pid, 8, 10);
    let mut answers = Burst::start(&sys.traveler, &requests, 8).answers().await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    let sent: i64 = before_a.values().map(|(_, h)| h).sum::<i64>() + acked.len() as i64;
    let arriving = requests.len();
    wait_on_topic("the requests", &brokers, &requests_topic, sent).await;
    let past_a = commits_past(
        &brokers,
        &owner_group,
        &requests_topic,
        &before_a,
        Duration::from_secs(3),
    )
    .await;
    owner_db.restart();
    let outage_a = stopped.elapsed();
    wait_readiness(&sys, &sys.owner, 200).await;
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    record_booking(&mut requests, &mut answers, 0, &travelers[0], &first);
    let verdict_a = verify_bookings(&sys, &owner, &pid, &travelers, &requests, &answers).await;

    // Phase B: traveler-service's database is stopped (as an operator
    // would) while decisions arrive.
    wait_consumed(&brokers, &traveler_group, &updates_topic).await;
    let before_b = watermarks(&brokers, &updates_topic);
    let stopped = Instant::now();
    traveler_db.stop();
    let report = wait_readiness(&sys, &sys.traveler, 503).await;
    assert_eq!(report["checks"]["mongodb"]["status"], "down", "{report}");
    let mut decided: BTreeMap<String, &str> = BTreeMap::new();
    let mut decisions_acked = 0;
    for (i, id) in acked.iter().enumerate() {
        let (action, status) = if i % 2 == 0 {
            ("approve", "ACCEPTED")
        } else {
            ("reject", "REJECTED")
        };
        let r = sys.decide(&owner, id, action, None).await;
        if r.status == 200 {
            decisions_acked += 1;
            decided.insert(id.clone(), status);
        }
    }
    let sent: i64 = before_b.values().map(|(_, h)| h).sum::<i64>() + decided.len() as i64;
    wait_on_topic("the decisions", &brokers, &updates_topic, sent).await;
    let past_b = commits_past(
        &brokers,
        &traveler_group,
        &updates_topic,
        &before_b,
        Duration::from_secs(3),
    )
    .await;
    traveler_db.restart();
    let outage_b = stopped.elapsed();
    wait_readiness(&sys, &sys.traveler, 200).await;
    let mut lost_b = 0;
    let mut dup_b = 0;
    let mut problems_b = Vec::new();
    for traveler in &travelers {
        let mine: BTreeSet<String> = traveler_bookings(&sys, traveler)
            .await
            .iter()
            .filter_map(|b| b["id"].as_str().map(str::to_string))
            .collect();
        let expected: Vec<(&String, &&str)> = decided
            .iter()
            .filter(|(id, _)| mine.contains(*id))
            .collect();
        let settled = eventually("the traveler sees every decision", RECOVERY, || async {
            let now = traveler_bookings(&sys, traveler).await;
            expected
                .iter()
                .all(|(id, status)| {
                    now.iter()
                        .any(|b| b["id"] == id.as_str() && b["status"] == **status)
                })
                .then_some(now)
        })
        .await;
        // Each notification is written just after its status: a moment more
        // (bounded, so a lost one is still counted as lost below).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let mut notes = sys.traveler_notifications(traveler).await;
        while tokio::time::Instant::now() < deadline
            && !expected
                .iter()
                .all(|(id, _)| notes.iter().any(|n| n["booking_id"] == id.as_str()))
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
            notes = sys.traveler_notifications(traveler).await;
        }
        let per_booking = count_by(&notes, "booking_id");
        for (id, _) in &expected {
            match per_booking.get(*id).copied().unwrap_or(0) {
                1 => {}
                0 => {
                    lost_b += 1;
                    problems_b.push(format!("no notification for the decision on {id}"));
                }
                n => {
                    dup_b += n - 1;
                    problems_b.push(format!("{n} notifications for the decision on {id}"));
                }
            }
        }
        assert_eq!(settled.len(), mine.len());
    }
    let dead = dead_letters(env).await;

    Figures {
        id: "mongodb_stopped",
        order: 2,
        fault: "MongoDB stopped while events arrive",
        injection: format!(
            "SIGKILL of owner-service's private SecantusDB, {} bookings made and \
             published, restart on the same data after {:.1} s; then SIGTERM to \
             traveler-service's while {} decisions were published, restart after {:.1} s",
            acked.len(),
            outage_a.as_secs_f64(),
            decided.len(),
            outage_b.as_secs_f64()
        ),
        in_flight: arriving + acked.len(),
        acknowledged: acked.len() + decisions_acked,
        lost: verdict_a.lost + lost_b,
        duplicated: verdict_a.duplicated + dup_b,
        notes: format!(
            "readiness 503 while down, 200 after; API 503 while down; offsets committed \
             past unstored events: {}; dead letters: {dead}",
            past_a.len() + past_b.len()
        ),
    }
    .record();

    assert_eq!(acked.len(), arriving, "{}", answer_summary(&answers));
    assert_eq!(decisions_acked, acked.len(), "every decision answered 200");
    assert!(
        past_a.is_empty(),
        "owner-service committed past unstored events: {past_a:?}"
    );
    assert!(
        past_b.is_empty(),
        "traveler-service committed past unstored events: {past_b:?}"
    );
    assert!(verdict_a.problems.is_empty(), "{:#?}", verdict_a.problems);
    assert!(problems_b.is_empty(), "{problems_b:#?}");
    assert_eq!(dead, 0, "nothing is dead-lettered");
}

// ---- 3. SIGKILL in the middle of a burst ---------------------------------------------------

/// Producer side: traveler-service dies with requests in flight. Every 201 is
/// delivered (the outbox is in MongoDB); the requests that got no answer are
/// retried under their `Idempotency-Key`, as a careful client does, and
/// still make exactly one booking each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traveler_service_sigkilled_mid_burst_loses_and_duplicates_nothing() {
    let Some(servers) = real_servers("faults: traveler-service SIGKILL") else {
        return;
    };
    let (mut sys, owner, pid, travelers, requests) = burst_scene(&servers, "Lagos", 4, 12).await;

    let burst = Burst::start(&sys.traveler, &requests, 8);
    burst.wait_created(12).await;
    let mut children = sys.take_children();
    sigkill(&mut children[0]);
    let created_before_kill = burst.created.load(Ordering::SeqCst);
    let mut answers = burst.answers().await;
    let first_acked = answers.iter().filter_map(created_id).count();
    let unanswered = answers
        .iter()
        .filter(|a| matches!(a, Answer::Unanswered(_)))
        .count();
    let first_summary = answer_summary(&answers);

    // Restarted at once, inside the dead member's consumer-group session, as
    // Kubernetes does.
    respawn(&mut sys, "traveler-service", children.pop().unwrap()).await;
    let retried = retry_unanswered(&sys.traveler, &requests, &mut answers).await;

    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let (verdict, wire_extra, unpublished, dead) =
        settle(&sys, &owner, &pid, &travelers, &requests, &answers, &acked).await;

    Figures {
        id: "traveler_service_sigkill",
        order: 3,
        fault: "traveler-service (producer side) killed mid-burst",
        injection: format!(
            "SIGKILL of traveler-service after {created_before_kill} of {} concurrent POST \
             /bookings (8 at a time) got 201; restarted at once, inside its consumer-group \
             session (6 s); the {retried} unanswered requests retried with their \
             Idempotency-Key",
            requests.len()
        ),
        in_flight: requests.len(),
        acknowledged: first_acked,
        lost: verdict.lost + unpublished,
        duplicated: verdict.duplicated,
        notes: format!(
            "first answers: {first_summary}; after the retries: {}; booking.requested \
             copies on the topic beyond one: {wire_extra}; dead letters: {dead}",
            answer_summary(&answers)
        ),
    }
    .record();

    assert!(unanswered + first_acked <= requests.len());
    assert_retries_booked_all(&acked, &requests, &answers);
    assert_clean(&verdict, unpublished, dead);
}

/// Consumer side: owner-service dies while applying a burst of requests.
/// Its committed offsets never pass an effect it has not stored, and after
/// a restart it applies every booking exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_service_sigkilled_while_consuming_a_burst_applies_everything_once() {
    let Some(servers) = real_servers("faults: owner-service SIGKILL") else {
        return;
    };
    let (mut sys, owner, pid, travelers, requests) = burst_scene(&servers, "Faro", 3, 30).await;

    let burst = Burst::start(&sys.traveler, &requests, 8);
    let applied_at_kill = eventually("owner-service applying the burst", RECOVERY, || async {
        let n = owner_bookings(&sys, &owner, &pid).await.len();
        (n >= 10).then_some(n)
    })
    .await;
    let mut children = sys.take_children();
    sigkill(&mut children[1]);
    let created_at_kill = burst.created.load(Ordering::SeqCst);
    let answers = burst.answers().await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();

    // What the dead consumer committed, against what it had stored.
    let env = env_of(&sys);
    let (brokers, topic, group, offsets) = owner_requests_commits(env);
    let db = database(&env.servers.mongodb_uri, &env.owner_db).await;
    let (stored_ids, _) = stored(&db, "bookings").await;
    // Everything the travelers were promised is published before auditing.
    let messages = read_at_least(&brokers, &topic, acked.len()).await;
    let audit = audit_commits(&messages, &offsets, &stored_ids);

    // Restarted at once, inside the dead member's consumer-group session, as
    // Kubernetes does.
    respawn(&mut sys, "owner-service", children.remove(0)).await;
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let consumer = consumer_in_readiness(&sys, &sys.owner, &group).await;
    // The broker's coordinator hands the only live member every partition
    // once the dead one's session expires: no rejoin logic of ours.
    let held: Vec<&Value> = consumer["assigned_partitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["topic"] == topic.as_str())
        .collect();
    assert_eq!(
        held.len(),
        3,
        "the restarted consumer holds all of {topic}: {consumer}"
    );
    let (verdict, wire_extra, unpublished, dead) =
        settle(&sys, &owner, &pid, &travelers, &requests, &answers, &acked).await;

    Figures {
        id: "owner_service_sigkill",
        order: 4,
        fault: "owner-service (consumer side) killed mid-burst",
        injection: format!(
            "SIGKILL of owner-service once it had applied {applied_at_kill} bookings, with \
             {created_at_kill} of {} concurrent POST /bookings answered; restarted at once \
             in the same consumer group, inside the dead member's session (6 s)",
            requests.len()
        ),
        in_flight: requests.len(),
        acknowledged: acked.len(),
        lost: verdict.lost + unpublished + audit.committed_not_stored.len(),
        duplicated: verdict.duplicated,
        notes: format!(
            "stored at the kill: {}; committed past an unstored event: {}; stored but not \
             yet committed (applied again after the restart, without effect): {}; \
             booking.requested copies on the topic beyond one: {wire_extra}; dead letters: {dead}; \
             the restarted consumer, in /health/ready: {consumer}",
            stored_ids.len(),
            audit.committed_not_stored.len(),
            audit.stored_not_committed.len()
        ),
    }
    .record();

    assert_eq!(acked.len(), requests.len(), "{}", answer_summary(&answers));
    assert!(
        audit.committed_not_stored.is_empty(),
        "offsets committed past bookings never stored: {:?}",
        audit.committed_not_stored
    );
    assert_clean(&verdict, unpublished, dead);
}

// ---- 6. SIGTERM during load ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_drains_commits_and_exits_zero() {
    let Some(servers) = real_servers("faults: SIGTERM during load") else {
        return;
    };
    let (mut sys, owner, pid, travelers, requests) = burst_scene(&servers, "Sintra", 4, 15).await;

    let burst = Burst::start(&sys.traveler, &requests, 10);
    burst.wait_created(15).await;
    let mut children = sys.take_children();
    for child in &children {
        sigterm(child);
    }
    let created_at_signal = burst.created.load(Ordering::SeqCst);
    let signalled = Instant::now();
    let statuses = tokio::task::spawn_blocking(move || {
        children
            .iter_mut()
            .map(|c| wait_exit(c, Duration::from_secs(60)))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let stop_time = signalled.elapsed();
    let mut answers = burst.answers().await;
    let first_summary = answer_summary(&answers);
    let first_acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    let server_errors = answers
        .iter()
        .filter(|a| a.status().is_some_and(|s| s >= 500))
        .count();

    // Both processes are gone: audit what they left behind.
    let env = env_of(&sys);
    let (brokers, topic, _, offsets) = owner_requests_commits(env);
    let owner_db = database(&env.servers.mongodb_uri, &env.owner_db).await;
    let traveler_db = database(&env.servers.mongodb_uri, &env.traveler_db).await;
    let (owner_stored, owner_pending) = stored(&owner_db, "bookings").await;
    let (_, traveler_pending) = stored(&traveler_db, "bookings").await;
    let messages = read_all(&brokers, &topic).await;
    let audit = audit_commits(&messages, &offsets, &owner_stored);
    let (wire_extra_at_exit, unpublished_at_exit) = wire_copies(env, &first_acked).await;

    // Restart; careful clients retry what got no answer.
    let env = sys.env.take().unwrap();
    drop(sys);
    let sys = System::restart(env).await;
    let retried = retry_unanswered(&sys.traveler, &requests, &mut answers).await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let verdict = verify_bookings(&sys, &owner, &pid, &travelers, &requests, &answers).await;
    let env = env_of(&sys);
    let dead = dead_letters(env).await;

    let exits: Vec<String> = statuses
        .iter()
        .map(|s| match s {
            Ok(s) => s.to_string(),
            Err(e) => e.clone(),
        })
        .collect();
    Figures {
        id: "sigterm_during_load",
        order: 7,
        fault: "SIGTERM during load",
        injection: format!(
            "SIGTERM to both services after {created_at_signal} of {} concurrent POST \
             /bookings (10 at a time) got 201; both exited in {:.1} s; restarted; the \
             {retried} unanswered requests retried with their Idempotency-Key",
            requests.len(),
            stop_time.as_secs_f64()
        ),
        in_flight: requests.len(),
        acknowledged: first_acked.len(),
        lost: verdict.lost + unpublished_at_exit + audit.committed_not_stored.len(),
        duplicated: verdict.duplicated + wire_extra_at_exit,
        notes: format!(
            "exit: {}; first answers: {first_summary}; at exit: events left in the outbox \
             {}, 201s not yet published {unpublished_at_exit}, stored but uncommitted {}, \
             committed but unstored {}; dead letters: {dead}",
            exits.join(" / "),
            traveler_pending + owner_pending,
            audit.stored_not_committed.len(),
            audit.committed_not_stored.len()
        ),
    }
    .record();

    assert!(
        statuses
            .iter()
            .all(|s| s.as_ref().is_ok_and(|s| s.success())),
        "exit statuses {exits:?}"
    );
    assert_eq!(
        server_errors, 0,
        "no 5xx while shutting down: {first_summary}"
    );
    assert_eq!(
        traveler_pending + owner_pending,
        0,
        "the relays drained the outbox"
    );
    assert_eq!(
        unpublished_at_exit, 0,
        "every 201 was published before exit"
    );
    assert_eq!(wire_extra_at_exit, 0, "nothing published twice");
    assert!(
        audit.committed_not_stored.is_empty() && audit.stored_not_committed.is_empty(),
        "offsets at exit must match what owner-service stored: {audit:?}"
    );
    assert_retries_booked_all(&acked, &requests, &answers);
    assert!(verdict.problems.is_empty(), "{:#?}", verdict.problems);
    assert_eq!(dead, 0, "nothing is dead-lettered");
}

// ---- 4. The same event delivered twice or more -------------------------------------------------

/// Everything a client can see of the system, view by view.
async fn snapshot(
    sys: &System,
    owner: &support::User,
    travelers: &[support::User],
    properties: &[String],
) -> BTreeMap<String, Value> {
    // (view, URL, token), in the order the views are read.
    let mut wanted: Vec<(String, String, &str)> = Vec::new();
    for list in ["bookings", "properties", "notifications"] {
        wanted.push((
            format!("owner {list}"),
            format!("{}/api/owners/{list}", sys.owner),
            &owner.token,
        ));
    }
    for (i, t) in travelers.iter().enumerate() {
        for list in ["bookings", "notifications"] {
            wanted.push((
                format!("traveler {i} {list}"),
                format!("{}/api/travelers/{list}", sys.traveler),
                &t.token,
            ));
        }
    }
    for p in properties {
        wanted.push((
            format!("catalog {p}"),
            format!("{}/api/travelers/properties/{p}", sys.traveler),
            &travelers[0].token,
        ));
    }
    let mut views = BTreeMap::new();
    for (view, url, token) in wanted {
        views.insert(view, sys.http.get(&url, Some(token)).await.expect(200));
    }
    views
}

/// Items of the single array member of a view (its list), if it has one.
fn items(view: &Value) -> Option<&Vec<Value>> {
    view.as_object()?.values().find_map(Value::as_array)
}

/// `event_id`s on a topic with their number of copies.
fn event_ids(messages: &[test_support::ReadMessage]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in messages {
        let id = serde_json::from_slice::<Value>(&m.value)
            .ok()
            .and_then(|v| v["event_id"].as_str().map(str::to_string))
            .unwrap_or_else(|| "<not an event>".into());
        *out.entry(id).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_offsets_and_duplicated_publishes_have_one_effect() {
    let Some(servers) = real_servers("faults: duplicate delivery") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let owner = sys.owner_signup("Olga").await;
    let p1 = sys.create_property_id(&owner, "Porto").await;
    let p2 = sys.create_property_id(&owner, "Braga").await;
    sys.update_property(&owner, &p1, json!({"price_per_night_cents": 12000}))
        .await
        .expect(200);
    let travelers = vec![
        sys.traveler_signup("Tom").await,
        sys.traveler_signup("Tina").await,
    ];
    for t in &travelers {
        sys.wait_catalog(t, &p1, 2).await;
        sys.wait_catalog(t, &p2, 1).await;
    }
    // Every kind of event: requests, all decisions, both cancellation paths,
    // property upserts.
    let mut ids = Vec::new();
    for i in 0..6 {
        let (t, p) = (&travelers[i % 2], if i < 3 { &p1 } else { &p2 });
        let b = sys.book(t, p, 10 + 4 * i as i64, 2).await;
        ids.push(b["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        sys.wait_owner_sees(&owner, id).await;
    }
    let cancel_as_traveler = |i: usize| {
        let url = format!("{}/api/travelers/bookings/{}/cancel", sys.traveler, ids[i]);
        let token = travelers[i % 2].token.clone();
        let http = sys.http.clone();
        async move {
            http.put(&url, Some(&token), Some(json!({"reason": "plans changed"})))
                .await
                .expect(202)
        }
    };
    sys.decide(&owner, &ids[0], "approve", None)
        .await
        .expect(200);
    sys.decide(&owner, &ids[1], "approve", None)
        .await
        .expect(200);
    sys.decide(&owner, &ids[1], "cancel", Some(json!({"reason": "leak"})))
        .await
        .expect(200);
    sys.decide(&owner, &ids[2], "reject", Some(json!({"reason": "no"})))
        .await
        .expect(200);
    cancel_as_traveler(3).await;
    sys.decide(&owner, &ids[5], "approve", None)
        .await
        .expect(200);
    sys.wait_traveler_status(&travelers[1], &ids[5], "ACCEPTED")
        .await;
    cancel_as_traveler(5).await;
    let expected = [
        "ACCEPTED",
        "CANCELLED",
        "REJECTED",
        "CANCELLED",
        "PENDING",
        "CANCELLED",
    ];
    for (i, status) in expected.iter().enumerate() {
        sys.wait_traveler_status(&travelers[i % 2], &ids[i], status)
            .await;
    }
    eventually(
        "owner notified of both cancellations",
        PROPAGATION,
        || async {
            let notes = sys.owner_notifications(&owner).await;
            (notes
                .iter()
                .filter(|n| n["kind"] == "cancellation_requested")
                .count()
                == 2)
                .then_some(())
        },
    )
    .await;

    let env = env_of(&sys);
    let brokers = env.servers.kafka_brokers.clone();
    let prefix = env.topic_prefix.clone();
    let consumed_by = [
        ("booking-requests", "owner-service"),
        ("booking-updates", "traveler-service"),
        ("property-listings", "traveler-service"),
    ];
    for (topic, service) in consumed_by {
        wait_consumed(&brokers, &format!("{prefix}.{service}"), &env.topic(topic)).await;
    }
    let properties = [p1.clone(), p2.clone()];
    let before = snapshot(&sys, &owner, &travelers, &properties).await;
    let mut on_topics_before = BTreeMap::new();
    for (topic, _) in consumed_by {
        on_topics_before.insert(topic, read_all(&brokers, &env.topic(topic)).await);
    }

    // Duplicated publish: every message on every topic written twice more,
    // byte for byte, headers included.
    const COPIES: usize = 2;
    let mut republished = 0;
    for (topic, messages) in &on_topics_before {
        for m in messages {
            for _ in 0..COPIES {
                produce(
                    &brokers,
                    &env.topic(topic),
                    m.key.as_deref().unwrap_or_default(),
                    &m.value,
                    &m.headers,
                )
                .await
                .expect("republish");
                republished += 1;
            }
        }
    }
    // Replayed offsets: one more process of each service in a new consumer
    // group reads every topic again from the start.
    let mut replayed = 0;
    let mut replay_groups = Vec::new();
    let mut replay_children = Vec::new();
    for service in ["owner-service", "traveler-service"] {
        let group = format!("{prefix}.replay.{service}");
        let (child, url) = env.spawn_with(service, free_port(), &[("KAFKA_GROUP_ID", &group)]);
        replay_children.push(child);
        replay_groups.push((service, group, url));
    }
    for child in replay_children {
        sys.adopt(child);
    }
    for (_, _, url) in &replay_groups {
        support::wait_until_ready(&sys.http, url).await;
    }
    let env = env_of(&sys);
    for (topic, service) in consumed_by {
        wait_consumed(&brokers, &format!("{prefix}.{service}"), &env.topic(topic)).await;
        let group = &replay_groups
            .iter()
            .find(|(s, _, _)| *s == service)
            .unwrap()
            .1;
        wait_consumed(&brokers, group, &env.topic(topic)).await;
        replayed += on_topics_before[topic].len() * (1 + COPIES);
    }

    let after = snapshot(&sys, &owner, &travelers, &properties).await;
    let mut lost = 0;
    let mut duplicated = 0;
    let mut problems = Vec::new();
    for (view, was) in &before {
        let now = &after[view];
        if now == was {
            continue;
        }
        match (items(was), items(now)) {
            (Some(a), Some(b)) if b.len() > a.len() => duplicated += b.len() - a.len(),
            (Some(a), Some(b)) if b.len() < a.len() => lost += a.len() - b.len(),
            _ => {}
        }
        problems.push(format!("{view} changed:\n  before {was}\n  after  {now}"));
    }
    let mut new_events = 0;
    for (topic, was) in &on_topics_before {
        let now = event_ids(&read_all(&brokers, &env.topic(topic)).await);
        let was = event_ids(was);
        for (id, n) in &now {
            match was.get(id) {
                Some(m) if *n == m * (1 + COPIES) => {}
                Some(m) => {
                    problems.push(format!("{topic}: {id} has {n} copies, expected {}", m * 3))
                }
                None => {
                    new_events += n;
                    problems.push(format!("{topic}: new event {id} after the replays"));
                }
            }
        }
    }
    duplicated += new_events;
    let dead = dead_letters(env).await;

    Figures {
        id: "duplicate_delivery",
        order: 5,
        fault: "The same event delivered again (duplicated publish, replayed offsets)",
        injection: format!(
            "every message on the 3 topics written {COPIES} more times byte for byte \
             ({republished} messages); one more owner-service and traveler-service in new \
             consumer groups re-reading all topics from offset 0"
        ),
        in_flight: republished + replayed,
        acknowledged: republished,
        lost,
        duplicated,
        notes: format!(
            "deliveries replayed to the new groups: {replayed}; new events caused: \
             {new_events}; views compared: {}; dead letters: {dead}",
            before.len()
        ),
    }
    .record();

    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(dead, 0, "redeliveries are not poison");
}

// ---- 5. Poison messages ----------------------------------------------------------------------

/// A poison message and what the consumer should say about it.
struct Poison {
    name: &'static str,
    topic: String,
    key: Vec<u8>,
    value: Vec<u8>,
    /// `dlq.reason`, or `None` when the message is harmless and must be
    /// skipped without effect (either way the consumer goes on).
    reason: Option<&'static str>,
    at: Option<(i32, i64)>,
}

/// A valid envelope around `data`, as the services write it.
fn envelope(event_type: &str, data: Value) -> Value {
    json!({
        "event_id": uuid::Uuid::now_v7().to_string(),
        "schema_version": 1,
        "occurred_at": "2030-01-01T00:00:00.000Z",
        "source": "faults-test",
        "event_type": event_type,
        "data": data,
    })
}

/// The variants every topic gets: bad JSON, a future schema version, a
/// missing field, an unknown event type, and a value of about 1 MB.
fn poison_set(topic: &str, key: &[u8], valid: &Value, field: &str, big: Value) -> Vec<Poison> {
    let mut future = valid.clone();
    future["schema_version"] = json!(2);
    let mut missing = valid.clone();
    missing["data"].as_object_mut().unwrap().remove(field);
    let mut unknown_type = valid.clone();
    unknown_type["event_type"] = json!("booking.teleported");
    let p = |name, value: Vec<u8>, reason| Poison {
        name,
        topic: topic.to_string(),
        key: key.to_vec(),
        value,
        reason: Some(reason),
        at: None,
    };
    vec![
        p(
            "invalid JSON",
            b"\xff\xfe{\"event_id\": not json".to_vec(),
            "malformed_envelope",
        ),
        p(
            "unknown schema version",
            future.to_string().into_bytes(),
            "unsupported_schema_version",
        ),
        p(
            "missing field",
            missing.to_string().into_bytes(),
            "invalid_data",
        ),
        p(
            "unknown event type",
            unknown_type.to_string().into_bytes(),
            "unknown_event_type",
        ),
        p("1 MB value", big.to_string().into_bytes(), "too_large"),
    ]
}

const ONE_MB: usize = 1024 * 1024;

/// Pads `envelope`'s `data.member` so the whole value is `size` bytes.
fn padded(mut envelope: Value, member: &str, size: usize) -> Value {
    envelope["data"][member] = json!("");
    let base = envelope.to_string().len();
    envelope["data"][member] = json!("x".repeat(size.saturating_sub(base)));
    envelope
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_with_reasons_and_consumers_go_on() {
    let Some(servers) = real_servers("faults: poison messages") else {
        return;
    };
    let sys = System::processes(&servers).await;
    let (owner, pid, travelers) = cast(&sys, "Porto", 1).await;
    let traveler = &travelers[0];
    let b1 = sys.book(traveler, &pid, 10, 2).await;
    let b2 = sys.book(traveler, &pid, 20, 2).await;
    let (b1, b2) = (
        b1["id"].as_str().unwrap().to_string(),
        b2["id"].as_str().unwrap().to_string(),
    );
    sys.wait_owner_sees(&owner, &b1).await;
    sys.wait_owner_sees(&owner, &b2).await;
    let env = env_of(&sys);
    let brokers = env.servers.kafka_brokers.clone();
    let (requests, updates, listings) = (
        env.topic("booking-requests"),
        env.topic("booking-updates"),
        env.topic("property-listings"),
    );
    let ghost = uuid::Uuid::now_v7().to_string();
    let now = "2030-01-01T00:00:00.000Z";

    // booking-requests, keyed like b1 so b1's cancellation comes after them.
    let requested = |booking: &str, property: &str| {
        envelope(
            "booking.requested",
            json!({
                "booking_id": booking, "property_id": property, "owner_id": owner.id,
                "traveler_id": traveler.id, "check_in": "2031-01-01", "check_out": "2031-01-03",
                "nights": 2, "guests": 2, "total_price_cents": 22500, "currency": "EUR",
                "status": "PENDING", "created_at": now,
            }),
        )
    };
    let cancellation = |booking: &str| {
        envelope(
            "booking.cancellation_requested",
            json!({"booking_id": booking, "traveler_id": traveler.id, "reason": null,
                   "requested_at": now}),
        )
    };
    let mut poisons = poison_set(
        &requests,
        b1.as_bytes(),
        &requested(&ghost, &pid),
        "owner_id",
        // A valid cancellation of b2, but too large to be read: b2 must stay PENDING.
        padded(cancellation(&b2), "reason", ONE_MB),
    );
    let extra = |name, topic: &str, key: &str, value: Value, reason| Poison {
        name,
        topic: topic.to_string(),
        key: key.as_bytes().to_vec(),
        value: value.to_string().into_bytes(),
        reason,
        at: None,
    };
    poisons.push(extra(
        "booking.requested for a property that does not exist",
        &requests,
        &b1,
        requested(&ghost, &uuid::Uuid::now_v7().to_string()),
        Some("unknown_property"),
    ));
    // Not poison: kept (parked) until its booking arrives, which this
    // one's never does; checked at the end.
    poisons.push(extra(
        "booking.cancellation_requested for a booking that does not exist (parked)",
        &requests,
        &b1,
        cancellation(&ghost),
        None,
    ));

    // booking-updates, keyed like b1 too.
    let status_changed = |booking: &str, status: &str| {
        envelope(
            "booking.status_changed",
            json!({"booking_id": booking, "property_id": pid, "owner_id": owner.id,
                   "traveler_id": traveler.id, "status": status, "previous_status": "PENDING",
                   "reason": null, "changed_by": {"role": "owner", "id": owner.id},
                   "version": 1, "changed_at": now}),
        )
    };
    poisons.extend(poison_set(
        &updates,
        b1.as_bytes(),
        &status_changed(&b2, "REJECTED"),
        "version",
        // A valid rejection of b2, but too large: the traveler must not see it.
        padded(status_changed(&b2, "REJECTED"), "reason", ONE_MB),
    ));
    poisons.push(extra(
        "booking.status_changed for a booking that does not exist",
        &updates,
        &b1,
        status_changed(&ghost, "ACCEPTED"),
        Some("unknown_booking"),
    ));

    // property-listings, keyed like the property.
    let upserted = |version: u64| {
        envelope(
            "property.upserted",
            json!({"property_id": pid, "owner_id": owner.id, "name": "Poisoned",
                   "city": "Porto", "country": "PT", "address": null, "description": null,
                   "price_per_night_cents": 1, "cleaning_fee_cents": 0, "service_fee_cents": 0,
                   "currency": "EUR", "max_guests": 4, "bedrooms": null, "bathrooms": null,
                   "amenities": [], "active": true, "version": version,
                   "created_at": now, "updated_at": now}),
        )
    };
    poisons.extend(poison_set(
        &listings,
        pid.as_bytes(),
        &upserted(99),
        "owner_id",
        // A valid snapshot with a newer version, but too large: not applied.
        padded(upserted(99), "description", ONE_MB),
    ));
    let phantom = uuid::Uuid::now_v7().to_string();
    // A compacted topic may hold only the delisting of a property a new
    // reader never saw, so this one is harmless: no listing appears, and
    // the consumer goes on whether it skips it or dead-letters it.
    poisons.push(extra(
        "property.delisted for a property that does not exist",
        &listings,
        &pid,
        envelope(
            "property.delisted",
            json!({"property_id": phantom, "owner_id": owner.id, "version": 7,
                   "delisted_at": now}),
        ),
        None,
    ));

    let mut size_note = String::new();
    let mut accepted = 0;
    for p in &mut poisons {
        let headers = vec![
            ("x-poison".to_string(), p.name.as_bytes().to_vec()),
            ("origin".to_string(), b"faults-test".to_vec()),
        ];
        match produce(&brokers, &p.topic, &p.key, &p.value, &headers).await {
            Ok(at) => {
                p.at = Some(at);
                accepted += 1;
            }
            Err(e) if p.value.len() >= ONE_MB => {
                // The test broker's limit, not the system's: report it and use
                // the largest size it takes, still over the 256 KiB limit.
                size_note = format!("the broker refused {} bytes ({e}); ", p.value.len());
                let smaller: Value = serde_json::from_slice(&p.value).unwrap();
                let member = if p.topic == listings {
                    "description"
                } else {
                    "reason"
                };
                p.value = padded(smaller, member, 300 * 1024).to_string().into_bytes();
                p.at = Some(
                    produce(&brokers, &p.topic, &p.key, &p.value, &headers)
                        .await
                        .expect("a 300 KiB message"),
                );
                accepted += 1;
            }
            Err(e) => panic!("cannot write poison {}: {e}", p.name),
        }
    }

    // Good messages after the poison, on the same partitions.
    let cancelled = sys
        .traveler_put(
            traveler,
            &format!("bookings/{b1}/cancel"),
            Some(json!({"reason": "after the poison"})),
        )
        .await;
    let updated = sys
        .owner_put(
            &owner,
            &format!("properties/{pid}"),
            Some(json!({"price_per_night_cents": 15000})),
        )
        .await;
    let good_acked = [cancelled.status == 202, updated.status == 200]
        .iter()
        .filter(|ok| **ok)
        .count();
    let seen = sys.wait_traveler_status(traveler, &b1, "CANCELLED").await;
    let listed = sys.wait_catalog(traveler, &pid, 2).await;

    // Every poison message in its topic's DLQ, once, as it was.
    let mut problems = Vec::new();
    let mut missing = 0;
    let mut extra_copies = 0;
    let mut dead_by_topic = BTreeMap::new();
    for topic in [&requests, &updates, &listings] {
        let expected = poisons
            .iter()
            .filter(|p| &p.topic == topic && p.reason.is_some())
            .count();
        let dlq = read_at_least(&brokers, &format!("{topic}.dlq"), expected).await;
        dead_by_topic.insert(topic.clone(), dlq);
    }
    for p in &poisons {
        let dlq = &dead_by_topic[&p.topic];
        let copies: Vec<_> = dlq
            .iter()
            .filter(|m| m.header("x-poison").as_deref() == Some(p.name))
            .collect();
        let Some(reason) = p.reason else {
            if let Some(m) = copies.first() {
                problems.push(format!(
                    "note: {} was dead-lettered as {:?}",
                    p.name,
                    m.header("dlq.reason")
                ));
            }
            continue;
        };
        if copies.is_empty() {
            missing += 1;
            problems.push(format!("{} on {} is not in the DLQ", p.name, p.topic));
            continue;
        }
        extra_copies += copies.len() - 1;
        let m = copies[0];
        let (partition, offset) = p.at.unwrap();
        let checks = [
            ("key", m.key.as_deref() == Some(&p.key[..])),
            ("value", m.value == p.value),
            (
                "origin header",
                m.header("origin").as_deref() == Some("faults-test"),
            ),
            (
                "dlq.reason",
                m.header("dlq.reason").as_deref() == Some(reason),
            ),
            (
                "dlq.error",
                m.header("dlq.error").is_some_and(|e| !e.is_empty()),
            ),
            (
                "dlq.original.topic",
                m.header("dlq.original.topic").as_deref() == Some(p.topic.as_str()),
            ),
            (
                "dlq.original.partition",
                m.header("dlq.original.partition") == Some(partition.to_string()),
            ),
            (
                "dlq.original.offset",
                m.header("dlq.original.offset") == Some(offset.to_string()),
            ),
            ("dlq.failed_at", m.header("dlq.failed_at").is_some()),
        ];
        for (what, ok) in checks {
            if !ok {
                problems.push(format!(
                    "{} on {}: wrong {what} in the DLQ (reason {:?}, error {:?})",
                    p.name,
                    p.topic,
                    m.header("dlq.reason"),
                    m.header("dlq.error")
                ));
            }
        }
    }
    // No poison had an effect.
    let b2_owner = sys.wait_owner_sees(&owner, &b2).await;
    let b2_traveler = sys
        .traveler_get(traveler, &format!("bookings/{b2}"))
        .await
        .expect(200);
    if b2_owner["status"] != "PENDING" || b2_traveler["booking"]["status"] != "PENDING" {
        problems.push(format!(
            "a too-large event was applied to b2: owner {}, traveler {}",
            b2_owner["status"], b2_traveler["booking"]["status"]
        ));
    }
    let ghost_at_owner = sys
        .owner_get(&owner, &format!("bookings/{ghost}"))
        .await
        .status;
    let phantom_listed = sys
        .traveler_get(traveler, &format!("properties/{phantom}"))
        .await
        .status;
    if ghost_at_owner != 404 || phantom_listed != 404 {
        problems.push(format!(
            "poison had an effect: ghost booking {ghost_at_owner}, phantom listing {phantom_listed}"
        ));
    }
    if listed["name"] == "Poisoned" || listed["version"].as_u64() != Some(2) {
        problems.push(format!("a poisoned snapshot reached the catalog: {listed}"));
    }
    if seen["status_reason"] != "after the poison" {
        problems.push(format!("b1 cancelled by something else: {seen}"));
    }
    let dead_total: usize = dead_by_topic.values().map(Vec::len).sum();

    let to_dead = poisons.iter().filter(|p| p.reason.is_some()).count();
    Figures {
        id: "poison_messages",
        order: 6,
        fault: "Poison messages on each topic",
        injection: format!(
            "{} messages written straight to the 3 topics (invalid JSON, schema_version 2, \
             missing field, unknown event type, {} bytes, events about a booking or property \
             that does not exist), then good messages on the same partitions",
            poisons.len(),
            poisons
                .iter()
                .filter(|p| p.name == "1 MB value")
                .map(|p| p.value.len())
                .max()
                .unwrap_or(0)
        ),
        in_flight: poisons.len() + 2,
        acknowledged: accepted + good_acked,
        lost: missing,
        duplicated: extra_copies,
        notes: format!(
            "{size_note}{to_dead} expected in the DLQs, {dead_total} there; the good \
             messages after them applied (b1 cancelled, catalog at version 2); \
             delisting of an unknown property: {}",
            if dead_by_topic[&listings].iter().any(|m| m
                .header("x-poison")
                .is_some_and(|h| h.starts_with("property.delisted")))
            {
                "dead-lettered"
            } else {
                "skipped without effect"
            }
        ),
    }
    .record();

    assert_eq!(good_acked, 2, "cancel {cancelled:?}, update {updated:?}");
    let problems: Vec<_> = problems
        .into_iter()
        .filter(|p| !p.starts_with("note:"))
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(dead_total, to_dead, "exactly the poison is in the DLQs");
    let parked = mongodb::Client::with_uri_str(&env.servers.mongodb_uri)
        .await
        .unwrap()
        .database(&env.owner_db)
        .collection::<bson::Document>("parked_cancellations")
        .count_documents(bson::doc! {"booking_id": &ghost})
        .await
        .unwrap();
    assert_eq!(
        parked, 1,
        "the cancellation of an unknown booking is parked, not lost"
    );
}

// ---- 7. Concurrent decision storms from two replicas -----------------------------------------

/// One request of a storm: booking index, what it is, URL, token, body,
/// and how many milliseconds after the start of the storm it is sent.
type Planned = (usize, &'static str, String, String, Option<Value>, u64);

/// Sends every planned PUT at once (or at its offset); the answers come
/// back in plan order.
async fn storm(client: &Client, plan: Vec<Planned>) -> Vec<(usize, &'static str, Answer)> {
    futures::future::join_all(plan.into_iter().map(|(n, what, url, token, body, after)| {
        let client = client.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(after)).await;
            let a = client
                .send(Method::PUT, &url, Some(&token), body.as_ref(), &[])
                .await;
            (n, what, a)
        }
    }))
    .await
}

/// The 409 codes a losing decision may get.
const LOSING: [&str; 3] = ["booking_changed", "invalid_transition", "dates_unavailable"];

/// Owner decisions that answered 200, per booking: (version, status) of the
/// booking they returned. Anything but 200 or a losing 409 is a problem.
fn tally(
    answers: &[(usize, &'static str, Answer)],
    acks: &mut BTreeMap<usize, Vec<(u64, String, &'static str)>>,
    traveler_asked: &mut BTreeSet<usize>,
    problems: &mut Vec<String>,
) -> usize {
    let mut unavailable = 0;
    for (n, what, a) in answers {
        match (*what, a) {
            ("traveler cancel", Answer::Ok(202, _)) => {
                traveler_asked.insert(*n);
            }
            ("traveler cancel", Answer::Refused(409, body)) if body["code"] == "booking_final" => {}
            (_, Answer::Ok(200, body)) if *what != "traveler cancel" => {
                acks.entry(*n).or_default().push((
                    body["booking"]["version"].as_u64().unwrap_or(0),
                    body["booking"]["status"].as_str().unwrap_or("").to_string(),
                    what,
                ))
            }
            (_, Answer::Refused(409, body))
                if *what != "traveler cancel"
                    && LOSING.contains(&body["code"].as_str().unwrap_or_default()) => {}
            _ => {
                if a.status() == Some(503) {
                    unavailable += 1;
                }
                problems.push(format!("booking {n} {what}: unexpected {a:?}"));
            }
        }
    }
    unavailable
}

/// ACCEPTED bookings of the owner whose stays overlap on one property.
async fn overlapping_accepted(sys: &System, owner: &support::User) -> Vec<(String, String)> {
    let url = format!("{}/api/owners/bookings?status=ACCEPTED", sys.owner);
    let accepted = sys.http.list_all(&url, &owner.token, "bookings").await;
    let mut out = Vec::new();
    for (i, a) in accepted.iter().enumerate() {
        for b in &accepted[i + 1..] {
            let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
            if a["property_id"] == b["property_id"]
                && s(a, "check_in") < s(b, "check_out")
                && s(b, "check_in") < s(a, "check_out")
            {
                out.push((s(a, "id"), s(b, "id")));
            }
        }
    }
    out
}

/// Storms of decisions on the same bookings from two owner-service processes
/// (and the travelers). A booking's status events must form one chain —
/// versions 1, 2, … each starting where the previous ended — with exactly one
/// event per acknowledged decision: two decisions can never both win the
/// same version, which is what "exactly one transition" means when
/// ACCEPTED → CANCELLED is a legal second step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decision_storms_from_two_replicas_make_exactly_one_transition_per_booking() {
    let Some(servers) = real_servers("faults: decision storms") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let second = sys.add_owner_replica().await;
    let replicas = [sys.owner.clone(), second];
    let owner = sys.owner_signup("Olga").await;
    let travelers = vec![
        sys.traveler_signup("Tom").await,
        sys.traveler_signup("Tina").await,
    ];
    let mut properties = Vec::new();
    for city in ["Aveiro", "Viseu", "Guarda"] {
        let pid = sys.create_property_id(&owner, city).await;
        for t in &travelers {
            sys.wait_catalog(t, &pid, 1).await;
        }
        properties.push(pid);
    }
    // Per property, 12 stays in two groups of 6 on 4 slots each: bookings of
    // a slot share their nights, and each slot overlaps its neighbours.
    let mut bookings: Vec<(String, usize)> = Vec::new(); // (id, traveler)
    for pid in &properties {
        for i in 0..12 {
            let t = i % 2;
            let slot = (i % 4) as i64;
            // Storm A's half and storm B's half on different weeks.
            let first = if i < 6 { 20 } else { 60 };
            let b = sys.book(&travelers[t], pid, first + 2 * slot, 3).await;
            bookings.push((b["id"].as_str().unwrap().to_string(), t));
        }
    }
    for (id, _) in &bookings {
        sys.wait_owner_sees(&owner, id).await;
    }
    let client = Client::default();
    let mut problems = Vec::new();
    let mut acks: BTreeMap<usize, Vec<(u64, String, &'static str)>> = BTreeMap::new();
    let mut traveler_asked = BTreeSet::new();
    let mut unavailable = 0;
    let url = |replica: &str, id: &str, action: &str| {
        format!("{replica}/api/owners/bookings/{id}/{action}")
    };

    // Storm A: half of each property's bookings approved on both replicas at
    // once (overlapping stays race for the property's lock), while storm B
    // sends the other half approve, reject and cancel on both replicas, in a
    // different order per booking, rejections and cancellations 0 to 2 s
    // after the approvals so that either kind can win. (An approval may win
    // and a cancellation then legally end it: the chain check below tells
    // that from two winners of one step.)
    let mixed = |n: usize, id: &str| -> Vec<Planned> {
        (0..6)
            .map(|k| {
                let action = ["approve", "reject", "cancel"][(k + n) % 3];
                (
                    n,
                    action,
                    url(&replicas[(k + n / 3) % 2], id, action),
                    owner.token.clone(),
                    (action != "approve").then(|| json!({"reason": "storm"})),
                    if action == "approve" {
                        0
                    } else {
                        [0, 200, 800, 2000][n % 4]
                    },
                )
            })
            .collect()
    };
    let (mut plan_a, mut plan_b): (Vec<Planned>, Vec<Planned>) = (Vec::new(), Vec::new());
    for (n, (id, _)) in bookings.iter().enumerate() {
        if n % 12 < 6 {
            for k in 0..2 {
                let replica = &replicas[(n + k) % 2];
                plan_a.push((
                    n,
                    "approve",
                    url(replica, id, "approve"),
                    owner.token.clone(),
                    None,
                    0,
                ));
            }
        } else {
            plan_b.extend(mixed(n, id));
        }
    }
    let (storm_a, storm_b) = futures::join!(storm(&client, plan_a), storm(&client, plan_b));
    unavailable += tally(&storm_a, &mut acks, &mut traveler_asked, &mut problems);
    unavailable += tally(&storm_b, &mut acks, &mut traveler_asked, &mut problems);
    let overlaps_a = overlapping_accepted(&sys, &owner).await;
    // Bookings still PENDING (their approvals lost to overlapping ones, or
    // were refused) get a mixed storm of their own.
    let plan: Vec<Planned> = bookings
        .iter()
        .enumerate()
        .filter(|(n, _)| !acks.contains_key(n))
        .flat_map(|(n, (id, _))| mixed(n, id))
        .collect();
    let storm_m = storm(&client, plan).await;
    unavailable += tally(&storm_m, &mut acks, &mut traveler_asked, &mut problems);
    let overlaps_b = overlapping_accepted(&sys, &owner).await;

    // Storm C: each booking now ACCEPTED cancelled by the owner on both
    // replicas and by its traveler (through Kafka), the owner's 0 to 600 ms
    // after the traveler's so that either can win.
    let accepted: Vec<usize> = bookings
        .iter()
        .enumerate()
        .filter(|(n, _)| {
            acks.get(n)
                .and_then(|a| a.iter().max_by_key(|x| x.0))
                .is_some_and(|x| x.1 == "ACCEPTED")
        })
        .map(|(n, _)| n)
        .collect();
    let mut plan: Vec<Planned> = Vec::new();
    for &n in &accepted {
        let (id, t) = &bookings[n];
        for replica in &replicas {
            plan.push((
                n,
                "owner cancel",
                url(replica, id, "cancel"),
                owner.token.clone(),
                Some(json!({"reason": "owner storm"})),
                [0, 150, 300, 600][n % 4],
            ));
        }
        plan.push((
            n,
            "traveler cancel",
            format!("{}/api/travelers/bookings/{id}/cancel", sys.traveler),
            travelers[*t].token.clone(),
            Some(json!({"reason": "traveler storm"})),
            0,
        ));
    }
    let storm_c = storm(&client, plan).await;
    unavailable += tally(&storm_c, &mut acks, &mut traveler_asked, &mut problems);

    // Let every effect land: the travelers' cancellations are answered by
    // owner-service's consumer, and its relay publishes every decision.
    for &n in &traveler_asked {
        let id = bookings[n].0.as_str();
        eventually(
            "owner-service handled the traveler's cancellation",
            RECOVERY,
            || async {
                sys.owner_notifications(&owner)
                    .await
                    .iter()
                    .any(|x| x["booking_id"] == id && x["kind"] == "cancellation_requested")
                    .then_some(())
            },
        )
        .await;
    }
    let env = env_of(&sys);
    let db = database(&env.servers.mongodb_uri, &env.owner_db).await;
    eventually("owner-service relayed every decision", RECOVERY, || async {
        (stored(&db, "bookings").await.1 == 0).then_some(())
    })
    .await;
    let updates = read_all(&env.servers.kafka_brokers, &env.topic("booking-updates")).await;
    let mut events: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for m in &updates {
        let v = m.json();
        events
            .entry(v["data"]["booking_id"].as_str().unwrap().to_string())
            .or_default()
            .push(v["data"].clone());
    }

    // Every booking's chain against what the clients were told.
    let url = format!("{}/api/owners/bookings", sys.owner);
    let owner_view = sys.http.list_all(&url, &owner.token, "bookings").await;
    let (mut lost, mut duplicated, mut single_first) = (0, 0, 0);
    let mut traveler_won = 0;
    for (n, (id, t)) in bookings.iter().enumerate() {
        let mut chain = events.remove(id).unwrap_or_default();
        chain.sort_by_key(|e| e["version"].as_u64());
        let mine = acks.get(&n).cloned().unwrap_or_default();
        let mut status = "PENDING".to_string();
        for (i, e) in chain.iter().enumerate() {
            let v = e["version"].as_u64().unwrap_or(0);
            if v != i as u64 + 1 || e["previous_status"] != status.as_str() {
                duplicated += 1;
                problems.push(format!(
                    "{id}: event v{v} {} → {} does not follow {status} (v{i})",
                    e["previous_status"], e["status"]
                ));
            }
            status = e["status"].as_str().unwrap_or_default().to_string();
            let by_owner = e["changed_by"]["role"] == "owner";
            let acked = mine.iter().filter(|a| a.0 == v).count();
            match (by_owner, acked) {
                (true, 1) | (false, 0) => {}
                (true, 0) => problems.push(format!("{id}: v{v} by the owner, never acknowledged")),
                (_, k) => {
                    duplicated += k.saturating_sub(1);
                    problems.push(format!("{id}: {k} decisions acknowledged as v{v}"));
                }
            }
            if !by_owner {
                traveler_won += 1;
                if !traveler_asked.contains(&n) || e["status"] != "CANCELLED" {
                    problems.push(format!("{id}: unexpected traveler event {e}"));
                }
            }
        }
        for (v, s, what) in &mine {
            let found = chain
                .iter()
                .any(|e| e["version"].as_u64() == Some(*v) && e["status"] == s.as_str());
            if !found {
                lost += 1;
                problems.push(format!(
                    "{id}: {what} acknowledged as v{v} {s}, no such event"
                ));
            }
        }
        if chain.is_empty() {
            problems.push(format!("{id}: no decision won"));
        } else if mine.iter().filter(|a| a.0 == 1).count() == 1
            || chain[0]["changed_by"]["role"] == "traveler"
        {
            single_first += 1;
        }
        let b = owner_view.iter().find(|b| b["id"] == id.as_str()).unwrap();
        if b["status"] != status.as_str() || b["version"].as_u64() != Some(chain.len() as u64) {
            problems.push(format!(
                "{id}: owner-service shows {} v{} after the chain ending {status} v{}",
                b["status"],
                b["version"],
                chain.len()
            ));
        }
        sys.wait_traveler_status(&travelers[*t], id, &status).await;
        let told = sys
            .traveler_notifications(&travelers[*t])
            .await
            .iter()
            .filter(|x| x["booking_id"] == id.as_str())
            .count();
        if told != chain.len() {
            if told > chain.len() {
                duplicated += told - chain.len();
            }
            problems.push(format!(
                "{id}: {told} notifications for {} transitions",
                chain.len()
            ));
        }
    }
    for (a, b) in overlaps_a.iter().chain(&overlaps_b) {
        problems.push(format!("overlapping ACCEPTED bookings {a} and {b}"));
    }
    let overlaps = overlaps_a.len() + overlaps_b.len();
    let dead = dead_letters(env).await;
    let ok = |answers: &[(usize, &str, Answer)]| {
        answers
            .iter()
            .filter(|(_, _, a)| matches!(a, Answer::Ok(..)))
            .count()
    };
    let won = |answers: &[(usize, &str, Answer)], what: &str| {
        answers
            .iter()
            .filter(|(_, w, a)| *w == what && matches!(a, Answer::Ok(200, _)))
            .count()
    };
    let in_flight = storm_a.len() + storm_b.len() + storm_m.len() + storm_c.len();

    Figures {
        id: "decision_storms",
        order: 8,
        fault: "Approve / reject / cancel storms from two owner-service processes",
        injection: format!(
            "{} PENDING bookings on 3 properties, overlapping stays: at the same moment half \
             approved on both replicas ({} requests) and the other half sent approve, reject \
             and cancel on both replicas ({} requests); those still PENDING sent approve, \
             reject and cancel on both replicas at once ({} requests); the {} then ACCEPTED \
             cancelled by the owner on both replicas and by the traveler at once ({} requests)",
            bookings.len(),
            storm_a.len(),
            storm_b.len(),
            storm_m.len(),
            accepted.len(),
            storm_c.len()
        ),
        in_flight,
        acknowledged: ok(&storm_a) + ok(&storm_b) + ok(&storm_m) + ok(&storm_c),
        lost,
        duplicated: duplicated + overlaps,
        notes: format!(
            "one first transition per booking: {single_first}/{}; approvals won: {} + {} + {}; \
             cancellation races won by the owner {} and the traveler {traveler_won}; \
             overlapping ACCEPTED pairs: {overlaps}; 503 answers: {unavailable}; dead \
             letters: {dead}",
            bookings.len(),
            won(&storm_a, "approve"),
            won(&storm_b, "approve"),
            won(&storm_m, "approve"),
            won(&storm_c, "owner cancel"),
        ),
    }
    .record();

    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(dead, 0, "nothing is dead-lettered");
}
