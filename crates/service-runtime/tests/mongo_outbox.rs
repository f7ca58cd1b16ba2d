//! `MongoOutbox` against the real MongoDB-protocol server: woken by a write,
//! the relay looks only in the collections the write named, and still finds
//! events no signal told it about (another replica's) within `FULL_SWEEP`.

use std::time::Duration;

use bson::{doc, Document};
use chrono::Utc;
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
async fn a_signalled_look_reads_the_written_collection_and_sweeps_the_rest_within_a_second() {
    let Some(servers) = real_servers("mongo_outbox_signalled_look") else {
        return;
    };
    let db = fresh_database(&servers, "outbox").await;
    let signal = OutboxSignal::default();
    let outbox = MongoOutbox::new(&db, &["a", "b"], "outbox-test", signal.clone())
        .await
        .expect("outbox");

    // The first look is a full one: both collections.
    let (first_a, first_b) = (message("a1"), message("b1"));
    add(&db, "a", &first_a).await;
    add(&db, "b", &first_b).await;
    let batch = outbox.pending(10).await.unwrap();
    let mut expected = vec![first_a.event_id.as_str(), first_b.event_id.as_str()];
    expected.sort();
    assert_eq!(ids(&batch), expected);
    outbox
        .mark_published(&[first_a.event_id.clone(), first_b.event_id.clone()])
        .await
        .unwrap();

    // This process wrote to `a` and said so; someone else wrote to `b`.
    let (ours, theirs) = (message("a2"), message("b2"));
    add(&db, "b", &theirs).await;
    add(&db, "a", &ours).await;
    signal.notify_written("a");
    let batch = outbox.pending(10).await.unwrap();
    assert_eq!(
        ids(&batch),
        vec![ours.event_id.as_str()],
        "a signalled look reads only `a`"
    );
    outbox
        .mark_published(std::slice::from_ref(&ours.event_id))
        .await
        .unwrap();

    // Unsignalled events are found by the next full look, within a second
    // even while signals keep coming.
    let found = eventually("the unsignalled event", Duration::from_secs(5), || {
        let (outbox, signal, theirs) = (&outbox, &signal, &theirs);
        async move {
            signal.notify_written("a");
            let batch = outbox.pending(10).await.unwrap();
            batch
                .iter()
                .any(|m| m.event_id == theirs.event_id)
                .then_some(())
        }
    });
    found.await;
}
