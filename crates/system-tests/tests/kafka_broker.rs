//! What only a real broker does: Apache Kafka's consumer-group coordinator
//! sharing a topic's partitions between replicas and moving them when one
//! comes or goes, and its idempotent-producer state surviving a broker
//! restart. Both binaries run as processes on Apache Kafka 4.1.1
//! (`scripts/test-servers.sh`, or a private broker where it is restarted) and
//! the shared MongoDB-protocol server; every test ends by checking that
//! nothing acknowledged was lost and nothing was applied twice.

mod faults_support;
mod support;

use std::{
    collections::BTreeSet,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use faults_support::{
    booking_requests, burst_scene, cast, created_id, owner_bookings, private_broker_for, sigterm,
    verify_bookings, wait_exit, wait_owner_has_all, wire_copies, Burst, RECOVERY,
};
use support::System;
use test_support::{eventually, real_servers};

/// Partitions of every topic the services create in these tests
/// (`KAFKA_TOPIC_PARTITIONS` of `ProcessEnv::spawn`).
const PARTITIONS: usize = 3;

/// The `booking-requests` partitions the consumer behind `base` holds, as
/// its `/health/ready` lists them.
async fn held(sys: &System, base: &str, topic: &str) -> BTreeSet<i64> {
    let r = sys.http.get(&format!("{base}/health/ready"), None).await;
    r.body["checks"]["consumers"]["consumers"][0]["assigned_partitions"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter(|p| p["topic"] == topic)
                .filter_map(|p| p["partition"].as_i64())
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until the replicas behind `bases` hold `topic`'s partitions between
/// them, each its own, every one of them non-empty and none twice; returns
/// what each holds.
async fn wait_shared(sys: &System, bases: &[&str], topic: &str) -> Vec<BTreeSet<i64>> {
    eventually(
        &format!("{} replica(s) share the partitions of {topic}", bases.len()),
        RECOVERY,
        || async {
            let mut each = Vec::new();
            for base in bases {
                each.push(held(sys, base, topic).await);
            }
            let all: BTreeSet<i64> = each.iter().flatten().copied().collect();
            let disjoint = each.iter().map(BTreeSet::len).sum::<usize>() == all.len();
            (all.len() == PARTITIONS && disjoint && each.iter().all(|ps| !ps.is_empty()))
                .then_some(each)
        },
    )
    .await
}

/// `events_consumed_total` of `topic` with outcome `applied`, from the
/// service's `/metrics`.
async fn applied(base: &str, topic: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with("events_consumed_total{"))
        .filter(|l| l.contains(&format!("topic=\"{topic}\"")) && l.contains("outcome=\"applied\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// How many owner-service has listed of the property so far.
async fn listed(sys: &System, owner: &support::User, pid: &str) -> usize {
    owner_bookings(sys, owner, pid).await.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owner_replicas_share_the_partitions_and_one_leaving_hands_its_share_over() {
    let Some(servers) = real_servers("kafka: two owner-service replicas share partitions") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let second = sys.add_owner_replica().await;
    let topic = sys.env.as_ref().unwrap().topic("booking-requests");
    let first = sys.owner.clone();
    let shares = wait_shared(&sys, &[&first, &second], &topic).await;

    // Bookings on many keys reach both replicas, and each applies its share.
    let (owner, pid, travelers) = cast(&sys, "Lagos", 4).await;
    let requests = booking_requests(&travelers, &pid, 8, 10);
    let answers = Burst::start(&sys.traveler, &requests, 8).answers().await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    assert_eq!(acked.len(), requests.len(), "every booking acknowledged");
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let (by_first, by_second) = (
        applied(&first, &topic).await,
        applied(&second, &topic).await,
    );
    assert!(
        by_first > 0 && by_second > 0,
        "both replicas applied events (partitions {shares:?}): {by_first} and {by_second}"
    );

    // The second replica leaves (SIGTERM: it commits and leaves the group);
    // the first gets every partition and applies what follows.
    let mut children = sys.take_children();
    let leaving = children.pop().expect("the second owner replica");
    sigterm(&leaving);
    let mut leaving = leaving;
    let status = wait_exit(&mut leaving, Duration::from_secs(30)).expect("the replica exits");
    assert!(status.success(), "the leaving replica exits 0: {status}");
    for child in children {
        sys.adopt(child);
    }
    let handed_over = Instant::now();
    wait_shared(&sys, &[&first], &topic).await;
    let took = handed_over.elapsed();

    let more = booking_requests(&travelers, &pid, 8, 200);
    let answers_after = Burst::start(&sys.traveler, &more, 8).answers().await;
    let acked_after: BTreeSet<String> = answers_after.iter().filter_map(created_id).collect();
    assert_eq!(acked_after.len(), more.len(), "every booking acknowledged");
    let everything: BTreeSet<String> = acked.union(&acked_after).cloned().collect();
    wait_owner_has_all(&sys, &owner, &pid, &everything).await;
    let all_requests: Vec<_> = requests.iter().chain(&more).cloned().collect();
    let all_answers: Vec<_> = answers.into_iter().chain(answers_after).collect();
    let verdict =
        verify_bookings(&sys, &owner, &pid, &travelers, &all_requests, &all_answers).await;
    println!(
        "partitions {shares:?}; applied {by_first} + {by_second}; the first replica held all \
         {PARTITIONS} {:.1} s after the second left",
        took.as_secs_f64()
    );
    assert!(verdict.problems.is_empty(), "{:#?}", verdict.problems);
    assert_eq!((verdict.lost, verdict.duplicated), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalances_during_a_burst_lose_and_duplicate_nothing() {
    let Some(servers) = real_servers("kafka: rebalances during a burst") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let topic = sys.env.as_ref().unwrap().topic("booking-requests");
    let (owner, pid, travelers) = cast(&sys, "Sagres", 4).await;
    // 160 bookings over about 16 s: long enough for a replica to start,
    // join and leave while they arrive.
    let requests = booking_requests(&travelers, &pid, 40, 10);
    let burst = Burst::paced(&sys.traveler, &requests, 8, Duration::from_millis(100));

    // A replica joins while events flow (every member gives up its
    // partitions and gets a new share), then leaves again before the burst
    // is over (a second rebalance).
    eventually("owner-service applying the burst", RECOVERY, || async {
        (listed(&sys, &owner, &pid).await >= 10).then_some(())
    })
    .await;
    let second = sys.add_owner_replica().await;
    let first = sys.owner.clone();
    wait_shared(&sys, &[&first, &second], &topic).await;
    let at_join = burst.created.load(Ordering::SeqCst);
    let mut children = sys.take_children();
    let mut leaving = children.pop().expect("the second owner replica");
    for child in children {
        sys.adopt(child);
    }
    sigterm(&leaving);
    wait_exit(&mut leaving, Duration::from_secs(30)).expect("the replica exits");
    let at_leave = burst.created.load(Ordering::SeqCst);

    let answers = burst.answers().await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    assert_eq!(acked.len(), requests.len(), "every booking acknowledged");
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let verdict = verify_bookings(&sys, &owner, &pid, &travelers, &requests, &answers).await;
    println!(
        "second replica joined after {at_join} and left after {at_leave} of {} bookings",
        requests.len()
    );
    assert!(
        at_join > 0 && at_leave < requests.len(),
        "both rebalances happened during the burst (joined after {at_join}, left after \
         {at_leave} of {} bookings)",
        requests.len()
    );
    assert!(verdict.problems.is_empty(), "{:#?}", verdict.problems);
    assert_eq!((verdict.lost, verdict.duplicated), (0, 0));
}

/// The broker is SIGKILLed while the relay has batches in flight and is
/// restarted at once on the same log directory: the producer retries the
/// unacknowledged batches with the same producer id and sequence numbers,
/// and the broker, which rebuilt its producer state from the log, writes
/// none of them twice. Counted on the topic itself, not only in effects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_idempotent_producer_writes_nothing_twice_across_a_broker_restart_mid_batch() {
    let Some((mut broker, servers)) = private_broker_for("kafka: broker restarted mid-batch")
    else {
        return;
    };
    let (sys, owner, pid, travelers, requests) = burst_scene(&servers, "Tavira", 4, 25).await;
    let burst = Burst::start(&sys.traveler, &requests, 16);
    burst.wait_created(20).await;
    broker.kill();
    let at_kill = burst.created.load(Ordering::SeqCst);
    let killed = Instant::now();
    broker.restart();
    let outage = killed.elapsed();

    let answers = burst.answers().await;
    let acked: BTreeSet<String> = answers.iter().filter_map(created_id).collect();
    assert_eq!(acked.len(), requests.len(), "every booking acknowledged");
    wait_owner_has_all(&sys, &owner, &pid, &acked).await;
    let env = sys.env.as_ref().unwrap();
    let (copies_beyond_one, unpublished) = wire_copies(env, &acked).await;
    let verdict = verify_bookings(&sys, &owner, &pid, &travelers, &requests, &answers).await;
    let log = std::fs::read_to_string(broker.log_path()).unwrap_or_default();
    let timed_out = log_lines(&sys, "MessageTimedOut");
    println!(
        "broker killed after {at_kill} of {} bookings, serving again {:.1} s later; \
         booking.requested copies beyond one: {copies_beyond_one}; relay timeouts: {timed_out}; \
         broker log lines: {}",
        requests.len(),
        outage.as_secs_f64(),
        log.lines().count()
    );
    assert_eq!(unpublished, 0, "every acknowledged booking is on the topic");
    assert_eq!(
        copies_beyond_one, 0,
        "no booking.requested on the topic twice (relay timeouts: {timed_out})"
    );
    assert!(verdict.problems.is_empty(), "{:#?}", verdict.problems);
}

/// Lines of the traveler-service log that contain `needle`.
fn log_lines(sys: &System, needle: &str) -> usize {
    let env = sys.env.as_ref().unwrap();
    let port = sys
        .traveler
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("traveler port");
    std::fs::read_to_string(env.log_path("traveler-service", port))
        .map(|log| log.lines().filter(|l| l.contains(needle)).count())
        .unwrap_or(0)
}
