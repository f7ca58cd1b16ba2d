//! A booking created while the broker is down is still acknowledged (201),
//! readiness reports Kafka down, and once the broker is back the event is
//! published exactly once and owner-service receives the booking.
//!
//! The test runs its own tansu broker (durable SQLite storage) so that
//! stopping it disturbs no other test.

mod support;

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use support::{free_port, System};
use test_support::{eventually, read_topic, real_servers, RealServers};

fn start_broker(dir: &Path, port: u16) -> Child {
    let tansu =
        std::env::var("TEST_TANSU_BIN").expect("TEST_TANSU_BIN (set by scripts/test-servers.sh)");
    let log = std::fs::File::create(dir.join("tansu.log")).unwrap();
    Command::new(tansu)
        .current_dir(dir)
        .args([
            "broker",
            "--listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{port}"),
            "--storage-engine",
            "sqlite://kafka.db",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start private tansu")
}

/// A private broker (in a fresh directory, on a free port) with the shared
/// MongoDB: its directory, port, process, and the servers to run against.
fn private_broker(shared: &RealServers) -> (std::path::PathBuf, u16, Child, RealServers) {
    let dir = std::env::temp_dir().join(test_support::unique("tansu"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let broker = start_broker(&dir, port);
    let servers = RealServers {
        mongodb_uri: shared.mongodb_uri.clone(),
        kafka_brokers: format!("127.0.0.1:{port}"),
    };
    (dir, port, broker, servers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn booking_made_while_kafka_is_down_is_published_when_it_returns() {
    let Some(shared) = real_servers("kafka_outage") else {
        return;
    };
    let (dir, port, mut broker, servers) = private_broker(&shared);
    let sys = System::processes(&servers).await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let pid = sys.create_property(&owner, "Tavira").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    sys.wait_catalog(&traveler, &pid, 1).await;

    broker.kill().unwrap();
    broker.wait().unwrap();

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

    let mut broker = start_broker(&dir, port);
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

    drop(sys);
    let _ = broker.kill();
    let _ = broker.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM while the broker is unreachable still shuts down: the final
/// offset commit and the producer flush are bounded, and the process exits 0
/// instead of waiting forever on a client library call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_kafka_down_still_exits_zero() {
    let Some(shared) = real_servers("sigterm_with_kafka_down") else {
        return;
    };
    let (dir, _, mut broker, servers) = private_broker(&shared);
    let mut sys = System::processes(&servers).await;
    let owner = sys.owner_signup("Olga").await;
    sys.create_property(&owner, "Olhao").await;
    broker.kill().unwrap();
    broker.wait().unwrap();

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
    let _ = std::fs::remove_dir_all(&dir);
}
