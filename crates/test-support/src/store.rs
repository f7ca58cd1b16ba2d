//! The store contract suites (`crates/*/tests/store_contract.rs`,
//! `service-runtime/tests/notification_store.rs`, ...): [`store_contract!`]
//! builds the store under test on both adapters and runs every check against
//! each; the helpers below are the test data and readings the suites share.
//!
//! [`store_contract!`]: crate::store_contract

use std::future::Future;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
pub use service_runtime::{
    outbox::{InMemoryOutbox, MongoOutbox, OutboxMessage, OutboxSignal, OutboxStore},
    paging::{Page, PageRequest},
};

/// Generates a store contract suite: for each check, `in_memory::<check>`
/// and `mongodb::<check>` tests that run `checks::<check>` against a
/// `Subject` built on the in-memory adapter and on the MongoDB one (skipped,
/// or failed under CI, when the real servers are absent). One suite, both
/// adapters, so they cannot drift apart.
///
/// With `store` (and optionally `outbox`), the macro also defines `Subject`
/// (`store`, and `outbox` when the store writes to one) and how each adapter
/// builds it: `in_memory` is given the in-memory outbox (`|outbox|`) or
/// nothing (`||`); `mongodb` is given the fresh database (`|db|`) and may
/// `.await`. Without them, the calling file defines `Subject`, `in_memory()`
/// and `async fn mongodb(test: &str) -> Option<Subject>` itself.
#[macro_export]
macro_rules! store_contract {
    (
        service: $service:literal,
        database: $database:literal,
        store: $store:ty,
        in_memory: |$mem_outbox:ident| $in_memory:expr,
        mongodb: |$db:ident| $mongodb:expr,
        outbox: ($collections:expr, $producer:literal),
        checks: [$($check:ident),+ $(,)?] $(,)?
    ) => {
        /// A store under test and the outbox its writes go to.
        struct Subject {
            store: ::std::sync::Arc<$store>,
            outbox: ::std::sync::Arc<dyn $crate::store::OutboxStore>,
        }

        fn in_memory() -> Subject {
            let outbox = ::std::sync::Arc::new($crate::store::InMemoryOutbox::new(
                $crate::store::OutboxSignal::default(),
            ));
            let $mem_outbox = outbox.clone();
            Subject {
                store: ::std::sync::Arc::new($in_memory),
                outbox,
            }
        }

        async fn mongodb(test: &str) -> Option<Subject> {
            let servers = $crate::real_servers(test)?;
            let database = $crate::fresh_database(&servers, $database).await;
            let $db = &database;
            let store = $mongodb.await.expect("the MongoDB store under test");
            let outbox = $crate::store::MongoOutbox::new(
                &database,
                $collections,
                $producer,
                $crate::store::OutboxSignal::default(),
            )
            .await
            .expect("MongoOutbox::new");
            Some(Subject {
                store: ::std::sync::Arc::new(store),
                outbox: ::std::sync::Arc::new(outbox),
            })
        }

        $crate::store_contract!($service; $($check),+);
    };
    (
        service: $service:literal,
        database: $database:literal,
        store: $store:ty,
        in_memory: || $in_memory:expr,
        mongodb: |$db:ident| $mongodb:expr,
        checks: [$($check:ident),+ $(,)?] $(,)?
    ) => {
        /// A store under test.
        struct Subject {
            store: ::std::sync::Arc<$store>,
        }

        fn in_memory() -> Subject {
            Subject {
                store: ::std::sync::Arc::new($in_memory),
            }
        }

        async fn mongodb(test: &str) -> Option<Subject> {
            let servers = $crate::real_servers(test)?;
            let database = $crate::fresh_database(&servers, $database).await;
            let $db = &database;
            let store = $mongodb.await.expect("the MongoDB store under test");
            Some(Subject {
                store: ::std::sync::Arc::new(store),
            })
        }

        $crate::store_contract!($service; $($check),+);
    };
    ($service:literal; $($check:ident),+ $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    super::checks::$check(super::in_memory()).await;
                }
            )+
        }
        mod mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $check() {
                    let name = concat!($service, " store_contract mongodb::", stringify!($check));
                    let Some(subject) = super::mongodb(name).await else { return };
                    super::checks::$check(subject).await;
                }
            )+
        }
    };
}

/// A fixed instant `seconds` after 2031-01-01 09:00 UTC, with millisecond
/// precision (what the stores keep).
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 1, 9, 0, 0).unwrap()
        + Duration::milliseconds(seconds * 1000 + 123)
}

