//! A booking created while the broker is down is still acknowledged (201),
//! readiness reports Kafka down, and once the broker is back the event is
//! published exactly once and owner-service receives the booking.
//!
//! The test runs its own Apache Kafka broker (its own log directory) so that
//! stopping it disturbs no other test.

mod support;

use std::time::Duration;

use support::System;
use test_support::private::private_broker_for;
use test_support::{eventually, read_topic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_made_while_kafka_is_down_is_published_when_it_returns() {
    let Some((mut broker, servers)) = private_broker_for("kafka_outage") else {
        return;
    };
    let sys = System::processes(&servers).await;
    let (owner, traveler, pid) = sys.listed_property("Tavira").await;

    broker.kill();

    let booking = sys.book(&traveler, &pid, 12, 2).await;
    let id = booking["id"].as_str().unwrap().to_string();
    let ready = sys
        .http
        .get(&format!("{}/health/ready", sys.traveler), None)
        .await;
    let report = ready.expect_problem(503, "not_ready");
    assert_eq!(report["checks"]["kafka"]["status"], "down", "{report}");
    assert_eq!(report["checks"]["mongodb"]["status"], "up", "{report}");
    // Liveness does not depend on Kafka.
    sys.http
        .get(&format!("{}/health", sys.traveler), None)
        .await
        .expect(200);

    broker.restart();
    let seen = sys.wait_owner_sees(&owner, &id).await;
    assert_eq!(seen["status"], "PENDING");
    sys.http
        .get(&format!("{}/health/ready", sys.traveler), None)
        .await
        .expect(200);

    let env = sys.env.as_ref().unwrap();
    let requests = eventually(
        "the request is on the topic",
        Duration::from_secs(30),
        || {
            let (brokers, topic) = (servers.kafka_brokers.clone(), env.topic("booking-requests"));
            async move {
                let all = read_topic(&brokers, &topic, Duration::from_secs(5));
                (!all.is_empty()).then_some(all)
            }
        },
    )
    .await;
    let mine = requests
        .iter()
        .filter(|m| m.key.as_deref() == Some(id.as_bytes()))
        .count();
    assert_eq!(mine, 1, "published exactly once");
}

/// SIGTERM while the broker is unreachable still shuts down: the final
/// offset commit and the producer flush are bounded, and the process exits 0
/// instead of waiting forever on a client library call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_kafka_down_still_exits_zero() {
    let Some((mut broker, servers)) = private_broker_for("sigterm_with_kafka_down") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let owner = sys.owner_signup("Olga").await;
    sys.create_property(&owner, "Olhao").await;
    broker.kill();

    let started = std::time::Instant::now();
    // A hang is the bug this test is about: fail after a minute, not never.
    let statuses = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::task::spawn_blocking(move || sys.terminate()),
    )
    .await
    .expect("services did not exit within 60 s of SIGTERM with the broker down")
    .unwrap();
    assert!(
        statuses.iter().all(|s| s.success()),
        "exit statuses {statuses:?}"
    );
    println!(
        "both services exited 0 in {:?} with the broker down",
        started.elapsed()
    );
}
