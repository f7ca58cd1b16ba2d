//! MongoDB plumbing shared by both services: connecting, index creation,
//! error mapping and the readiness check. The features' MongoDB adapters
//! live with their features (the outbox's in [`crate::outbox`]) and use
//! these helpers.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use bson::{doc, Bson, Document};
use futures::TryStreamExt;
use mongodb::{
    action::Find,
    error::{Error, ErrorKind, WriteFailure},
    event::{command::CommandEvent, EventHandler},
    options::{ClientOptions, IndexOptions},
    Client, Collection, Database, IndexModel,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{de::DeserializeOwned, Serialize};

mod insert_batcher;

pub use insert_batcher::{InsertBatcher, Inserted};

use crate::{
    config::scrub_uri_password,
    http::ReadinessCheck,
    metrics::Metrics,
    paging::{After, List, Order, Page, PageRequest},
    store::StoreError,
};

/// How long an operation waits for a reachable server before failing (and
/// the caller answering 503 or retrying), instead of the driver's 30 s.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to `uri` and returns the service's own database. An error about
/// the URI does not repeat its password, whatever the driver's message says.
pub async fn connect(
    uri: &SecretString,
    database: &str,
    app_name: &str,
) -> Result<Database, StoreError> {
    connect_observed(uri, database, app_name, None).await
}

/// [`connect`], timing every command into `metrics`
/// (`mongodb_command_duration_seconds`) through the driver's command
/// monitoring, when given.
pub async fn connect_observed(
    uri: &SecretString,
    database: &str,
    app_name: &str,
    metrics: Option<Arc<Metrics>>,
) -> Result<Database, StoreError> {
    let uri = uri.expose_secret();
    let mut options = ClientOptions::parse(uri).await.map_err(|e| {
        StoreError::unavailable(format!(
            "invalid MONGODB_URI: {}",
            scrub_uri_password(&e.to_string(), uri)
        ))
    })?;
    options
        .server_selection_timeout
        .get_or_insert(SERVER_SELECTION_TIMEOUT);
    options.app_name.get_or_insert(app_name.to_string());
    if let Some(metrics) = metrics {
        // A command's collection is named only in its started event; its
        // outcome carries the same request id.
        let collections = InFlightCollections::default();
        options.command_event_handler = Some(EventHandler::callback(move |event| match event {
            CommandEvent::Started(e) => collections.started(e.request_id, &e.command),
            CommandEvent::Succeeded(e) => metrics.mongodb_command(
                &e.command_name,
                &collections.finished(e.request_id),
                e.duration,
            ),
            CommandEvent::Failed(e) => metrics.mongodb_command(
                &e.command_name,
                &collections.finished(e.request_id),
                e.duration,
            ),
            // The enum is non-exhaustive.
            _ => {}
        }));
    }
    let client = Client::with_options(options).map_err(read_error)?;
    Ok(client.database(database))
}

/// The collection of each command in flight, by request id, from its
/// started event until its outcome: what labels
/// `mongodb_command_duration_seconds` by collection.
#[derive(Default)]
struct InFlightCollections(std::sync::Mutex<std::collections::HashMap<i32, String>>);

impl InFlightCollections {
    fn started(&self, request_id: i32, command: &Document) {
        let collection = command_collection(command);
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(request_id, collection);
    }

    fn finished(&self, request_id: i32) -> String {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&request_id)
            .unwrap_or_default()
    }
}

/// The collection a command names: the value of its first field for
/// `find`, `insert`, `update`, `findAndModify`, `aggregate` and the like,
/// `collection` for `getMore`; empty for database commands (`ping`,
/// `hello`, `serverStatus`).
fn command_collection(command: &Document) -> String {
    if let Ok(name) = command.get_str("collection") {
        return name.to_string();
    }
    match command.iter().next() {
        Some((_, bson::Bson::String(name))) => name.clone(),
        _ => String::new(),
    }
}

