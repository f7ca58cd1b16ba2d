//! One booking's events leave in the order they were written, whatever
//! happens to the broker in between, and a consumer that nevertheless gets a
//! cancellation before its booking keeps it until the booking arrives. Both
//! binaries run as processes on a private Apache Kafka broker (killed and
//! restarted here) and the shared MongoDB; every test ends with both
//! services agreeing.

mod support;

use std::time::Duration;

use events::{BookingCancellationRequested, BookingRequestEvent, Envelope};
use serde_json::Value;
use support::{System, User, PROPAGATION};
use test_support::kafka::{booking_requested, produce_event};
use test_support::private::{private_broker_for, PrivateKafka};
use test_support::{eventually, read_topic, real_servers, RealServers};

/// A system with one owner, one traveler and a property in the catalog.
async fn ready_system(servers: &RealServers) -> (System, User, User, String) {
    ready_system_with(servers, &[]).await
}

/// [`ready_system`] with settings of its own.
async fn ready_system_with(
    servers: &RealServers,
    settings: &[(&str, &str)],
) -> (System, User, User, String) {
    let sys = System::processes_with(servers, settings).await;
    let (owner, traveler, pid) = sys.listed_property("Tavira").await;
    (sys, owner, traveler, pid)
}

async fn cancel_as_traveler(sys: &System, traveler: &User, booking_id: &str) {
    sys.traveler_put(traveler, &format!("bookings/{booking_id}/cancel"), None)
        .await
        .expect(202);
}

/// Asserts that `booking-requests.dlq` stays empty (read for 10 s).
fn assert_nothing_dead_lettered(sys: &System, servers: &RealServers) {
    let dead = read_topic(
        &servers.kafka_brokers,
        &sys.env.as_ref().unwrap().topic("booking-requests.dlq"),
        Duration::from_secs(10),
    );
    assert!(
        dead.is_empty(),
        "nothing dead-lettered: {} letters",
        dead.len()
    );
}

/// The event types of `key` on `topic`, in topic order.
fn types_on_topic(sys: &System, brokers: &str, topic: &str, key: &str) -> Vec<String> {
    let topic = sys.env.as_ref().unwrap().topic(topic);
    read_topic(brokers, &topic, Duration::from_secs(20))
        .iter()
        .filter(|m| m.key.as_deref() == Some(key.as_bytes()))
        .map(|m| m.json()["event_type"].as_str().unwrap().to_string())
        .collect()
}

/// Creates a booking and cancels it while the broker is down, `pause` apart,
/// then brings the broker back; returns the booking id once both events are
/// on the topic, after checking they are there once each, in write order.
/// `settings` go to both services.
async fn create_and_cancel_while_kafka_is_down(
    pause: Duration,
    settings: &[(&str, &str)],
) -> Option<(PrivateKafka, RealServers, System, User, User, String)> {
    let (mut broker, servers) =
        private_broker_for("event_order create and cancel while kafka is down")?;
    let (sys, owner, traveler, pid) = ready_system_with(&servers, settings).await;

    broker.kill();
    let id = sys.book_id(&traveler, &pid, 12, 2).await;
    tokio::time::sleep(pause).await;
    cancel_as_traveler(&sys, &traveler, &id).await;
    broker.restart();

    let published = eventually("both events on the topic", PROPAGATION, || {
        let (sys, brokers, id) = (&sys, servers.kafka_brokers.clone(), id.clone());
        async move {
            let types = types_on_topic(sys, &brokers, "booking-requests", &id);
            (types.len() >= 2).then_some(types)
        }
    })
    .await;
    assert_eq!(
        published,
        vec!["booking.requested", "booking.cancellation_requested"],
        "published once each, in write order"
    );
    Some((broker, servers, sys, owner, traveler, id))
}

