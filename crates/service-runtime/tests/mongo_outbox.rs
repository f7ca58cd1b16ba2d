//! `MongoOutbox` against the real MongoDB-protocol server: events a write
//! hands over are published without reading them back, and events nobody
//! handed over (another replica's) are still found within `FULL_SWEEP`.

use std::time::Duration;

use bson::{doc, Document};
use chrono::Utc;
use futures::TryStreamExt;
use service_runtime::{
    mongo::{outbox_entry, MongoOutbox},
    outbox::{OutboxMessage, OutboxSignal, OutboxStore},
};
use test_support::{eventually, fresh_database, real_servers, unique};

fn message(key: &str) -> OutboxMessage {
    OutboxMessage {
        event_id: unique("event"),
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

fn ids(batch: &[OutboxMessage]) -> Vec<&str> {
    let mut ids: Vec<_> = batch.iter().map(|m| m.event_id.as_str()).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn handed_over_events_go_out_without_a_read_and_sweeps_find_the_rest_within_a_second() {
    let Some(servers) = real_servers("mongo_outbox_hand_over") else {
        return;
    };
    let db = fresh_database(&servers, "outbox").await;
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
        .find(doc! {"outbox.event_id": &ours.event_id})
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
        &service_runtime::mongo::outbox_ids(&document),
    );
}

/// An event appended behind an undelivered one of the same document (its
/// publish failed while the broker was away) is not handed straight to the
/// broker: the batch carries both, in write order. Once the earlier one is
/// delivered, the next appended event goes out at once.
#[tokio::test]
async fn an_event_behind_an_undelivered_one_leaves_after_it() {
    let Some(servers) = real_servers("mongo_outbox_order") else {
        return;
    };
    let db = fresh_database(&servers, "outbox").await;
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
