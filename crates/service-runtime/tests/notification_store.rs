//! The `NotificationStore` contract, run against the in-memory adapter and
//! the MongoDB one (on the real MongoDB-protocol test server), so the two
//! cannot drift apart: idempotent adds, and pages newest first.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use events::BookingStatus;
use service_runtime::{
    notifications::{
        InMemoryNotificationStore, MongoNotificationStore, Notification, NotificationStore,
    },
    paging::{Page, PageRequest},
};
use test_support::unique;

/// A store under test.
struct Subject {
    store: Arc<dyn NotificationStore>,
}

fn in_memory() -> Subject {
    Subject {
        store: Arc::new(InMemoryNotificationStore::default()),
    }
}

async fn mongodb(test: &str) -> Option<Subject> {
    let servers = test_support::real_servers(test)?;
    let db = test_support::fresh_database(&servers, "notification_contract").await;
    let store = MongoNotificationStore::new(&db)
        .await
        .expect("MongoNotificationStore::new");
    Some(Subject {
        store: Arc::new(store),
    })
}

test_support::store_contract!(
    "service-runtime";
    adding_is_idempotent_by_event_id,
    pages_walk_every_notification_once_newest_first_while_new_ones_arrive,
);

/// A fixed instant with millisecond precision (what the stores keep).
fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 1, 9, 0, 0).unwrap()
        + Duration::milliseconds(seconds * 1000 + 123)
}

fn notification(id: &str, recipient: &str, created_at: DateTime<Utc>) -> Notification {
    Notification {
        id: id.into(),
        recipient_id: recipient.into(),
        kind: "status_changed".into(),
        booking_id: unique("b"),
        status: BookingStatus::Accepted,
        reason: None,
        message: "Your booking was accepted".into(),
        created_at,
    }
}

fn ids(ns: &[Notification]) -> Vec<&str> {
    ns.iter().map(|n| n.id.as_str()).collect()
}

/// Every notification of `recipient`, `limit` at a time, starting after
/// `from`'s cursor (or at the first page); checks that only the last page is
/// short.
async fn walk(
    store: &dyn NotificationStore,
    recipient: &str,
    limit: usize,
    from: Option<&Page<Notification>>,
) -> Vec<Notification> {
    let mut request = PageRequest {
        limit,
        after: from.and_then(|p| p.next.clone()),
    };
    let mut all = Vec::new();
    loop {
        let page = store.list(recipient, &request).await.expect("page");
        assert!(page.items.len() <= limit);
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

mod checks {
    use super::*;

    pub async fn adding_is_idempotent_by_event_id(s: Subject) {
        let store = &*s.store;
        let ada = unique("ada");
        let (n1, n2) = (
            notification(&unique("e1"), &ada, at(1)),
            notification(&unique("e2"), &ada, at(2)),
        );
        store.add(&n1).await.unwrap();
        // A redelivery of n1 within a batch does not stop n2 or duplicate n1.
        store.add_many(&[n1.clone(), n2.clone()]).await.unwrap();
        store.add(&n2).await.unwrap();
        let page = store.list(&ada, &PageRequest::default()).await.unwrap();
        assert_eq!(
            page,
            Page {
                items: vec![n2, n1],
                next: None
            }
        );
    }

    pub async fn pages_walk_every_notification_once_newest_first_while_new_ones_arrive(s: Subject) {
        let store = &*s.store;
        let (ada, bob) = (unique("ada"), unique("bob"));
        let mut adas = Vec::new();
        for i in 0..9i64 {
            // Three share one instant: ties go by id, descending.
            let instant = if (2..5).contains(&i) { 2 } else { i };
            let n = notification(&format!("{}-{i}", unique("e")), &ada, at(instant));
            adas.push(n.clone());
            store
                .add_many(&[n, notification(&unique("e"), &bob, at(instant))])
                .await
                .unwrap();
        }
        let mut newest_first = adas.clone();
        newest_first.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        for limit in [1, 2, 4, 9, 10] {
            let all = walk(store, &ada, limit, None).await;
            assert_eq!(ids(&all), ids(&newest_first), "limit {limit}");
        }

        let first = store.list(&ada, &PageRequest::first(4)).await.unwrap();
        assert_eq!(ids(&first.items), ids(&newest_first[..4]));
        let newcomer = notification(&unique("new"), &ada, at(60));
        store.add(&newcomer).await.unwrap();
        let rest = walk(store, &ada, 4, Some(&first)).await;
        assert_eq!(ids(&rest), ids(&newest_first[4..]));
        assert_eq!(
            ids(&store
                .list(&ada, &PageRequest::first(1))
                .await
                .unwrap()
                .items),
            vec![newcomer.id.as_str()]
        );
        assert_eq!(
            store
                .list("nobody", &PageRequest::first(3))
                .await
                .unwrap()
                .items,
            vec![]
        );
    }
}
