//! `MongoOutbox` against the real MongoDB-protocol server: events a write
//! hands over are published without reading them back, and events nobody
//! handed over (another replica's) are still found within `FULL_SWEEP`; the
//! relay lease is timed by the server's clock and kept while a publish is in
//! flight.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use bson::{doc, Document};
use chrono::Utc;
use events::EventId;
use futures::TryStreamExt;
use mongodb::Database;
use service_runtime::{
    messaging::EventPublisher,
    outbox::{
        outbox_entry, run_relay, MongoOutbox, OutboxMessage, OutboxSignal, OutboxStore, RelayConfig,
    },
};
use test_support::{eventually, fresh_database, real_servers, unique};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

fn message(key: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: unique("event").into(),
        topic: "t".into(),
        key: key.into(),
        payload: "{}".into(),
        headers: vec![],
        created_at: Utc::now(),
    }
}

async fn add(db: &mongodb::Database, collection: &str, m: &OutboxMessage) {
    db.collection::<Document>(collection)
        .insert_one(doc! {"_id": &m.key, "outbox": [outbox_entry(m).unwrap()]})
        .await
        .expect("insert");
}

/// A fresh database for outbox `test` on the real MongoDB server; `None`
/// (the test passes without running) when no real servers are configured.
async fn outbox_database(test: &str) -> Option<Database> {
    let servers = real_servers(test)?;
    Some(fresh_database(&servers, "outbox").await)
}

