//! The services' databases, read directly.

use std::{collections::BTreeSet, time::Duration};

use futures::StreamExt;

/// A database on the server at `uri`, with a short server selection timeout.
pub async fn database(uri: &str, name: &str) -> mongodb::Database {
    let mut options = mongodb::options::ClientOptions::parse(uri)
        .await
        .expect("MongoDB URI");
    options.server_selection_timeout = Some(Duration::from_secs(10));
    mongodb::Client::with_options(options)
        .expect("MongoDB client")
        .database(name)
}

/// The `_id`s of a collection and how many documents still carry events in
/// their `outbox` (not yet relayed).
pub async fn stored(db: &mongodb::Database, collection: &str) -> (BTreeSet<String>, usize) {
    let coll = db.collection::<bson::Document>(collection);
    let mut cursor = coll
        .find(bson::doc! {})
        .projection(bson::doc! {"_id": 1, "outbox": 1})
        .await
        .expect("read collection");
    let mut ids = BTreeSet::new();
    let mut pending = 0;
    while let Some(doc) = cursor.next().await {
        let doc = doc.expect("document");
        ids.insert(doc.get_str("_id").expect("string _id").to_string());
        if doc.get_array("outbox").is_ok_and(|o| !o.is_empty()) {
            pending += 1;
        }
    }
    (ids, pending)
}