/// An index on `keys` with the default options, for [`ensure_indexes`]:
/// most of the adapters' indexes are no more than their keys.
pub fn index(keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).build()
}

/// Options for a unique index.
pub fn unique() -> IndexOptions {
    IndexOptions::builder().unique(true).build()
}

/// Creates indexes (a no-op when they exist).
pub async fn ensure_indexes<T: Send + Sync>(
    collection: &Collection<T>,
    indexes: Vec<IndexModel>,
) -> Result<(), StoreError> {
    collection
        .create_indexes(indexes)
        .await
        .map(|_| ())
        .map_err(read_error)
}

/// Drops indexes an earlier version created and a newer one replaced (by
/// name), so a deployment does not keep paying for them on every write.
/// One that does not exist (a new database, or dropped already) is fine.
pub async fn drop_superseded_indexes<T: Send + Sync>(
    collection: &Collection<T>,
    names: &[&str],
) -> Result<(), StoreError> {
    /// The server's codes for dropping an index, or from a collection,
    /// that does not exist.
    const NOT_FOUND: [i32; 2] = [27, 26];
    for name in names {
        let result = collection.drop_index(*name).await;
        match result {
            Ok(()) => tracing::info!(
                collection = collection.name(),
                index = name,
                "dropped an index a newer one replaced"
            ),
            Err(e) => {
                let absent =
                    matches!(e.kind.as_ref(), ErrorKind::Command(c) if NOT_FOUND.contains(&c.code));
                if !absent {
                    return Err(read_error(e));
                }
            }
        }
    }
    Ok(())
}

/// Adds to `filter` the condition "after the cursor of `page`" for a list
/// ordered by `field` then `_id` in `order` (see [`crate::paging`]).
///
/// Written as a range on `field` (which an index on `…, field, _id` turns
/// into index bounds) plus the tie-break among items with the cursor's own
/// key, rather than as a bare `$or`, so the planner keeps the index bounds.
/// `filter` must not have an `$or` of its own.
pub fn page_filter(filter: &mut Document, field: &str, order: Order, page: &PageRequest) {
    let Some(after) = &page.after else {
        return;
    };
    let (within, beyond) = match order {
        Order::NewestFirst => ("$lte", "$lt"),
        Order::ByName => ("$gte", "$gt"),
    };
    filter.insert(field, doc! {within: &after.key});
    filter.insert(
        "$or",
        vec![
            doc! {field: {beyond: &after.key}},
            doc! {"_id": {beyond: &after.id}},
        ],
    );
}

/// The condition on a `status` field for a list filtered by `status`, or
/// not: then every status is named, so that an index on `…, status, sort
/// key` is walked as one ordered run per status, merged, instead of being
/// read whole and sorted.
pub fn status_filter(status: Option<events::BookingStatus>) -> bson::Bson {
    match status {
        Some(s) => s.as_str().into(),
        None => doc! {"$in": events::BookingStatus::ALL.map(|s| s.as_str()).to_vec()}.into(),
    }
}

/// The sort of a list ordered by `field` then `_id` in `order`.
pub fn page_sort(field: &str, order: Order) -> Document {
    let direction = match order {
        Order::NewestFirst => -1,
        Order::ByName => 1,
    };
    doc! {field: direction, "_id": direction}
}

/// The field a stored list is sorted by (then by `_id`): `created_at` for
/// a list newest first, `name` for one by name, as every list's documents
/// hold their [`After::key`].
pub fn sort_field(order: Order) -> &'static str {
    match order {
        Order::NewestFirst => "created_at",
        Order::ByName => "name",
    }
}

