//! Background work is supervised: when the outbox relay, the event
//! consumer or the inbox watcher (which feeds notification streams) ends
//! on its own (a fault injected through `FAULT_INJECT`, which
//! only debug builds read), readiness turns 503 naming it, the error is
//! logged, and the process exits non-zero so the orchestrator restarts it.

mod support;

use std::time::Duration;

use support::{free_port, wait_until_ready, ProcessEnv, System};
use test_support::process::wait_exit;
use test_support::{eventually, real_servers};

async fn a_failing_worker_makes_the_service_unready_then_exit_non_zero(
    binary: &str,
    fault: &str,
    task: &str,
) {
    let Some(servers) = real_servers("supervision") else {
        return;
    };
    let sys = System::processes(&servers).await;
    let env: &ProcessEnv = sys.env.as_ref().unwrap();
    let port = free_port();
    let (mut child, url) = env.spawn_with(binary, port, &[("FAULT_INJECT", fault)]);
    let log = env.log_path(binary, port);
    // It starts like any other (the fault strikes a second after start).
    let client = reqwest::Client::new();
    let ready = eventually(
        "readiness names the dead worker",
        Duration::from_secs(60),
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                // Connection errors while the process starts count as "not yet".
                let r = client
                    .get(format!("{url}/health/ready"))
                    .send()
                    .await
                    .ok()?;
                if r.status() != 503 {
                    return None;
                }
                let body: serde_json::Value = r.json().await.ok()?;
                (body["checks"]["workers"]["status"] == "down").then_some(body)
            }
        },
    )
    .await;
    let why = ready["checks"]["workers"]["error"].as_str().unwrap();
    assert!(why.contains(task), "{ready}");
    assert_eq!(ready["code"], "not_ready", "{ready}");

    let status = tokio::task::spawn_blocking(move || {
        let status = wait_exit(&mut child, Duration::from_secs(60));
        (status, child)
    })
    .await
    .unwrap();
    let (status, _exited) = status;
    let status = status.expect("the process exits on its own within 60 s");
    assert!(!status.success(), "exit status {status:?}");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines().any(|l| l.contains("\"level\":\"ERROR\"")
            && l.contains("background task ended unexpectedly")
            && l.contains(task)),
        "no error line naming {task} in {}",
        log.display()
    );
    // The healthy processes of the system are not disturbed.
    wait_until_ready(&sys.http, &sys.traveler).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_outbox_relay_stops_traveler_service() {
    a_failing_worker_makes_the_service_unready_then_exit_non_zero(
        "traveler-service",
        "outbox-relay-panic",
        "outbox relay",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_event_consumer_stops_owner_service() {
    a_failing_worker_makes_the_service_unready_then_exit_non_zero(
        "owner-service",
        "event-consumer-return",
        "event consumer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_inbox_watcher_stops_owner_service() {
    a_failing_worker_makes_the_service_unready_then_exit_non_zero(
        "owner-service",
        "inbox-watcher-panic",
        "inbox watcher",
    )
    .await;
}
