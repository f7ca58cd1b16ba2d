//! Notification streams on the real stack: both binaries as processes on
//! the real broker (Apache Kafka 4.1.1) and database (SecantusDB), several replicas of
//! each. What only processes can show: a stream on the replica that did not
//! consume an event still carries it; resuming after a disconnect in the
//! middle of a burst loses and repeats nothing; SIGTERM is not held up by
//! open streams. The latencies the replicas test prints are recorded in
//! docs/benchmarks.md.

mod support;

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use support::{
    id_of,
    sse::{self, open_as, owner_stream, traveler_stream, EventStream, Next},
    stay_dates, Http, System,
};

/// POSTs a booking of two nights `days_ahead` days from today; returns its id.
async fn post_booking(
    http: &Http,
    traveler_base: &str,
    token: &str,
    pid: &str,
    days_ahead: i64,
) -> String {
    let (check_in, check_out) = stay_dates(days_ahead, 2);
    let reply = http
        .book_stay(traveler_base, token, pid, check_in, check_out)
        .await;
    id_of(&reply.expect(201)["booking"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resuming_after_a_disconnect_during_a_burst_misses_nothing_and_repeats_nothing() {
    let Some(sys) = System::processes_for("streams resume_during_burst").await else {
        return;
    };
    let (owner, traveler, pid) = sys.listed_property("Porto").await;
    let url = owner_stream(&sys.owner);
    let mut stream = open_as(&url, &owner, None).await;

    const BURST: usize = 40;
    let burst = tokio::spawn({
        let (http, base, token, pid) = (
            sys.http.clone(),
            sys.traveler.clone(),
            traveler.token.clone(),
            pid.clone(),
        );
        async move {
            let mut ids = Vec::new();
            for i in 0..BURST {
                ids.push(post_booking(&http, &base, &token, &pid, 10 + 3 * i as i64).await);
            }
            ids
        }
    });

    // A few events, then the connection drops while the burst goes on.
    let mut received: Vec<Value> = Vec::new();
    for _ in 0..5 {
        received.push(stream.next_notification().await);
    }
    drop(stream);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = received.last().unwrap()["id"].as_str().unwrap().to_string();
    let mut resumed = open_as(&url, &owner, Some(&last)).await;
    while received.len() < BURST {
        received.push(resumed.next_notification().await);
    }
    // Nothing more (a repeat would show here).
    assert_eq!(resumed.next(Duration::from_secs(2)).await, Next::Quiet);

    let booked: HashSet<String> = burst.await.unwrap().into_iter().collect();
    let ids: Vec<&str> = received.iter().map(|n| n["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), BURST, "an event came twice: {ids:?}");
    let streamed_bookings: HashSet<String> = received
        .iter()
        .map(|n| n["booking_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        streamed_bookings, booked,
        "every booking's notification, once"
    );
    let listed: HashSet<String> = sys
        .owner_notifications(&owner)
        .await
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let streamed: HashSet<String> = unique.iter().map(|s| s.to_string()).collect();
    assert_eq!(streamed, listed, "the stream carries what the list shows");
}

/// Percentile `p` (0-100) of sorted `values`.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() * p).div_ceil(100)).clamp(1, sorted.len()) - 1]
}

fn summary(mut samples: Vec<Duration>) -> String {
    samples.sort();
    format!(
        "n={} p50={:?} p90={:?} max={:?}",
        samples.len(),
        percentile(&samples, 50),
        percentile(&samples, 90),
        samples.last().unwrap()
    )
}

/// The next notification on each of a user's streams on the two replicas,
/// read at the same time, each with how long after `since` it came.
async fn next_on_both_replicas(
    streams: &mut [EventStream; 2],
    since: Instant,
) -> [(Value, Duration); 2] {
    let [a, b] = streams;
    let (on_a, on_b) = tokio::join!(
        async { (a.next_notification().await, since.elapsed()) },
        async { (b.next_notification().await, since.elapsed()) },
    );
    [on_a, on_b]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_streams_what_any_replica_consumed() {
    let Some(mut sys) = System::processes_for("streams two_replicas").await else {
        return;
    };
    let owner_b = sys.add_owner_replica().await;
    let traveler_b = sys.add_traveler_replica().await;
    let (owner, traveler, pid) = sys.listed_property("Coimbra").await;
    let owner_a = sys.owner.clone();
    let traveler_a = sys.traveler.clone();
    // Each user has a stream on both replicas of their service. Exactly one
    // replica consumes each event (one consumer group), so for every event
    // one of the two streams is on the replica that did not consume it.
    let mut owner_streams = [
        open_as(&owner_stream(&owner_a), &owner, None).await,
        open_as(&owner_stream(&owner_b), &owner, None).await,
    ];
    let mut traveler_streams = [
        open_as(&traveler_stream(&traveler_a), &traveler, None).await,
        open_as(&traveler_stream(&traveler_b), &traveler, None).await,
    ];

    const BOOKINGS: usize = 20;
    let mut owner_latency = [Vec::new(), Vec::new()];
    let mut traveler_latency = [Vec::new(), Vec::new()];
    for i in 0..BOOKINGS {
        // Requests and decisions alternate between the replicas.
        let traveler_base = if i % 2 == 0 { &traveler_a } else { &traveler_b };
        let owner_base = if i % 2 == 0 { &owner_a } else { &owner_b };
        let booking = post_booking(
            &sys.http,
            traveler_base,
            &traveler.token,
            &pid,
            10 + 3 * i as i64,
        )
        .await;
        let on_both = next_on_both_replicas(&mut owner_streams, Instant::now()).await;
        for (replica, (n, latency)) in on_both.into_iter().enumerate() {
            assert_eq!(n["booking_id"], booking.as_str(), "replica {replica}");
            assert_eq!(n["kind"], "booking_requested");
            owner_latency[replica].push(latency);
        }

        // The consumer writes the booking before the notification, so
        // the owner told of it can read it at once.
        let booking_url = format!("{owner_base}/api/owners/bookings/{booking}");
        assert_eq!(
            sys.http.get(&booking_url, Some(&owner.token)).await.status,
            200,
            "the booking a notification tells of is readable when it arrives"
        );
        sys.http
            .put(
                &format!("{owner_base}/api/owners/bookings/{booking}/approve"),
                Some(&owner.token),
                None,
            )
            .await
            .expect(200);
        let on_both = next_on_both_replicas(&mut traveler_streams, Instant::now()).await;
        for (replica, (n, latency)) in on_both.into_iter().enumerate() {
            assert_eq!(n["booking_id"], booking.as_str(), "replica {replica}");
            assert_eq!(n["status"], "ACCEPTED");
            traveler_latency[replica].push(latency);
        }
    }
    // Figures, not assertions (docs/benchmarks.md).
    let [oa, ob] = owner_latency;
    let [ta, tb] = traveler_latency;
    println!("POST 201 -> owner stream, replica A {}", summary(oa));
    println!("POST 201 -> owner stream, replica B {}", summary(ob));
    println!("approve 200 -> traveler stream, replica A {}", summary(ta));
    println!("approve 200 -> traveler stream, replica B {}", summary(tb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_stream_never_sees_the_event() {
    let Some(sys) = System::processes_for("streams other_user").await else {
        return;
    };
    let (olga, tom, olgas) = sys.listed_property("Viseu").await;
    let oscar = sys.owner_signup("Oscar").await;
    let tina = sys.traveler_signup("Tina").await;
    let oscars = sys.create_property_id(&oscar, "Viseu").await;
    sys.wait_catalog(&tina, &oscars, 1).await;
    let mut olga_events = open_as(&owner_stream(&sys.owner), &olga, None).await;
    let mut oscar_events = open_as(&owner_stream(&sys.owner), &oscar, None).await;
    let mut tom_events = open_as(&traveler_stream(&sys.traveler), &tom, None).await;
    let mut tina_events = open_as(&traveler_stream(&sys.traveler), &tina, None).await;

    let toms = sys.book_id(&tom, &olgas, 10, 2).await;
    assert_eq!(
        olga_events.next_notification().await["booking_id"],
        toms.as_str()
    );
    // The booking is written before its notification: it is there.
    sys.decide(&olga, &toms, "approve", None).await.expect(200);
    assert_eq!(
        tom_events.next_notification().await["booking_id"],
        toms.as_str()
    );

    // Then the others' own: the first event each of them gets is theirs,
    // so Tom's and Olga's, written before, never reached them.
    let tinas = sys.book_id(&tina, &oscars, 10, 2).await;
    let first = oscar_events.next_notification().await;
    assert_eq!(first["booking_id"], tinas.as_str());
    assert_eq!(first["recipient_id"], oscar.id.as_str());
    sys.wait_owner_sees(&oscar, &tinas).await;
    sys.decide(&oscar, &tinas, "reject", Some(json!({"reason": "closed"})))
        .await
        .expect(200);
    let first = tina_events.next_notification().await;
    assert_eq!(first["booking_id"], tinas.as_str());
    assert_eq!(first["recipient_id"], tina.id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_the_per_user_limit_are_enforced_and_sigterm_ends_streams() {
    let Some(mut sys) = System::processes_for("streams limits_and_shutdown").await else {
        return;
    };
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let url = owner_stream(&sys.owner);
    sse::refusal(&url, None, None)
        .await
        .expect_problem(401, "missing_token");
    sse::refusal(&traveler_stream(&sys.traveler), None, None)
        .await
        .expect_problem(401, "missing_token");

    let mut streams = sse::open_up_to_the_limit(&url, &owner).await;
    streams.push(open_as(&traveler_stream(&sys.traveler), &traveler, None).await);

    // SIGTERM with six streams open: they end, and both processes exit 0.
    let exits = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || sys.terminate()),
    )
    .await
    .expect("open streams held the shutdown")
    .unwrap();
    assert!(exits.iter().all(|s| s.success()), "{exits:?}");
    for stream in &mut streams {
        assert_eq!(stream.next(Duration::from_secs(5)).await, Next::Ended);
    }
}