/// Reads the page `page` asks for of `list`: the documents matching
/// `filter` after its cursor (see [`page_filter`]), sorted by the list's
/// [`sort_field`] then `_id`, at most [`PageRequest::fetch`] of them and
/// without the fields `projection` leaves out, made a [`Page`] with
/// `key_of` (each item's place in the list). One `find` command, which an
/// index on `…, sort field, _id` serves as a bounded walk: how every list
/// of the services' MongoDB adapters is read.
pub async fn find_page<T>(
    collection: &Collection<T>,
    mut filter: Document,
    projection: impl Into<Option<Document>>,
    page: &PageRequest,
    list: List,
    key_of: impl Fn(&T) -> After,
) -> Result<Page<T>, StoreError>
where
    T: DeserializeOwned + Send + Sync + Unpin,
{
    let field = sort_field(list.order);
    page_filter(&mut filter, field, list.order, page);
    let mut find = collection
        .find(filter)
        .sort(page_sort(field, list.order))
        .limit(page.fetch() as i64);
    if let Some(projection) = projection.into() {
        find = find.projection(projection);
    }
    Ok(Page::from_fetched(find_all(find).await?, page, key_of))
}

/// The document stored under `id`, if there is one, without the fields
/// `projection` leaves out: one `find` by `_id`.
pub async fn find_by_id<T>(
    collection: &Collection<T>,
    id: impl Into<Bson>,
    projection: impl Into<Option<Document>>,
) -> Result<Option<T>, StoreError>
where
    T: DeserializeOwned + Send + Sync,
{
    let mut find = collection.find_one(doc! {"_id": id.into()});
    if let Some(projection) = projection.into() {
        find = find.projection(projection);
    }
    find.await.map_err(read_error)
}

/// Runs `find` and reads every document it returns: a failure of the
/// command or of any later batch is a [`read_error`]. For reads bounded by
/// their filter or limit (a page, the documents of a few ids).
pub async fn find_all<T>(find: Find<'_, T>) -> Result<Vec<T>, StoreError>
where
    T: DeserializeOwned + Send + Sync + Unpin,
{
    find.await
        .map_err(read_error)?
        .try_collect()
        .await
        .map_err(read_error)
}

/// `value` encoded as a document (see [`encode_error`]).
pub fn to_document<T: Serialize>(value: &T) -> Result<Document, StoreError> {
    bson::to_document(value).map_err(encode_error)
}

/// `value` encoded as a document stored under `id`, such as an entity
/// under its typed id: the adapters key their documents by the entity's
/// own id, so a redelivered insert meets the unique `_id`.
pub fn with_id<T: Serialize>(value: &T, id: impl Into<Bson>) -> Result<Document, StoreError> {
    let mut document = to_document(value)?;
    document.insert("_id", id.into());
    Ok(document)
}

/// A stored document decoded as `T` (`what` names it, see
/// [`decode_error`]).
pub fn from_document<T: DeserializeOwned>(document: Document, what: &str) -> Result<T, StoreError> {
    bson::from_document(document).map_err(|e| decode_error(what, e))
}

/// The outcome of an insert that a redelivery repeats: `true` when it
/// stored its documents, `false` when a unique index refused them as
/// stored already (for an unordered `insertMany`, the rest were stored),
/// any other failure as [`read_error`] maps it.
pub fn inserted_once<R>(result: Result<R, Error>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_duplicate_key(&e) => Ok(false),
        Err(e) => Err(read_error(e)),
    }
}

/// The server's code for a write refused by a unique index.
pub(crate) const DUPLICATE_KEY: i32 = 11000;

/// Whether a write failed on a unique index.
pub fn is_duplicate_key(e: &Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        ErrorKind::Command(c) => c.code == DUPLICATE_KEY,
        ErrorKind::InsertMany(m) => m
            .write_errors
            .as_ref()
            .is_some_and(|errs| errs.iter().all(|w| w.code == DUPLICATE_KEY)),
        _ => e.to_string().contains("E11000"),
    }
}

/// Maps a failed write: duplicates become [`StoreError::Duplicate`] (`what`
/// names the thing for the message); anything else as [`classify`] says.
pub fn write_error(e: Error, what: &str) -> StoreError {
    if is_duplicate_key(&e) {
        StoreError::Duplicate(what.to_string())
    } else {
        classify(e)
    }
}

/// Maps a failed read as [`classify`] says.
pub fn read_error(e: Error) -> StoreError {
    classify(e)
}

