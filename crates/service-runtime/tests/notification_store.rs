//! The `NotificationStore` contract, run against the in-memory adapter and
//! the MongoDB one (on the real MongoDB-protocol test server), so the two
//! cannot drift apart: idempotent adds, pages newest first, and positions
//! in write order (what notification streams follow and resume from).

use chrono::{DateTime, Utc};
use events::{BookingStatus, EventId, UserId};
use service_runtime::{
    notifications::{
        InMemoryNotificationStore, InboxEntry, MongoNotificationStore, Notification,
        NotificationStore,
    },
    paging::{Page, PageRequest},
};
use test_support::{
    store::{at, walk_from},
    unique,
};

test_support::store_contract! {
    service: "service-runtime",
    database: "notification_contract",
    store: dyn NotificationStore,
    in_memory: || InMemoryNotificationStore::default(),
    mongodb: |db| MongoNotificationStore::new(db),
    checks: [
        adding_is_idempotent_by_event_id,
        pages_walk_every_notification_once_newest_first_while_new_ones_arrive,
        positions_follow_the_write_order_with_no_hole_even_for_redeliveries,
        concurrent_writers_take_distinct_positions,
    ],
}

fn notification(id: &str, recipient: &UserId, created_at: DateTime<Utc>) -> Notification {
    Notification {
        id: id.into(),
        recipient_id: recipient.clone(),
        kind: "status_changed".into(),
        booking_id: unique("b").into(),
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
    recipient: &UserId,
    limit: usize,
    from: Option<&Page<Notification>>,
) -> Vec<Notification> {
    let request = PageRequest {
        limit,
        after: from.and_then(|p| p.next.clone()),
    };
    walk_from(request, |r| async move {
        store.list(recipient, &r).await.expect("page")
    })
    .await
}

mod checks {
    use super::*;

    pub async fn adding_is_idempotent_by_event_id(s: Subject) {
        let store = &*s.store;
        let ada: UserId = unique("ada").into();
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
        let (ada, bob): (UserId, UserId) = (unique("ada").into(), unique("bob").into());
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
                .list(&"nobody".into(), &PageRequest::first(3))
                .await
                .unwrap()
                .items,
            vec![]
        );
    }

    /// The notifications of `entries`, checking that their positions are
    /// consecutive from `after + 1` (a filler may stand where a write found
    /// its notification already stored).
    fn contiguous(after: u64, entries: &[InboxEntry]) -> Vec<&str> {
        for (i, e) in entries.iter().enumerate() {
            assert_eq!(e.position, after + 1 + i as u64, "a hole: {entries:?}");
        }
        entries
            .iter()
            .filter_map(|e| e.notification.as_ref().map(|n| n.id.as_str()))
            .collect()
    }

    fn position(entries: &[InboxEntry], id: &EventId) -> u64 {
        entries
            .iter()
            .find(|e| e.notification.as_ref().is_some_and(|n| &n.id == id))
            .unwrap_or_else(|| panic!("{id} not in {entries:?}"))
            .position
    }

    fn notification_ids(entries: Vec<InboxEntry>) -> Vec<EventId> {
        entries
            .into_iter()
            .map(|e| {
                e.notification
                    .expect("a recipient's entries are notifications")
                    .id
            })
            .collect()
    }

    pub async fn positions_follow_the_write_order_with_no_hole_even_for_redeliveries(s: Subject) {
        let store = &*s.store;
        let start = store.last_position().await.unwrap();
        let (ada, bob): (UserId, UserId) = (unique("ada").into(), unique("bob").into());
        let a = notification(&unique("a"), &ada, at(5));
        let b = notification(&unique("b"), &bob, at(1));
        // Written late with an older event time: still after a and b.
        let c = notification(&unique("c"), &ada, at(0));
        let d = notification(&unique("d"), &ada, at(3));
        store.add_many(&[a.clone(), b.clone()]).await.unwrap();
        store.add(&c).await.unwrap();
        // A redelivery of a beside a new one.
        store.add_many(&[a.clone(), d.clone()]).await.unwrap();

        let entries = store.entries_after(start, 100).await.unwrap();
        assert_eq!(
            contiguous(start, &entries),
            vec![a.id.as_str(), b.id.as_str(), c.id.as_str(), d.id.as_str()]
        );
        let last = store.last_position().await.unwrap();
        assert_eq!(last, entries.last().unwrap().position);
        assert_eq!(
            store.last_taken().await.unwrap(),
            last,
            "with no write in flight the counter is at the last position written"
        );
        let (pa, pc, pd) = (
            position(&entries, &a.id),
            position(&entries, &c.id),
            position(&entries, &d.id),
        );
        assert_eq!(store.position_of(&ada, &a.id).await.unwrap(), Some(pa));
        assert_eq!(
            store.position_of(&bob, &a.id).await.unwrap(),
            None,
            "only the recipient's own"
        );
        assert_eq!(
            store.position_of(&ada, &"missing".into()).await.unwrap(),
            None
        );

        let mine = |after, upto, limit| store.recipient_entries(&ada, after, upto, limit);
        assert_eq!(
            notification_ids(mine(pa, last, 100).await.unwrap()),
            vec![c.id.clone(), d.id.clone()]
        );
        assert_eq!(
            notification_ids(mine(pa, pc, 100).await.unwrap()),
            vec![c.id.clone()]
        );
        assert_eq!(
            notification_ids(mine(pa, last, 1).await.unwrap()),
            vec![c.id.clone()]
        );
        assert!(mine(pd, last, 100).await.unwrap().is_empty());
        assert_eq!(store.entries_after(pc, 1).await.unwrap().len(), 1);
    }

    pub async fn concurrent_writers_take_distinct_positions(s: Subject) {
        let store = s.store.clone();
        let start = store.last_position().await.unwrap();
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let batch: Vec<Notification> = (0..5)
                        .map(|i| {
                            notification(&unique(&format!("w{w}-{i}")), &"someone".into(), at(i))
                        })
                        .collect();
                    store.add_many(&batch).await.unwrap();
                })
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
        let entries = store.entries_after(start, 100).await.unwrap();
        assert_eq!(contiguous(start, &entries).len(), 40);
    }
}
