//! `mongo::drop_superseded_indexes` against the real MongoDB-protocol
//! server: an index a newer one replaced is dropped, and one that is not
//! there (a new database, or a second start) is no error.

use bson::{doc, Document};
use mongodb::IndexModel;
use service_runtime::mongo;
use test_support::{fresh_database, real_servers};

async fn index_names(coll: &mongodb::Collection<Document>) -> Vec<String> {
    coll.list_index_names().await.expect("list indexes")
}

#[tokio::test]
async fn superseded_indexes_are_dropped_once_and_absent_ones_are_fine() {
    let Some(servers) = real_servers("mongo_indexes") else {
        return;
    };
    let db = fresh_database(&servers, "indexes").await;
    let coll = db.collection::<Document>("things");
    mongo::ensure_indexes(
        &coll,
        vec![
            IndexModel::builder().keys(doc! {"a": 1, "b": -1}).build(),
            IndexModel::builder()
                .keys(doc! {"a": 1, "b": -1, "_id": -1})
                .build(),
        ],
    )
    .await
    .unwrap();
    mongo::drop_superseded_indexes(&coll, &["a_1_b_-1", "never_1"])
        .await
        .unwrap();
    let mut names = index_names(&coll).await;
    names.sort();
    assert_eq!(names, ["_id_", "a_1_b_-1__id_-1"]);
    // Again (the next start), and on a collection that does not exist.
    mongo::drop_superseded_indexes(&coll, &["a_1_b_-1"])
        .await
        .unwrap();
    mongo::drop_superseded_indexes(&db.collection::<Document>("nothing"), &["a_1"])
        .await
        .unwrap();
    assert_eq!(index_names(&coll).await.len(), 2);
}
