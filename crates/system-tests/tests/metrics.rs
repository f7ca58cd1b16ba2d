//! `GET /metrics` on both services: the text exposition with the families
//! docs/operations.md lists, after real traffic — first with both services
//! embedded in memory (HTTP, event and transition counts), then as
//! processes on the real broker and database (MongoDB command timings,
//! Kafka consumer assignment and lag).

mod support;

use std::time::Duration;

use support::System;
use test_support::{eventually, metric_sum, real_servers};

/// Every family a service exposes in any mode.
const COMMON_FAMILIES: [&str; 10] = [
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "events_published_total",
    "events_consumed_total",
    "booking_transitions_total",
    "outbox_pending_events",
    "outbox_oldest_pending_seconds",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
];

fn has_family(exposition: &str, name: &str) -> bool {
    exposition
        .lines()
        .any(|l| l.starts_with(&format!("{name} ")) || l.starts_with(&format!("{name}{{")))
}

/// The exposition of `base`, checked for the media type and common families.
async fn scrape(sys: &System, base: &str) -> String {
    let (status, content_type, text) = sys.http.scrape(base).await;
    assert_eq!(status.as_u16(), 200, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "content type {content_type:?}"
    );
    assert!(text.ends_with("# EOF\n"), "a complete exposition");
    text
}

/// A booking from request to ACCEPTED; returns its id.
async fn accepted_booking(sys: &System) -> String {
    let (owner, traveler, pid) = sys.listed_property("Faro").await;
    let booking = sys.book(&traveler, &pid, 30, 2).await;
    let id = booking["id"].as_str().unwrap().to_string();
    sys.wait_owner_sees(&owner, &id).await;
    sys.decide(&owner, &id, "approve", None).await.expect(200);
    sys.wait_traveler_status(&traveler, &id, "ACCEPTED").await;
    id
}

fn sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metric_sum(exposition, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn in_memory_metrics_count_requests_by_route_template_events_and_transitions() {
    let sys = System::embedded().await;
    let id = accepted_booking(&sys).await;
    let missing = sys
        .http
        .get(&format!("{}/no/such/{id}", sys.traveler), None)
        .await;
    assert_eq!(missing.status.as_u16(), 404);

    let traveler = scrape(&sys, &sys.traveler).await;
    let owner = scrape(&sys, &sys.owner).await;
    for (service, text) in [("traveler", &traveler), ("owner", &owner)] {
        for family in COMMON_FAMILIES {
            assert!(
                has_family(text, family),
                "{service} lacks {family}:\n{text}"
            );
        }
        assert!(
            !text.contains(&id),
            "{service}: a booking id leaked into a label:\n{text}"
        );
        assert!(sum(text, "process_resident_memory_bytes", &[]) > 0.0);
        assert!(sum(text, "process_open_fds", &[]) > 0.0);
        assert_eq!(
            sum(
                text,
                "booking_transitions_total",
                &[("from", "PENDING"), ("to", "ACCEPTED")]
            ),
            1.0,
            "{service}: one booking accepted:\n{text}"
        );
    }

    // Route templates, never raw paths; a 404 under a fixed value.
    let created = [
        ("method", "POST"),
        ("route", "/api/travelers/bookings"),
        ("status", "201"),
    ];
    assert_eq!(
        sum(&traveler, "http_requests_total", &created),
        1.0,
        "{traveler}"
    );
    assert_eq!(
        sum(&traveler, "http_request_duration_seconds_count", &created),
        1.0
    );
    assert_eq!(
        sum(
            &traveler,
            "http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0,
        "{traveler}"
    );
    assert_eq!(
        sum(
            &owner,
            "http_requests_total",
            &[
                ("route", "/api/owners/bookings/{id}/approve"),
                ("status", "200")
            ]
        ),
        1.0,
        "{owner}"
    );

    // The request went out from the traveler's outbox and was applied by
    // the owner; the decision the other way.
    let requested = [("type", "booking.requested")];
    assert_eq!(sum(&traveler, "events_published_total", &requested), 1.0);
    let applied_request = [("type", "booking.requested"), ("outcome", "applied")];
    assert_eq!(
        sum(&owner, "events_consumed_total", &applied_request),
        1.0,
        "{owner}"
    );
    let decided = [("type", "booking.status_changed")];
    assert_eq!(
        sum(&owner, "events_published_total", &decided),
        1.0,
        "{owner}"
    );
    let applied_decision = [("type", "booking.status_changed"), ("outcome", "applied")];
    assert_eq!(
        sum(&traveler, "events_consumed_total", &applied_decision),
        1.0
    );
    assert_eq!(sum(&traveler, "outbox_pending_events", &[]), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_the_real_stack_show_the_flow_mongodb_commands_and_kafka_assignment() {
    let Some(servers) = real_servers("metrics_on_the_real_stack") else {
        return;
    };
    let sys = System::processes(&servers).await;
    accepted_booking(&sys).await;

    for base in [&sys.traveler, &sys.owner] {
        // Assignment comes from librdkafka's statistics (every 5 s).
        let text = eventually(
            "the consumer reports its assigned partitions",
            Duration::from_secs(30),
            || async {
                let text = scrape(&sys, base).await;
                (sum(&text, "kafka_consumer_assigned_partitions", &[]) > 0.0).then_some(text)
            },
        )
        .await;
        for family in COMMON_FAMILIES {
            assert!(has_family(&text, family), "{base} lacks {family}:\n{text}");
        }
        assert!(sum(&text, "events_published_total", &[]) > 0.0, "{text}");
        assert!(
            sum(&text, "events_consumed_total", &[("outcome", "applied")]) > 0.0,
            "{text}"
        );
        assert_eq!(
            sum(
                &text,
                "booking_transitions_total",
                &[("from", "PENDING"), ("to", "ACCEPTED")]
            ),
            1.0,
            "{text}"
        );
        assert!(
            sum(
                &text,
                "mongodb_command_duration_seconds_count",
                &[("command", "find")]
            ) > 0.0,
            "{text}"
        );
        assert!(
            has_family(&text, "kafka_consumer_lag"),
            "lag per assigned partition:\n{text}"
        );
    }
}
