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