fn ids(batch: &[OutboxMessage]) -> Vec<&str> {
    let mut ids: Vec<_> = batch.iter().map(|m| m.event_id.as_str()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn handed_over_events_go_out_without_a_read_and_sweeps_find_the_rest_within_a_second() {
    let Some(db) = outbox_database("mongo_outbox_hand_over").await else {
        return;
    };
    let signal = OutboxSignal::default();
    let outbox = MongoOutbox::new(&db, &["a", "b"], "outbox-test", signal.clone())
        .await
        .expect("outbox");

    // The first look sweeps both collections.
    let (first_a, first_b) = (message("a1"), message("b1"));
    add(&db, "a", &first_a).await;
    add(&db, "b", &first_b).await;
    let batch = outbox.next_batch(10).await.unwrap();
    let mut expected = vec![first_a.event_id.as_str(), first_b.event_id.as_str()];
    expected.sort();
    assert_eq!(ids(&batch), expected);
    outbox
        .mark_published(&[first_a.event_id.clone(), first_b.event_id.clone()])
        .await
        .unwrap();

    // This process wrote to `a` and handed its event over; someone else
    // wrote to `b`. Within a second of the sweep, only the hand-over is
    // published: nothing is read.
    let (ours, theirs) = (message("a2"), message("b2"));
    add(&db, "b", &theirs).await;
    add(&db, "a", &ours).await;
    signal.committed("a", [ours.clone()]);
    let batch = outbox.next_batch(10).await.unwrap();
    assert_eq!(ids(&batch), vec![ours.event_id.as_str()]);
    outbox
        .mark_published(std::slice::from_ref(&ours.event_id))
        .await
        .unwrap();
    // Delivered events leave their documents in batches, a little later;
    // meanwhile no look returns them.
    assert!(
        outbox
            .pending(10)
            .await
            .unwrap()
            .iter()
            .all(|m| m.event_id != ours.event_id),
        "a delivered event is not pending"
    );
    outbox.remove_delivered(true).await.unwrap();
    let left: Vec<Document> = db
        .collection::<Document>("a")
        .find(doc! {"outbox.event_id": ours.event_id.as_str()})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty(), "a published hand-over leaves the outbox");

    // Events nobody handed over are swept within a second even while
    // hand-overs keep coming, and a hand-over of an event a sweep already
    // returned is not published twice.
    let swept = eventually("the unsignalled event", Duration::from_secs(5), || {
        let (outbox, signal, theirs) = (&outbox, &signal, &theirs);
        async move {
            let next = message("a3");
            signal.committed("a", [next]);
            let batch = outbox.next_batch(10).await.unwrap();
            // Delivered, as the relay marks every batch before its next
            // look (an unmarked one is swept for again at once).
            let delivered: Vec<EventId> = batch.iter().map(|m| m.event_id.clone()).collect();
            outbox.mark_published(&delivered).await.unwrap();
            batch
                .iter()
                .any(|m| m.event_id == theirs.event_id)
                .then_some(())
        }
    });
    swept.await;
    signal.committed("b", [theirs.clone()]);
    let batch = outbox.next_batch(10).await.unwrap();
    assert!(
        batch.iter().all(|m| m.event_id != theirs.event_id),
        "a swept event handed over later is not published again"
    );
}

/// Pushes `m` onto the outbox of document `id` in `collection` and hands it
/// over as the stores do, with the ids the document then held.
async fn append(
    db: &mongodb::Database,
    signal: &OutboxSignal,
    collection: &'static str,
    id: &str,
    m: &OutboxMessage,
) {
    let document = db
        .collection::<Document>(collection)
        .find_one_and_update(
            doc! {"_id": id},
            doc! {"$push": {"outbox": outbox_entry(m).unwrap()}},
        )
        .projection(doc! {"outbox.event_id": 1})
        .return_document(mongodb::options::ReturnDocument::After)
        .await
        .unwrap()
        .expect("the document exists");
    signal.appended(
        collection,
        m.clone(),
        &service_runtime::outbox::outbox_ids(&document),
    );
}

/// An event appended behind an undelivered one of the same document (its
/// publish failed while the broker was away) is not handed straight to the
/// broker: the batch carries both, in write order. Once the earlier one is
/// delivered, the next appended event goes out at once.
#[tokio::test]
async fn an_event_behind_an_undelivered_one_leaves_after_it() {
    let Some(db) = outbox_database("mongo_outbox_order").await else {
        return;
    };
    let signal = OutboxSignal::default();
    let outbox = MongoOutbox::new(&db, &["a"], "outbox-test", signal.clone())
        .await
        .expect("outbox");
    let created = message("booking-1");
    add(&db, "a", &created).await;
    signal.committed("a", [created.clone()]);
    let first = outbox.next_batch(10).await.unwrap();
    assert!(first.iter().any(|m| m.event_id == created.event_id));
    // Not delivered (the publish failed): nothing is marked.

    let cancelled = message("booking-1");
    append(&db, &signal, "a", "booking-1", &cancelled).await;
    let batch = outbox.next_batch(10).await.unwrap();
    let order: Vec<&str> = batch.iter().map(|m| m.event_id.as_str()).collect();
    assert_eq!(
        order,
        vec![created.event_id.as_str(), cancelled.event_id.as_str()],
        "the earlier event first, then the one behind it"
    );

    outbox
        .mark_published(&[created.event_id.clone(), cancelled.event_id.clone()])
        .await
        .unwrap();
    let next = message("booking-1");
    append(&db, &signal, "a", "booking-1", &next).await;
    let batch = outbox.next_batch(10).await.unwrap();
    assert_eq!(
        batch
            .iter()
            .map(|m| m.event_id.as_str())
            .collect::<Vec<_>>(),
        vec![next.event_id.as_str()],
        "behind delivered events only: handed over at once"
    );
}

/// The relay lease document of service `service`.
async fn lease(db: &mongodb::Database, service: &str) -> Document {
    db.collection::<Document>("outbox_leases")
        .find_one(doc! {"_id": format!("{service}-relay")})
        .await
        .expect("read lease")
        .expect("lease exists")
}

/// The database server's current time.
async fn server_now(db: &mongodb::Database) -> bson::DateTime {
    *db.run_command(doc! {"hello": 1})
        .await
        .expect("hello")
        .get_datetime("localTime")
        .expect("hello.localTime")
}

/// Waits until the server's clock has passed `instant`.
async fn until_server_passes(db: &mongodb::Database, instant: bson::DateTime) {
    eventually(
        "the server clock passes the lease expiry",
        Duration::from_secs(30),
        || async move { (server_now(db).await > instant).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn the_lease_is_timed_by_the_server_and_taken_over_only_once_expired() {
    let Some(db) = outbox_database("mongo_outbox_lease_clock").await else {
        return;
    };
    let (a, b) = (
        MongoOutbox::new(&db, &["a"], "lease-test", OutboxSignal::default())
            .await
            .expect("outbox a")
            .with_lease_ttl(Duration::from_millis(500)),
        MongoOutbox::new(&db, &["a"], "lease-test", OutboxSignal::default())
            .await
            .expect("outbox b"),
    );
    let event = message("k1");
    add(&db, "a", &event).await;

    // A takes the lease; the server set its expiry by its own clock.
    assert_eq!(
        ids(&a.pending(10).await.unwrap()),
        vec![event.event_id.as_str()]
    );
    let held = lease(&db, "lease-test").await;
    let (holder, expires) = (
        held.get_str("holder").unwrap().to_string(),
        *held.get_datetime("expires_at").unwrap(),
    );
    let checked = *held.get_datetime("checked_at").unwrap();
    assert_eq!(
        expires.timestamp_millis() - checked.timestamp_millis(),
        500,
        "expiry = the server's now + TTL: {held}"
    );

    // B is refused while it runs, and changes nothing.
    assert!(b.pending(10).await.unwrap().is_empty(), "B must not relay");
    let refused = lease(&db, "lease-test").await;
    assert_eq!(refused.get_str("holder").unwrap(), holder);
    assert_eq!(*refused.get_datetime("expires_at").unwrap(), expires);
    assert_eq!(*refused.get_datetime("checked_at").unwrap(), checked);

    // Once the server's clock passes the expiry, B takes over, and A,
    // asking again, is refused.
    until_server_passes(&db, expires).await;
    assert_eq!(
        ids(&b.pending(10).await.unwrap()),
        vec![event.event_id.as_str()]
    );
    let taken = lease(&db, "lease-test").await;
    assert_ne!(taken.get_str("holder").unwrap(), holder, "B holds it");
    assert!(a.pending(10).await.unwrap().is_empty(), "A lost it");
    assert_eq!(
        lease(&db, "lease-test").await.get_str("holder"),
        taken.get_str("holder")
    );

    // B releases it at shutdown: A may take it at once.
    b.release().await;
    assert_eq!(
        ids(&a.pending(10).await.unwrap()),
        vec![event.event_id.as_str()]
    );
    assert_eq!(
        lease(&db, "lease-test").await.get_str("holder").unwrap(),
        holder
    );
}

/// A publisher that holds every batch until the test lets it go.
struct HeldPublisher {
    started: Notify,
    go: Semaphore,
    published: Mutex<Vec<EventId>>,
}

impl HeldPublisher {
    fn new() -> Self {
        Self {
            started: Notify::new(),
            go: Semaphore::new(0),
            published: Mutex::default(),
        }
    }
}

#[async_trait]
impl EventPublisher for HeldPublisher {
    async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
        self.started.notify_one();
        self.go.acquire().await.expect("semaphore").forget();
        let mut published = self.published.lock().unwrap();
        published.extend(batch.iter().map(|m| m.event_id.clone()));
        batch.iter().map(|_| Ok(())).collect()
    }
}

#[tokio::test]
async fn the_relay_keeps_its_lease_while_a_publish_outlasts_it() {
    let Some(db) = outbox_database("mongo_outbox_lease_renewal").await else {
        return;
    };
    let ttl = Duration::from_secs(3);
    let relaying = Arc::new(
        MongoOutbox::new(&db, &["a"], "renewal-test", OutboxSignal::default())
            .await
            .expect("outbox")
            .with_lease_ttl(ttl),
    );
    let other = MongoOutbox::new(&db, &["a"], "renewal-test", OutboxSignal::default())
        .await
        .expect("other replica's outbox");
    let event = message("k1");
    add(&db, "a", &event).await;

    let publisher = Arc::new(HeldPublisher::new());
    let stop = CancellationToken::new();
    let relay = tokio::spawn(run_relay(
        relaying.clone(),
        publisher.clone(),
        OutboxSignal::default(),
        RelayConfig {
            lease_renewal: Duration::from_millis(50),
            ..RelayConfig::default()
        },
        stop.clone(),
        Arc::new(service_runtime::metrics::Metrics::new()),
    ));

    // The publish has begun and is held; the lease it started with passes.
    publisher.started.notified().await;
    let first = lease(&db, "renewal-test").await;
    let (holder, expires) = (
        first.get_str("holder").unwrap().to_string(),
        *first.get_datetime("expires_at").unwrap(),
    );
    until_server_passes(&db, expires).await;

    // It was renewed meanwhile: still the relay's, now expiring later, and
    // the other replica cannot take it.
    let renewed = lease(&db, "renewal-test").await;
    assert_eq!(renewed.get_str("holder").unwrap(), holder);
    assert!(
        *renewed.get_datetime("expires_at").unwrap() > expires,
        "renewed during the publish: {first} then {renewed}"
    );
    assert!(
        other.pending(10).await.unwrap().is_empty(),
        "no second relay"
    );
    assert_eq!(
        lease(&db, "renewal-test").await.get_str("holder").unwrap(),
        holder
    );

    // The publish completes; at shutdown the event leaves the outbox and
    // the lease is released, so the other replica takes it and finds nothing.
    publisher.go.add_permits(1);
    stop.cancel();
    relay.await.expect("relay task");
    assert_eq!(
        *publisher.published.lock().unwrap(),
        vec![event.event_id.clone()]
    );
    assert!(other.pending(10).await.unwrap().is_empty());
    assert_ne!(
        lease(&db, "renewal-test").await.get_str("holder").unwrap(),
        holder
    );
}

/// The backlog behind the `outbox_*` gauges counts every collection's
/// events, whoever holds the relay lease, and dates the oldest.
#[tokio::test]
async fn backlog_counts_every_collection_and_dates_the_oldest() {
    let Some(db) = outbox_database("mongo_outbox_backlog").await else {
        return;
    };
    let outbox = MongoOutbox::new(&db, &["a", "b"], "backlog-test", OutboxSignal::default())
        .await
        .expect("outbox");
    let empty = outbox.backlog().await.unwrap();
    assert_eq!((empty.pending, empty.oldest), (0, None));

    let mut old = message("a1");
    old.created_at = Utc::now() - chrono::Duration::seconds(90);
    add(&db, "a", &old).await;
    add(&db, "b", &message("b1")).await;
    add(&db, "b", &message("b2")).await;
    let backlog = outbox.backlog().await.unwrap();
    assert_eq!(backlog.pending, 3);
    let oldest = backlog.oldest.expect("dated");
    assert_eq!(
        oldest.timestamp_millis(),
        old.created_at.timestamp_millis(),
        "the oldest is the 90 s old event"
    );
}
