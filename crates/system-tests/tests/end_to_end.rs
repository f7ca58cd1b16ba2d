//! End to end: traveler-service and owner-service as separate processes,
//! talking over the real broker (Apache Kafka 4.1.1) and storing in the
//! real MongoDB-protocol server (SecantusDB), started by
//! `scripts/test-servers.sh`. Each test gets fresh databases, topics and
//! consumer groups.

mod support;

use std::{collections::HashMap, time::Duration};

use serde_json::json;
use support::{ProcessEnv, System};
use test_support::{read_topic, ReadMessage};

/// The messages keyed `key` on this test's `topic` (read within 10 s).
fn keyed_on_topic(env: &ProcessEnv, topic: &str, key: &str) -> Vec<ReadMessage> {
    read_topic(
        &env.servers.kafka_brokers,
        &env.topic(topic),
        Duration::from_secs(10),
    )
    .into_iter()
    .filter(|m| m.key.as_deref() == Some(key.as_bytes()))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_path_traveler_sees_accepted_and_a_notification() {
    let Some(sys) = System::processes_for("approve_path").await else {
        return;
    };
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;

    let property = sys.create_property(&owner, "Porto").await;
    let pid = property["id"].as_str().unwrap();
    assert_eq!(property["active"], true);
    assert_eq!(property["owner_id"], owner.id.as_str());
    let listed = sys.wait_catalog(&traveler, pid, 1).await;
    assert_eq!(listed["price_per_night_cents"], 10000);

    let booking = sys.book(&traveler, pid, 20, 2).await;
    assert_eq!(booking["status"], "PENDING");
    assert_eq!(booking["owner_id"], owner.id.as_str());
    assert_eq!(booking["total_price_cents"], 2 * 10000 + 2000 + 500);
    let id = booking["id"].as_str().unwrap();

    let seen = sys.wait_owner_sees(&owner, id).await;
    assert_eq!(seen["status"], "PENDING");
    assert_eq!(seen["traveler_id"], traveler.id.as_str());
    let owner_notes = sys.owner_notifications(&owner).await;
    assert!(owner_notes
        .iter()
        .any(|n| n["booking_id"] == id && n["kind"] == "booking_requested"));

    let approved = sys.decide(&owner, id, "approve", None).await.expect(200);
    assert_eq!(approved["booking"]["status"], "ACCEPTED");
    sys.wait_traveler_status(&traveler, id, "ACCEPTED").await;
    let notes = sys.traveler_notifications(&traveler).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["booking_id"], id);
    assert_eq!(notes[0]["status"], "ACCEPTED");
    assert!(notes[0]["created_at"].is_string());

    // The events on the wire: one request and one decision, keyed by the
    // booking id, with CloudEvents headers.
    let env = sys.env.as_ref().unwrap();
    let mine = keyed_on_topic(env, "booking-requests", id);
    assert_eq!(mine.len(), 1, "exactly one booking.requested");
    assert_eq!(
        mine[0].header("ce_type").as_deref(),
        Some("booking.requested")
    );
    assert_eq!(mine[0].header("ce_specversion").as_deref(), Some("1.0"));
    assert_eq!(
        mine[0].header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(mine[0].json()["data"]["booking_id"], id);
    assert_eq!(
        mine[0].header("ce_id").unwrap(),
        mine[0].json()["event_id"].as_str().unwrap()
    );
    let decided = keyed_on_topic(env, "booking-updates", id);
    assert_eq!(decided.len(), 1, "exactly one booking.status_changed");
    assert_eq!(decided[0].json()["data"]["status"], "ACCEPTED");
    assert_eq!(decided[0].json()["data"]["changed_by"]["role"], "owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_path_carries_the_reason_to_the_traveler() {
    let Some(sys) = System::processes_for("reject_path").await else {
        return;
    };
    let (owner, traveler, pid) = sys.listed_property("Faro").await;
    let id = sys.book_seen(&owner, &traveler, &pid, 15, 4).await;

    let rejected = sys
        .decide(&owner, &id, "reject", Some(json!({"reason": "renovation"})))
        .await
        .expect(200);
    assert_eq!(rejected["booking"]["status"], "REJECTED");
    let seen = sys.wait_traveler_status(&traveler, &id, "REJECTED").await;
    assert_eq!(seen["status_reason"], "renovation");
    let notes = sys.traveler_notifications(&traveler).await;
    assert_eq!(notes[0]["status"], "REJECTED");
    assert_eq!(notes[0]["reason"], "renovation");
    // Final: neither side can move it again.
    sys.decide(&owner, &id, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");
    sys.traveler_put(&traveler, &format!("bookings/{id}/cancel"), None)
        .await
        .expect_problem(409, "booking_final");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traveler_cancels_a_pending_booking_through_owner_service() {
    let Some(sys) = System::processes_for("traveler_cancel").await else {
        return;
    };
    let (owner, traveler, pid) = sys.listed_property("Braga").await;
    let id = sys.book_seen(&owner, &traveler, &pid, 30, 3).await;

    let accepted = sys
        .traveler_put(
            &traveler,
            &format!("bookings/{id}/cancel"),
            Some(json!({"reason": "plans changed"})),
        )
        .await
        .expect(202);
    assert_eq!(accepted["booking"]["id"], id.as_str());
    assert!(accepted["booking"]["cancellation_requested_at"].is_string());

    let seen = sys.wait_traveler_status(&traveler, &id, "CANCELLED").await;
    assert_eq!(seen["status_reason"], "plans changed");
    let owner_view = sys.wait_owner_sees(&owner, &id).await;
    assert_eq!(owner_view["status"], "CANCELLED");
    // The owner's notice follows the decision it reports on.
    let notice = test_support::eventually(
        "owner notified of the cancellation",
        support::PROPAGATION,
        || async {
            sys.owner_notifications(&owner)
                .await
                .into_iter()
                .find(|n| n["booking_id"] == id.as_str() && n["kind"] == "cancellation_requested")
        },
    )
    .await;
    assert_eq!(notice["status"], "CANCELLED");
    assert_eq!(notice["reason"], "plans changed");
    let notes = sys.traveler_notifications(&traveler).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["status"], "CANCELLED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_cancels_an_accepted_booking_with_a_reason() {
    let Some(sys) = System::processes_for("owner_cancel").await else {
        return;
    };
    let (owner, traveler, pid) = sys.listed_property("Evora").await;
    let id = sys.book_seen(&owner, &traveler, &pid, 40, 2).await;
    sys.decide(&owner, &id, "approve", None).await.expect(200);

    sys.decide(&owner, &id, "cancel", Some(json!({})))
        .await
        .expect_problem(400, "validation_failed");
    let cancelled = sys
        .decide(&owner, &id, "cancel", Some(json!({"reason": "burst pipe"})))
        .await
        .expect(200);
    assert_eq!(cancelled["booking"]["status"], "CANCELLED");
    let seen = sys.wait_traveler_status(&traveler, &id, "CANCELLED").await;
    assert_eq!(seen["status_reason"], "burst pipe");
    let notes = sys.traveler_notifications(&traveler).await;
    let statuses: Vec<_> = notes
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CANCELLED", "ACCEPTED"], "newest first");
}

/// Two owner-service replicas approve overlapping bookings of one property
/// at the same moment: exactly one wins, the others get 409, and exactly one
/// status event is published per accepted booking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_approvals_across_two_replicas_accept_exactly_one() {
    let Some(mut sys) = System::processes_for("two_replicas").await else {
        return;
    };
    let second_owner_url = sys.add_owner_replica().await;
    let owner = sys.owner_signup("Olga").await;
    let pid = sys.create_property_id(&owner, "Sintra").await;

    const BOOKINGS: usize = 6;
    let mut ids = Vec::new();
    for i in 0..BOOKINGS {
        let traveler = sys.traveler_signup(&format!("T{i}")).await;
        sys.wait_catalog(&traveler, &pid, 1).await;
        // All stays share the nights 50..52 days ahead.
        let booking = sys.book(&traveler, &pid, 49 + (i as i64 % 2), 3).await;
        ids.push(booking["id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        sys.wait_owner_sees(&owner, id).await;
    }

    let urls = [sys.owner.clone(), second_owner_url];
    let attempts = ids.iter().enumerate().map(|(i, id)| {
        let url = format!("{}/api/owners/bookings/{id}/approve", urls[i % 2]);
        let (http, token) = (sys.http.clone(), owner.token.clone());
        async move { http.put(&url, Some(&token), None).await }
    });
    let replies = futures::future::join_all(attempts).await;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for r in &replies {
        *by_status.entry(r.status.as_u16()).or_default() += 1;
        if r.status == 409 {
            assert_eq!(r.body["code"], "dates_unavailable", "{}", r.body);
        }
    }
    assert_eq!(by_status.get(&200), Some(&1), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&(BOOKINGS - 1)), "{by_status:?}");

    let accepted = sys
        .owner_get(
            &owner,
            &format!("bookings?status=ACCEPTED&property_id={pid}"),
        )
        .await
        .expect(200);
    assert_eq!(accepted["bookings"].as_array().unwrap().len(), 1);

    let env = sys.env.as_ref().unwrap();
    let winner = accepted["bookings"][0]["id"].as_str().unwrap().to_string();
    let updates =
        test_support::eventually("the decision is published", Duration::from_secs(30), || {
            let (brokers, topic) = (
                env.servers.kafka_brokers.clone(),
                env.topic("booking-updates"),
            );
            async move {
                let all = read_topic(&brokers, &topic, Duration::from_secs(5));
                (!all.is_empty()).then_some(all)
            }
        })
        .await;
    assert_eq!(updates.len(), 1, "one status event in all");
    assert_eq!(updates[0].key.as_deref(), Some(winner.as_bytes()));
}