/// A day of 2031 (the year of [`at`]), for stays.
pub fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2031, month, day).unwrap()
}

/// Every item of a list, read `limit` at a time by following each page's
/// cursor; checks that every page but the last is full and the last one
/// says so.
pub async fn walk<T, F, Fut>(limit: usize, read: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Page<T>>,
{
    walk_from(PageRequest::first(limit), read).await
}

/// [`walk`] from `request` on (its `after` cursor, or the first page).
pub async fn walk_from<T, F, Fut>(mut request: PageRequest, mut read: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Page<T>>,
{
    let limit = request.limit;
    let mut all = Vec::new();
    loop {
        let page = read(request.clone()).await;
        assert!(page.items.len() <= limit, "a page holds at most its limit");
        let full = page.items.len() == limit;
        all.extend(page.items);
        match page.next {
            Some(next) => {
                assert!(full, "only the last page may be short");
                request.after = Some(next);
            }
            None => return all,
        }
    }
}

/// [`walk`] on from the page after `first` (a page read before), `limit`
/// at a time: what a client reading the pages still gets of a list that
/// changed after it read the first one.
pub async fn walk_after<T, F, Fut>(first: &Page<T>, limit: usize, read: F) -> Vec<T>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Page<T>>,
{
    let request = PageRequest {
        limit,
        after: first.next.clone(),
    };
    walk_from(request, read).await
}

/// What a read that must find something found: fails the test when the
/// read failed or found nothing (`what` names it in the message).
pub fn found<T, E: std::fmt::Debug>(read: Result<Option<T>, E>, what: &str) -> T {
    read.unwrap_or_else(|e| panic!("read {what}: {e:?}"))
        .unwrap_or_else(|| panic!("{what} exists"))
}

/// Names for a list by name, in no order: some repeated (their order is
/// the id's) and one lowercase that sorts after every capital (MongoDB
/// compares strings byte by byte, without a collation).
pub const NAMES_TO_SORT: [&str; 7] = [
    "Casa",
    "Apartamento",
    "Casa",
    "Quinta",
    "Barco",
    "casa",
    "Casa",
];

/// The pending outbox messages (the relay's view).
pub async fn pending(outbox: &dyn OutboxStore) -> Vec<OutboxMessage> {
    outbox.pending(100).await.expect("outbox pending")
}

/// A message's payload, parsed.
pub fn payload(m: &OutboxMessage) -> serde_json::Value {
    serde_json::from_str(&m.payload).expect("payload is JSON")
}

/// A message's `event_type`.
pub fn event_type(m: &OutboxMessage) -> String {
    payload(m)["event_type"]
        .as_str()
        .expect("event_type")
        .to_string()
}

/// Messages in event-id order, for order-free comparison.
pub fn sorted(mut messages: Vec<OutboxMessage>) -> Vec<OutboxMessage> {
    messages.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    messages
}

/// Property details that satisfy every rule: a flat for two in Porto at
/// 1.00 EUR a night, named `name`. For tests in which the details do not
/// matter, so that a new field of `PropertyDetails` is added in one place.
pub fn property_details(name: &str) -> events::PropertyDetails {
    events::PropertyDetails {
        name: name.into(),
        city: "Porto".into(),
        country: "PT".into(),
        address: None,
        description: None,
        price_per_night_cents: 100,
        cleaning_fee_cents: 0,
        service_fee_cents: 0,
        currency: "EUR".into(),
        max_guests: 2,
        bedrooms: None,
        bathrooms: None,
        amenities: vec![],
    }
}

/// Property details with every field a listing shows besides the
/// description: an address, bedrooms, fees beside the price (100.00 EUR a
/// night) and `amenities`, named `name`, in `city` (Portugal), for
/// `max_guests`. For checks that a store keeps each field, and changes
/// each one on an update.
pub fn property_details_with_extras(
    name: &str,
    city: &str,
    max_guests: u32,
    amenities: &[&str],
) -> events::PropertyDetails {
    events::PropertyDetails {
        name: name.into(),
        city: city.into(),
        country: "Portugal".into(),
        address: Some("Rua das Flores 1".into()),
        description: None,
        price_per_night_cents: 10_000,
        cleaning_fee_cents: 2_000,
        service_fee_cents: 500,
        currency: "EUR".into(),
        max_guests,
        bedrooms: Some(2),
        bathrooms: None,
        amenities: amenities.iter().map(|a| a.to_string()).collect(),
    }
}
