//! The service binaries as an operator runs them: configuration errors stop
//! them at start with one line naming the variable, and SIGTERM shuts them
//! down cleanly (exit 0) without losing acknowledged work.

mod support;

use std::{path::Path, process::Command};

use support::{bin_dir, System};
use test_support::real_servers;

/// Runs the binary at `path` with only `env` set; asserts that it stops at
/// start with exit code 2 and one line on stderr, and returns that line.
fn start_error(binary: &str, path: &Path, env: &[(&str, &str)]) -> String {
    let out = Command::new(path)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{binary}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    stderr
}

/// [`start_error`] with every required variable set (`MONGODB_URI` to
/// `mongodb_uri`, the others to well-formed values) and `extra`: so the
/// error is about `mongodb_uri` or `extra` alone.
fn start_error_with(
    binary: &str,
    path: &Path,
    mongodb_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut env = vec![
        ("MONGODB_URI", mongodb_uri),
        ("KAFKA_BROKERS", "127.0.0.1:1"),
        ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];
    env.extend_from_slice(extra);
    start_error(binary, path, &env)
}

#[test]
fn a_missing_or_malformed_variable_stops_the_binary_with_one_line_naming_it() {
    for binary in ["traveler-service", "owner-service"] {
        let path = bin_dir().join(binary);
        assert!(
            path.exists(),
            "{} missing: run cargo build --bins",
            path.display()
        );

        let stderr = start_error(binary, &path, &[]);
        assert!(stderr.contains("MONGODB_URI"), "{stderr}");

        let stderr = start_error_with(
            binary,
            &path,
            "mongodb://127.0.0.1:1",
            &[("PORT", "not-a-port")],
        );
        assert!(stderr.contains("PORT"), "{stderr}");

        // A connection string with the wrong scheme is named, and shown
        // without its password.
        let stderr = start_error_with(
            binary,
            &path,
            "postgres://app:Pa55-w0rd@db.internal/owner",
            &[],
        );
        assert!(stderr.contains("MONGODB_URI"), "{stderr}");
        assert!(stderr.contains("app:***@db.internal"), "{stderr}");
        assert!(!stderr.contains("Pa55-w0rd"), "password printed: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_zero_and_nothing_acknowledged_is_lost() {
    let Some(servers) = real_servers("sigterm") else {
        return;
    };
    let mut sys = System::processes(&servers).await;
    let (owner, traveler, pid) = sys.listed_property("Lagos").await;

    // Bookings acknowledged right before the signal...
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(sys.book_id(&traveler, &pid, 60 + i * 3, 2).await);
    }
    let statuses = sys.terminate();
    assert!(
        statuses.iter().all(|s| s.success()),
        "exit statuses {statuses:?}"
    );

    // ...are all delivered after a restart on the same databases and topics.
    let env = sys.env.take().unwrap();
    let restarted = System::restart(env).await;
    for id in &ids {
        restarted.wait_owner_sees(&owner, id).await;
    }
}