/// A value that cannot be encoded is a bug: retrying cannot help.
pub fn encode_error(e: bson::ser::Error) -> StoreError {
    StoreError::permanent_from("cannot encode a document", e)
}

/// A stored document that cannot be decoded (`what` names it): retrying
/// cannot help.
pub fn decode_error(what: &str, e: bson::de::Error) -> StoreError {
    StoreError::permanent_from(format!("cannot decode {what}"), e)
}

/// Server error codes of a command or write that will fail again however
/// often it is retried: the request itself is wrong for this server.
/// (Everything else the server answers is taken as transient: a code not
/// listed here is retried, which at worst delays, rather than dropped.)
const PERMANENT_CODES: &[i32] = &[
    2,     // BadValue
    9,     // FailedToParse
    14,    // TypeMismatch
    16,    // InvalidLength
    17,    // ProtocolError
    22,    // InvalidBSON
    28,    // PathNotViable
    40,    // ConflictingUpdateOperators
    52,    // DollarPrefixedFieldName
    56,    // EmptyFieldName
    57,    // DottedFieldName
    66,    // ImmutableField
    121,   // DocumentValidationFailure
    10334, // BSONObjectTooLarge
    17419, // the resulting document exceeds the maximum size
];

/// Decides a driver error's kind from its kind and server codes, never from
/// its message, keeping it as the source:
/// - an encoding or decoding failure, an invalid argument, or a server code
///   in [`PERMANENT_CODES`]: [`StoreError::Permanent`];
/// - anything else (network, server selection, timeouts, elections, write
///   concern, authentication, other server codes): [`StoreError::Unavailable`].
pub fn classify(e: Error) -> StoreError {
    let permanent = match e.kind.as_ref() {
        ErrorKind::BsonSerialization(_)
        | ErrorKind::BsonDeserialization(_)
        | ErrorKind::InvalidArgument { .. } => true,
        ErrorKind::Command(c) => PERMANENT_CODES.contains(&c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => PERMANENT_CODES.contains(&w.code),
        ErrorKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .any(|w| PERMANENT_CODES.contains(&w.code)),
        _ => false,
    };
    if permanent {
        StoreError::permanent_from("the database refused the operation", e)
    } else {
        StoreError::unavailable_from("the database failed", e)
    }
}

/// Whether a server error code means the operation will never succeed
/// (see [`PERMANENT_CODES`]), for replies read as raw documents.
pub fn is_permanent_code(code: i32) -> bool {
    PERMANENT_CODES.contains(&code)
}

/// The kind of one write error of a batch, by its code (see [`classify`]).
pub(crate) fn classify_write_error(code: i32, message: &str) -> StoreError {
    let context = format!("write error {code}: {message}");
    if PERMANENT_CODES.contains(&code) {
        StoreError::Permanent {
            context,
            source: None,
        }
    } else {
        StoreError::unavailable(context)
    }
}

/// Readiness: the server answers `ping`.
pub struct MongoReadiness {
    db: Database,
}

impl MongoReadiness {
    pub fn new(db: &Database) -> Self {
        Self { db: db.clone() }
    }
}

#[async_trait]
impl ReadinessCheck for MongoReadiness {
    fn name(&self) -> &'static str {
        "mongodb"
    }

    async fn check(&self) -> Result<(), String> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_labelled_with_the_collection_it_names() {
        assert_eq!(
            command_collection(&doc! {"find": "bookings", "filter": {}}),
            "bookings"
        );
        assert_eq!(
            command_collection(&doc! {"getMore": 42_i64, "collection": "catalog"}),
            "catalog"
        );
        assert_eq!(command_collection(&doc! {"ping": 1}), "");
        let collections = InFlightCollections::default();
        collections.started(7, &doc! {"insert": "notifications"});
        assert_eq!(collections.finished(7), "notifications");
        assert_eq!(collections.finished(7), "", "forgotten once finished");
    }
}