/// [`create_and_cancel_while_kafka_is_down`], then both services end
/// CANCELLED and nothing was dead-lettered (each event is on the topic once,
/// checked by the helper).
async fn ends_cancelled_on_both_sides(pause: Duration, settings: &[(&str, &str)]) {
    let Some((_broker, servers, sys, owner, traveler, id)) =
        create_and_cancel_while_kafka_is_down(pause, settings).await
    else {
        return;
    };
    sys.wait_owner_status(&owner, &id, "CANCELLED").await;
    sys.wait_traveler_status(&traveler, &id, "CANCELLED").await;
    assert_nothing_dead_lettered(&sys, &servers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_created_and_cancelled_while_kafka_is_down_ends_cancelled_on_both_sides() {
    ends_cancelled_on_both_sides(Duration::ZERO, &[]).await;
}

/// With a delivery timeout of 5 s here (60 s by default), the booking's
/// first publish has failed before the cancellation is written. The relay still publishes the
/// two in write order, once each, after librdkafka bumped the idempotent
/// producer's epoch for the timed-out message. The outage outlasts the
/// consumers' sessions: both services' consumers get their partitions back
/// from the broker's coordinator within the usual propagation bound, and
/// both services end CANCELLED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_publish_timed_out_the_booking_and_its_cancellation_are_published_in_order() {
    ends_cancelled_on_both_sides(
        Duration::from_secs(20),
        &[("KAFKA_DELIVERY_TIMEOUT_MS", "5000")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_approval_then_cancellation_while_kafka_is_down_reach_the_traveler_in_order() {
    let Some((mut broker, servers)) =
        private_broker_for("event_order approve and cancel while kafka is down")
    else {
        return;
    };
    let (sys, owner, traveler, pid) = ready_system(&servers).await;
    let id = sys.book_seen(&owner, &traveler, &pid, 12, 2).await;

    broker.kill();
    sys.decide(&owner, &id, "approve", None).await.expect(200);
    sys.decide(
        &owner,
        &id,
        "cancel",
        Some(serde_json::json!({"reason": "pipe burst"})),
    )
    .await
    .expect(200);
    broker.restart();

    sys.wait_traveler_status(&traveler, &id, "CANCELLED").await;
    let mut notes: Vec<Value> = sys
        .traveler_notifications(&traveler)
        .await
        .into_iter()
        .filter(|n| n["booking_id"] == id.as_str())
        .collect();
    notes.sort_by_key(|n| n["created_at"].as_str().unwrap().to_string());
    let statuses: Vec<&str> = notes
        .iter()
        .map(|n| n["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["ACCEPTED", "CANCELLED"], "{notes:?}");
    assert_eq!(
        types_on_topic(&sys, &servers.kafka_brokers, "booking-updates", &id).len(),
        2,
        "each decision published once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_received_before_its_booking_is_parked_and_applied_when_it_arrives() {
    let Some(servers) = real_servers("event_order parked cancellation") else {
        return;
    };
    let (sys, owner, _traveler, pid) = ready_system(&servers).await;
    let env = sys.env.as_ref().unwrap();
    let topic = env.topic("booking-requests");
    let booking_id = uuid::Uuid::new_v4().to_string();
    let traveler_id = uuid::Uuid::new_v4().to_string();
    let requested = booking_requested(&booking_id, &pid, &owner.id, &traveler_id, 20, "USD");
    let cancelled = Envelope::new(
        "traveler-service",
        BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
            booking_id: booking_id.as_str().into(),
            traveler_id: traveler_id.into(),
            reason: Some("changed plans".into()),
            requested_at: events::timestamp::now(),
        }),
    );
    // The cancellation first, as a fault (or a replay) could deliver them.
    for envelope in [&cancelled, &requested] {
        produce_event(
            &servers.kafka_brokers,
            &topic,
            booking_id.as_bytes(),
            envelope,
        )
        .await;
    }

    let booking = sys
        .wait_owner_status(&owner, &booking_id, "CANCELLED")
        .await;
    assert_eq!(booking["version"], 1, "{booking}");
    assert_nothing_dead_lettered(&sys, &servers);
    assert_eq!(
        types_on_topic(&sys, &servers.kafka_brokers, "booking-updates", &booking_id),
        vec!["booking.status_changed"],
        "one decision: CANCELLED"
    );
}
