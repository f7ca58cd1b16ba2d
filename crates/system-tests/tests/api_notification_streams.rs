//! The notification streams' HTTP contract on the embedded system (both
//! services in this process, in-memory inbox and bus): event framing equal
//! to the list, resuming with `Last-Event-ID`, refusals as problem
//! documents, the per-user limit, keep-alives and shutdown. The same
//! guarantees across processes and replicas on the real servers are in
//! `notification_streams.rs`.

mod support;

use std::time::Duration;

use support::{
    sse::{self, open_as, owner_stream, traveler_stream, EventStream, Next},
    System, User, PROPAGATION,
};
use test_support::eventually;

/// Books nights `days_ahead..days_ahead+2` and returns the booking id.
async fn book(sys: &System, traveler: &User, pid: &str, days_ahead: i64) -> String {
    sys.book_id(traveler, pid, days_ahead, 2).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_notification_arrives_as_one_event_equal_to_the_listed_one() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let mut owner_events = open_as(&owner_stream(&sys.owner), &owner, None).await;
    let mut traveler_events = open_as(&traveler_stream(&sys.traveler), &traveler, None).await;
    assert!(
        owner_events.content_type.starts_with("text/event-stream"),
        "{}",
        owner_events.content_type
    );

    let booking = book(&sys, &traveler, &pid, 10).await;
    let requested = owner_events.next_notification().await;
    assert_eq!(requested["booking_id"], booking.as_str());
    assert_eq!(requested["kind"], "booking_requested");
    assert_eq!(requested, sys.owner_notifications(&owner).await[0]);

    sys.decide(&owner, &booking, "approve", None)
        .await
        .expect(200);
    let accepted = traveler_events.next_notification().await;
    assert_eq!(accepted["status"], "ACCEPTED");
    assert_eq!(accepted, sys.traveler_notifications(&traveler).await[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_replays_what_was_missed_then_continues_live() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Braga").await;
    let url = owner_stream(&sys.owner);
    let mut first = open_as(&url, &owner, None).await;
    book(&sys, &traveler, &pid, 10).await;
    let seen = first.next_notification_event().await;
    drop(first);

    // Two more while disconnected.
    for days in [20, 30] {
        book(&sys, &traveler, &pid, days).await;
    }
    eventually("three notifications", PROPAGATION, || async {
        (sys.owner_notifications(&owner).await.len() == 3).then_some(())
    })
    .await;
    let last = seen.id.unwrap();
    // Newest first in the list: the missed ones are its first two.
    let missed: Vec<String> = sys.owner_notifications(&owner).await[..2]
        .iter()
        .rev()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();

    // By the query parameter (for clients that cannot set headers)...
    let mut by_query = open_as(&format!("{url}?last_event_id={last}"), &owner, None).await;
    assert_eq!(replayed(&mut by_query, 2).await, missed);
    assert_eq!(by_query.next(Duration::from_millis(300)).await, Next::Quiet);
    drop(by_query);

    // ...and by the header, then live: the next booking's notification, once.
    let mut by_header = open_as(&url, &owner, Some(&last)).await;
    assert_eq!(replayed(&mut by_header, 2).await, missed);
    book(&sys, &traveler, &pid, 40).await;
    let live = by_header.next_notification_event().await;
    let live = live.id.unwrap();
    assert!(!missed.contains(&live) && live != last, "nothing twice");
    assert_eq!(
        by_header.next(Duration::from_millis(300)).await,
        Next::Quiet
    );
}

/// The ids of the next `n` notifications of `stream`.
async fn replayed(stream: &mut EventStream, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(stream.next_notification_event().await.id.unwrap());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_last_event_id_a_stream_starts_with_live_events_only() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Faro").await;
    book(&sys, &traveler, &pid, 10).await;
    eventually("the first notification", PROPAGATION, || async {
        (!sys.owner_notifications(&owner).await.is_empty()).then_some(())
    })
    .await;
    let mut stream = open_as(&owner_stream(&sys.owner), &owner, None).await;
    let later = book(&sys, &traveler, &pid, 20).await;
    let data = stream.next_notification().await;
    assert_eq!(
        data["booking_id"],
        later.as_str(),
        "the older one is not replayed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_never_carries_another_users_notifications() {
    let sys = System::embedded().await;
    let (olga, traveler, olgas) = sys.listed_property("Evora").await;
    let oscar = sys.owner_signup("Oscar").await;
    let oscars = sys.create_property_id(&oscar, "Evora").await;
    sys.wait_catalog(&traveler, &oscars, 1).await;
    let mut oscar_events = open_as(&owner_stream(&sys.owner), &oscar, None).await;
    let mut olga_events = open_as(&owner_stream(&sys.owner), &olga, None).await;

    let for_olga = book(&sys, &traveler, &olgas, 10).await;
    assert_eq!(
        olga_events.next_notification().await["booking_id"],
        for_olga.as_str()
    );
    let for_oscar = book(&sys, &traveler, &oscars, 10).await;
    // Oscar's first event is his own: Olga's, written before, never came.
    let first = oscar_events.next_notification().await;
    assert_eq!(first["booking_id"], for_oscar.as_str());
    assert_eq!(first["recipient_id"], oscar.id.as_str());

    // Resuming after someone else's notification is refused, not a peek.
    let olgas_id = sys.owner_notifications(&olga).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    sse::refusal(
        &owner_stream(&sys.owner),
        Some(&oscar.token),
        Some(&olgas_id),
    )
    .await
    .expect_problem(400, "unknown_last_event_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_problem_documents() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let url = owner_stream(&sys.owner);

    let (too_long, unknown) = ("x".repeat(200), uuid::Uuid::now_v7().to_string());
    let (as_owner, injection) = (Some(owner.token.as_str()), r#"{"$gt":""}"#);
    let refusals: &[(Option<&str>, Option<&str>, u16, &str)] = &[
        (None, None, 401, "missing_token"),
        (Some("not-a-token"), None, 401, "invalid_token"),
        (Some(&traveler.token), None, 403, "wrong_role"),
        (as_owner, Some("has space"), 400, "invalid_last_event_id"),
        (as_owner, Some(injection), 400, "invalid_last_event_id"),
        (as_owner, Some(&too_long), 400, "invalid_last_event_id"),
        (as_owner, Some(&unknown), 400, "unknown_last_event_id"),
    ];
    for &(token, last_event_id, status, code) in refusals {
        sse::refusal(&url, token, last_event_id)
            .await
            .expect_problem(status, code);
    }
    sse::refusal(&format!("{url}?last_event_id=%00"), as_owner, None)
        .await
        .expect_problem(400, "invalid_last_event_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_holds_at_most_the_configured_number_of_streams() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let other = sys.owner_signup("Oscar").await;
    let url = owner_stream(&sys.owner);
    let mut open_streams = sse::open_up_to_the_limit(&url, &owner).await;
    let _others = open_as(&url, &other, None).await;

    // Closing one frees its slot once the server sees the connection end.
    drop(open_streams.pop());
    let mut reopened = eventually("a slot is free again", PROPAGATION, || async {
        sse::open(&url, Some(&owner.token), None).await.ok()
    })
    .await;
    assert_eq!(reopened.next(Duration::from_millis(100)).await, Next::Quiet);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_gets_a_keep_alive_comment_every_15_seconds() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let mut stream = open_as(&owner_stream(&sys.owner), &owner, None).await;
    assert_eq!(stream.next(Duration::from_secs(17)).await, Next::Quiet);
    assert_eq!(stream.comments, vec!["keep-alive".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let mut streams = vec![
        open_as(&owner_stream(&sys.owner), &owner, None).await,
        open_as(&traveler_stream(&sys.traveler), &traveler, None).await,
    ];
    sys.stop_embedded();
    for stream in &mut streams {
        assert_eq!(stream.next(Duration::from_secs(10)).await, Next::Ended);
    }
}
