//! Helpers shared by the test suites.
//!
//! Integration tests reach the real Kafka-protocol broker and MongoDB-protocol
//! server started by `scripts/test-servers.sh`, through `TEST_KAFKA_BROKERS`
//! and `TEST_MONGODB_URI`. When those are missing, [`real_servers`] fails the
//! test if `CI` is set, and otherwise returns `None` after printing a
//! `SKIPPED` line — never a silent pass.

use std::{path::PathBuf, time::Duration};

pub mod figures;
pub mod kafka;
pub mod mongo;
pub mod private;
pub mod process;
pub mod store;

pub use kafka::{produce_raw, read_topic, ReadMessage};

/// How long a test waits for effects that cross services after a fault
/// (reconnect backoffs, rebalances and lease expiry included).
pub const RECOVERY: Duration = Duration::from_secs(90);

/// Addresses of the real test servers.
#[derive(Debug, Clone)]
pub struct RealServers {
    pub mongodb_uri: String,
    pub kafka_brokers: String,
}

/// Whether this is a CI run (`CI` set to anything but empty/`false`/`0`).
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The real servers, or `None` (with a loud SKIPPED line) outside CI.
///
/// # Panics
/// Under CI when the servers are not configured: a test that needs them must
/// fail rather than pass without running.
pub fn real_servers(test: &str) -> Option<RealServers> {
    let mongodb_uri = std::env::var("TEST_MONGODB_URI")
        .ok()
        .filter(|v| !v.is_empty());
    let kafka_brokers = std::env::var("TEST_KAFKA_BROKERS")
        .ok()
        .filter(|v| !v.is_empty());
    match (mongodb_uri, kafka_brokers) {
        (Some(mongodb_uri), Some(kafka_brokers)) => Some(RealServers {
            mongodb_uri,
            kafka_brokers,
        }),
        _ if is_ci() => panic!(
            "{test}: TEST_MONGODB_URI and TEST_KAFKA_BROKERS must be set under CI \
             (run scripts/test.sh, which starts the servers)"
        ),
        _ => {
            // Straight to the process's stderr: libtest captures `eprintln!`
            // of passing tests, which would make this skip silent.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: real servers not configured; run scripts/test.sh \
                 (or scripts/test-servers.sh start && source .test-servers/env)"
            );
            None
        }
    }
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, or the workspace's
/// `target`.
pub fn target_dir() -> PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// A name no other test uses: `prefix-<12 hex>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A new, empty database on the test server, for one test.
pub async fn fresh_database(servers: &RealServers, prefix: &str) -> mongodb::Database {
    let client = mongodb::Client::with_uri_str(&servers.mongodb_uri)
        .await
        .expect("connect to the test MongoDB server");
    client.database(&unique(prefix).replace('-', "_"))
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after
/// `timeout` with `what` — for effects that arrive asynchronously.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The sum of the samples of `name` in a Prometheus/OpenMetrics text
/// exposition whose labels include every pair of `labels`; `None` when no
/// sample matches (the family or that label combination is absent).
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut total: Option<f64> = None;
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = match line.rsplit_once(' ') {
            Some(pair) => pair,
            None => continue,
        };
        let (metric, label_text) = match series.split_once('{') {
            Some((m, rest)) => (m, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        if metric != name {
            continue;
        }
        let matches = labels
            .iter()
            .all(|(k, v)| label_text.contains(&format!("{k}=\"{v}\"")));
        if let (true, Ok(v)) = (matches, value.parse::<f64>()) {
            total = Some(total.unwrap_or(0.0) + v);
        }
    }
    total
}
