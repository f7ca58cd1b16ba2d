//! The `OwnerStore` contract: every check below runs against both adapters —
//! the in-memory one (embedded mode) and the MongoDB one (production, against
//! the real MongoDB-protocol test server) — so the two cannot drift apart.
//!
//! Each check gets a fresh store and its outbox; events are observed through
//! `OutboxStore::pending`, exactly as the relay sees them.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use events::{
    topics, Actor, ActorRole, BookingId, BookingStatus, BookingUpdateEvent, Envelope, EventId,
    PropertyDetails, PropertyEvent, PropertyId, Stay, UserId,
};
use owner_service::{
    decisions::{decide_and_save, DecisionError},
    domain::{
        booking::{decide, Booking},
        property::Property,
    },
    store::{
        BookingFilter, InMemoryOwnerStore, MongoOwnerStore, OwnerStore, SaveDecisionError,
        OUTBOX_COLLECTIONS,
    },
};
use service_runtime::{
    metrics::Metrics,
    outbox::{OutboxMessage, OutboxSignal},
    paging::{Page, PageRequest},
    store::StoreError,
};
use test_support::{
    store::{
        at, day, event_type, found, payload, pending, property_details_with_extras, sorted, walk,
        walk_after, NAMES_TO_SORT,
    },
    unique,
};
use tokio::sync::Barrier;

// Each check runs as `in_memory::<check>` and `mongodb::<check>`.
test_support::store_contract! {
    service: "owner",
    database: "owner_contract",
    store: dyn OwnerStore,
    in_memory: |outbox| InMemoryOwnerStore::new(outbox),
    mongodb: |db| MongoOwnerStore::new(db, OutboxSignal::default()),
    outbox: (&OUTBOX_COLLECTIONS, "owner-service"),
    checks: [
        property_insert_get_and_list_by_owner,
        property_insert_refuses_a_duplicate_id,
        outbox_pending_honours_the_limit_and_write_order,
        update_property_requires_the_expected_version,
        concurrent_property_updates_admit_exactly_one,
        insert_booking_is_idempotent,
        concurrent_redeliveries_store_a_booking_once,
        bookings_of_filters_by_owner_status_and_property_newest_first,
        property_pages_walk_every_property_once_by_name_while_new_ones_arrive,
        booking_pages_walk_every_booking_once_newest_first_with_any_filter,
        save_decision_requires_the_expected_version,
        accept_refuses_an_overlapping_accepted_booking,
        accept_allows_back_to_back_stays_and_other_properties,
        cancelled_and_rejected_bookings_do_not_block_acceptance,
        concurrent_acceptances_of_overlapping_stays_admit_exactly_one,
        concurrent_decisions_on_one_booking_admit_exactly_one,
        batched_requests_are_stored_once_and_properties_found_together,
        parked_cancellations_wait_per_booking_in_order_until_unparked,
    ],
}

// ---------------------------------------------------------------- test data

fn property(id: impl AsRef<str>, owner_id: impl AsRef<str>, created_at: DateTime<Utc>) -> Property {
    let (id, owner_id) = (id.as_ref(), owner_id.as_ref());
    Property {
        id: id.into(),
        owner_id: owner_id.into(),
        details: property_details_with_extras(
            &format!("House {id}"),
            "Porto",
            4,
            &["wifi", "kitchen"],
        ),
        active: true,
        version: 1,
        created_at,
        updated_at: created_at,
    }
}

fn upserted(p: &Property) -> OutboxMessage {
    let envelope = Envelope::new("test", PropertyEvent::Upserted(p.snapshot()));
    OutboxMessage::new(topics::PROPERTY_LISTINGS, &envelope)
}

/// A PENDING booking of `property_id` (owner `owner_id`) for `[check_in, check_out)`.
fn booking(
    id: impl AsRef<str>,
    owner_id: impl AsRef<str>,
    property_id: impl AsRef<str>,
    check_in: NaiveDate,
    check_out: NaiveDate,
    created_at: DateTime<Utc>,
) -> Booking {
    let nights = (check_out - check_in).num_days() as u32;
    Booking {
        id: id.as_ref().into(),
        stay: Stay {
            property_id: property_id.as_ref().into(),
            check_in,
            check_out,
            nights,
            guests: 2,
            total_price_cents: i64::from(nights) * 10_000 + 2_500,
            currency: "EUR".into(),
        },
        owner_id: owner_id.as_ref().into(),
        traveler_id: "traveler-1".into(),
        status: BookingStatus::Pending,
        status_reason: None,
        version: 0,
        created_at,
        updated_at: created_at,
    }
}

/// A PENDING booking of the same owner and property as `other`.
fn booking_beside(
    other: &Booking,
    id: impl AsRef<str>,
    check_in: NaiveDate,
    check_out: NaiveDate,
    created_at: DateTime<Utc>,
) -> Booking {
    let (owner_id, property_id) = (&other.owner_id, &other.stay.property_id);
    booking(id, owner_id, property_id, check_in, check_out, created_at)
}

fn owner(id: impl AsRef<str>) -> Actor {
    Actor {
        role: ActorRole::Owner,
        id: id.as_ref().into(),
    }
}

/// `b` moved to `to` (as the domain computes it) and its event message.
fn decision(b: &Booking, to: BookingStatus, now: DateTime<Utc>) -> (Booking, OutboxMessage) {
    let (next, event) = decide(b, to, None, owner(&b.owner_id), now).expect("allowed transition");
    let envelope = Envelope::new("test", BookingUpdateEvent::StatusChanged(event));
    (next, OutboxMessage::new(topics::BOOKING_UPDATES, &envelope))
}

/// The booking's owner decides `to` through the decision path (the one the
/// routes and the consumer take).
async fn owner_decides(
    store: &dyn OwnerStore,
    b: &Booking,
    to: BookingStatus,
) -> Result<Booking, DecisionError> {
    let by = owner(&b.owner_id);
    let metrics = Metrics::new();
    decide_and_save(store, &metrics, topics::BOOKING_UPDATES, b, to, None, by).await
}

/// Saves a decision that must succeed; returns the stored booking.
async fn decide_ok(store: &dyn OwnerStore, b: &Booking, to: BookingStatus) -> Booking {
    let (next, message) = decision(b, to, at(600));
    store
        .save_decision(&next, b.version, message)
        .await
        .unwrap_or_else(|e| panic!("{} -> {}: {e}", b.id, to.as_str()));
    next
}

/// (topic, key, event_type) of each message, sorted, for order-free comparison.
fn summary(messages: &[OutboxMessage]) -> Vec<(String, String, String)> {
    let mut list: Vec<_> = messages
        .iter()
        .map(|m| (m.topic.clone(), m.key.clone(), event_type(m)))
        .collect();
    list.sort();
    list
}

fn ids(bookings: &[Booking]) -> Vec<&str> {
    bookings.iter().map(|b| b.id.as_str()).collect()
}

async fn stored(store: &dyn OwnerStore, id: &BookingId) -> Booking {
    found(store.booking(id).await, "booking")
}

// ------------------------------------------------------------------- checks

mod checks {
    use super::*;

    pub async fn property_insert_get_and_list_by_owner(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let (alice, bob): (UserId, UserId) = (unique("alice").into(), unique("bob").into());
        let mut older = property(unique("p-old"), &alice, at(0));
        older.details.name = "Casa B".into();
        let mut newer = property(unique("p-new"), &alice, at(10));
        newer.details.name = "Casa A".into();
        // The same name as `newer`: ties are broken by id, ascending.
        let mut tie = property(format!("{}~", newer.id), &alice, at(10));
        tie.details.name = "Casa A".into();
        tie.details.description = Some("same name".into());
        let bobs = property(unique("p-bob"), &bob, at(5));

        let mut messages = Vec::new();
        for p in [&older, &newer, &tie, &bobs] {
            let m = upserted(p);
            store
                .insert_property(p, m.clone())
                .await
                .expect("insert property");
            messages.push(m);
        }

        assert_eq!(
            store.property(&older.id).await.unwrap(),
            Some(older.clone())
        );
        assert_eq!(store.property(&bobs.id).await.unwrap(), Some(bobs.clone()));
        assert_eq!(
            store.property(&"no-such-property".into()).await.unwrap(),
            None
        );

        assert_eq!(
            store
                .properties_of(&alice, &PageRequest::default())
                .await
                .unwrap()
                .items,
            vec![newer.clone(), tie.clone(), older.clone()],
            "an owner's properties, by name then id"
        );
        assert_eq!(
            store
                .properties_of(&bob, &PageRequest::default())
                .await
                .unwrap()
                .items,
            vec![bobs.clone()]
        );
        assert_eq!(
            store
                .properties_of(&"nobody".into(), &PageRequest::default())
                .await
                .unwrap()
                .items,
            vec![]
        );

        // Each insert queued exactly its own event, unchanged.
        let queued = pending(outbox).await;
        assert_eq!(sorted(queued.clone()), sorted(messages.clone()));
        for m in &queued {
            assert_eq!(m.topic, topics::PROPERTY_LISTINGS);
            assert_eq!(event_type(m), "property.upserted");
            assert_eq!(payload(m)["data"]["property_id"], m.key.as_str());
        }

        // Marking some published removes exactly those.
        outbox
            .mark_published(&[messages[0].event_id.clone(), messages[3].event_id.clone()])
            .await
            .unwrap();
        assert_eq!(
            sorted(pending(outbox).await),
            sorted(vec![messages[1].clone(), messages[2].clone()])
        );
        let rest: Vec<_> = messages.iter().map(|m| m.event_id.clone()).collect();
        outbox.mark_published(&rest).await.unwrap();
        assert_eq!(pending(outbox).await, vec![]);
        // The state is untouched by publishing.
        assert_eq!(
            store
                .properties_of(&alice, &PageRequest::default())
                .await
                .unwrap()
                .items
                .len(),
            3
        );
    }

    pub async fn property_insert_refuses_a_duplicate_id(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let original = property(unique("p"), unique("owner"), at(0));
        let first = upserted(&original);
        store
            .insert_property(&original, first.clone())
            .await
            .unwrap();

        let mut other = property(&original.id, unique("intruder"), at(1));
        other.details.name = "Someone else's house".into();
        let result = store.insert_property(&other, upserted(&other)).await;
        assert!(
            matches!(result, Err(StoreError::Duplicate(_))),
            "a second property with the same id is a duplicate, got {result:?}"
        );
        assert_eq!(
            store.property(&original.id).await.unwrap(),
            Some(original.clone())
        );
        assert_eq!(
            store
                .properties_of(&other.owner_id, &PageRequest::default())
                .await
                .unwrap()
                .items,
            vec![]
        );
        assert_eq!(
            pending(outbox).await,
            vec![first],
            "the refused insert queued nothing"
        );
    }

    pub async fn outbox_pending_honours_the_limit_and_write_order(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        // One property changed three times (three events on one aggregate)...
        let mut p = property(unique("p"), unique("owner"), at(0));
        let mut written = vec![upserted(&p)];
        store.insert_property(&p, written[0].clone()).await.unwrap();
        for v in 2..=3 {
            let expected = p.version;
            p = Property {
                details: PropertyDetails {
                    name: format!("Version {v}"),
                    ..p.details.clone()
                },
                version: v,
                updated_at: at(v as i64),
                ..p
            };
            let m = upserted(&p);
            assert!(store
                .update_property(&p, expected, m.clone())
                .await
                .unwrap());
            written.push(m);
        }
        // ...and one decided booking (one event on another aggregate).
        let b = booking(unique("b"), &p.owner_id, &p.id, day(2, 1), day(2, 3), at(0));
        store.insert_booking(&b).await.unwrap();
        let (next, decided) = decision(&b, BookingStatus::Accepted, at(9));
        store
            .save_decision(&next, 0, decided.clone())
            .await
            .unwrap();

        let all = pending(outbox).await;
        assert_eq!(all.len(), 4);
        let of_p: Vec<_> = all.iter().filter(|m| m.key == p.id).cloned().collect();
        assert_eq!(of_p, written, "one aggregate's events in write order");

        // "Up to `limit` unpublished messages, each aggregate's in write order."
        for limit in 1..=4 {
            let batch = outbox.pending(limit).await.unwrap();
            assert!(
                !batch.is_empty() && batch.len() <= limit,
                "pending({limit}) returned {} messages",
                batch.len()
            );
            let of_p: Vec<_> = batch.iter().filter(|m| m.key == p.id).cloned().collect();
            assert_eq!(
                of_p,
                written[..of_p.len()],
                "pending({limit}): a prefix of the property's events"
            );
        }

        // Publishing the oldest leaves the rest, still in order.
        outbox
            .mark_published(std::slice::from_ref(&written[0].event_id))
            .await
            .unwrap();
        let rest: Vec<_> = pending(outbox)
            .await
            .into_iter()
            .filter(|m| m.key == p.id)
            .collect();
        assert_eq!(rest, written[1..]);
        assert!(pending(outbox).await.contains(&decided));
    }

    pub async fn update_property_requires_the_expected_version(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let v1 = property(unique("p"), unique("owner"), at(0));
        let created = upserted(&v1);
        store.insert_property(&v1, created.clone()).await.unwrap();

        let v2 = Property {
            details: PropertyDetails {
                name: "Renamed".into(),
                price_per_night_cents: 12_345,
                amenities: vec![],
                address: None,
                ..v1.details.clone()
            },
            active: false,
            version: 2,
            updated_at: at(60),
            ..v1.clone()
        };
        let updated = upserted(&v2);
        assert!(store
            .update_property(&v2, 1, updated.clone())
            .await
            .unwrap());
        assert_eq!(store.property(&v1.id).await.unwrap(), Some(v2.clone()));
        assert_eq!(
            store
                .properties_of(&v1.owner_id, &PageRequest::default())
                .await
                .unwrap()
                .items,
            vec![v2.clone()]
        );
        assert_eq!(
            pending(outbox).await,
            vec![created.clone(), updated.clone()],
            "both events, in write order"
        );

        // A writer that read version 1 lost the race: nothing changes.
        let stale = Property {
            details: PropertyDetails {
                name: "Stale write".into(),
                ..v1.details.clone()
            },
            version: 2,
            ..v1.clone()
        };
        assert!(!store
            .update_property(&stale, 1, upserted(&stale))
            .await
            .unwrap());
        assert_eq!(store.property(&v1.id).await.unwrap(), Some(v2.clone()));
        assert_eq!(
            pending(outbox).await,
            vec![created.clone(), updated.clone()]
        );

        // A version ahead of the stored one is just as wrong.
        assert!(!store
            .update_property(&stale, 7, upserted(&stale))
            .await
            .unwrap());

        // An unknown property is not created by an update.
        let ghost = property(unique("ghost"), &v1.owner_id, at(0));
        assert!(!store
            .update_property(&ghost, 1, upserted(&ghost))
            .await
            .unwrap());
        assert_eq!(store.property(&ghost.id).await.unwrap(), None);
        assert_eq!(pending(outbox).await, vec![created, updated]);
    }

    pub async fn concurrent_property_updates_admit_exactly_one(s: Subject) {
        const TASKS: usize = 8;
        let v1 = property(unique("p"), unique("owner"), at(0));
        let created = upserted(&v1);
        s.store.insert_property(&v1, created.clone()).await.unwrap();
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (store, barrier) = (s.store.clone(), barrier.clone());
                let next = Property {
                    details: PropertyDetails {
                        name: format!("Writer {i}"),
                        ..v1.details.clone()
                    },
                    version: 2,
                    updated_at: at(60 + i as i64),
                    ..v1.clone()
                };
                tokio::spawn(async move {
                    let message = upserted(&next);
                    barrier.wait().await;
                    let saved = store
                        .update_property(&next, 1, message.clone())
                        .await
                        .expect("update");
                    (next, message, saved)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            let (next, message, saved) = t.await.expect("task");
            if saved {
                winners.push((next, message));
            }
        }
        assert_eq!(winners.len(), 1, "exactly one writer of version 1 wins");
        let (next, message) = winners.pop().unwrap();
        assert_eq!(s.store.property(&v1.id).await.unwrap(), Some(next));
        assert_eq!(
            pending(&*s.outbox).await,
            vec![created, message],
            "only the winner's event"
        );
    }

    pub async fn concurrent_redeliveries_store_a_booking_once(s: Subject) {
        const TASKS: usize = 8;
        let id: BookingId = unique("b").into();
        let o: UserId = unique("owner").into();
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (store, barrier) = (s.store.clone(), barrier.clone());
                let b = booking(&id, &o, "p-1", day(3, 1), day(3, 4), at(0));
                let b = Booking {
                    stay: Stay {
                        guests: 1 + i as u32,
                        ..b.stay.clone()
                    },
                    ..b
                };
                tokio::spawn(async move {
                    barrier.wait().await;
                    let inserted = store.insert_booking(&b).await.expect("insert");
                    (b, inserted)
                })
            })
            .collect();
        let mut inserted = Vec::new();
        for t in tasks {
            let (b, first) = t.await.expect("task");
            if first {
                inserted.push(b);
            }
        }
        assert_eq!(inserted.len(), 1, "exactly one delivery stores the booking");
        assert_eq!(stored(&*s.store, &id).await, inserted[0]);
        assert_eq!(
            s.store
                .bookings_of(&o, &BookingFilter::default(), &PageRequest::default())
                .await
                .unwrap()
                .items,
            inserted
        );
    }

    /// The consumer's bulk path: a batch with a redelivered booking inside,
    /// and properties looked up together.
    pub async fn batched_requests_are_stored_once_and_properties_found_together(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let owner = unique("owner");
        let p = property(unique("p"), &owner, at(0));
        store.insert_property(&p, upserted(&p)).await.unwrap();
        let before = pending(outbox).await.len();

        let b1 = booking(unique("b"), &owner, &p.id, day(3, 1), day(3, 4), at(1));
        let b2 = booking(unique("b"), &owner, &p.id, day(3, 4), day(3, 6), at(2));
        store
            .insert_bookings(std::slice::from_ref(&b1))
            .await
            .unwrap();
        // b1 again (redelivery) with a new one: b1 unchanged, b2 stored.
        let changed_b1 = Booking {
            stay: Stay {
                guests: 9,
                ..b1.stay.clone()
            },
            ..b1.clone()
        };
        store
            .insert_bookings(&[changed_b1, b2.clone()])
            .await
            .unwrap();
        store.insert_bookings(&[]).await.unwrap();
        assert_eq!(store.booking(&b1.id).await.unwrap(), Some(b1.clone()));
        assert_eq!(store.booking(&b2.id).await.unwrap(), Some(b2.clone()));
        assert_eq!(
            pending(outbox).await.len(),
            before,
            "requests publish nothing"
        );

        let found = store
            .properties_by_ids(&[p.id.clone(), "no-such-property".into()])
            .await
            .unwrap();
        assert_eq!(found, vec![p]);
    }

    pub async fn parked_cancellations_wait_per_booking_in_order_until_unparked(s: Subject) {
        let store = &*s.store;
        let (b1, b2): (BookingId, BookingId) = (unique("b").into(), unique("b").into());
        let cancel = |booking_id: &BookingId, seconds: i64| events::BookingCancellationRequested {
            booking_id: booking_id.clone(),
            traveler_id: "t-1".into(),
            reason: Some(format!("reason {seconds}")),
            requested_at: at(seconds),
        };
        // Event ids are UUIDv7: time-ordered, as the services make them.
        let (e1, e2, e3) = (
            EventId::generate(),
            EventId::generate(),
            EventId::generate(),
        );
        store.park_cancellation(&e1, &cancel(&b1, 1)).await.unwrap();
        store.park_cancellation(&e2, &cancel(&b2, 2)).await.unwrap();
        store.park_cancellation(&e3, &cancel(&b1, 3)).await.unwrap();
        // A redelivered cancellation is parked once.
        store.park_cancellation(&e1, &cancel(&b1, 1)).await.unwrap();

        let parked = store
            .parked_cancellations(std::slice::from_ref(&b1))
            .await
            .unwrap();
        assert_eq!(
            parked,
            vec![(e1.clone(), cancel(&b1, 1)), (e3.clone(), cancel(&b1, 3))]
        );
        assert!(store
            .parked_cancellations(&[unique("b").into()])
            .await
            .unwrap()
            .is_empty());

        store.unpark_cancellation(&e1).await.unwrap();
        let both = store
            .parked_cancellations(&[b1.clone(), b2.clone()])
            .await
            .unwrap();
        let ids: Vec<&str> = both.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, vec![e2.as_str(), e3.as_str()]);
    }

    pub async fn insert_booking_is_idempotent(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let b = booking(
            unique("b"),
            unique("owner"),
            "p-1",
            day(3, 1),
            day(3, 4),
            at(0),
        );
        assert!(store.insert_booking(&b).await.unwrap());
        assert_eq!(stored(store, &b.id).await, b);

        // Redelivery of the request, even with different content, changes nothing.
        let redelivered = Booking {
            stay: Stay {
                guests: 9,
                ..b.stay.clone()
            },
            status: BookingStatus::Accepted,
            version: 5,
            ..b.clone()
        };
        assert!(!store.insert_booking(&redelivered).await.unwrap());
        assert!(!store.insert_booking(&b).await.unwrap());
        assert_eq!(stored(store, &b.id).await, b);
        assert_eq!(
            store
                .bookings_of(
                    &b.owner_id,
                    &BookingFilter::default(),
                    &PageRequest::default()
                )
                .await
                .unwrap()
                .items,
            vec![b.clone()]
        );

        assert_eq!(
            store.booking(&"no-such-booking".into()).await.unwrap(),
            None
        );
        assert_eq!(
            pending(outbox).await,
            vec![],
            "storing a request publishes nothing"
        );
    }

    pub async fn bookings_of_filters_by_owner_status_and_property_newest_first(s: Subject) {
        let store = &*s.store;
        let (olga, oscar): (UserId, UserId) = (unique("olga").into(), unique("oscar").into());
        let (p1, p2): (PropertyId, PropertyId) = (unique("p1").into(), unique("p2").into());
        let b1 = booking(unique("b1"), &olga, &p1, day(4, 1), day(4, 3), at(1));
        let b2 = booking(unique("b2"), &olga, &p2, day(4, 1), day(4, 3), at(2));
        let b3 = booking(unique("b3"), &olga, &p1, day(4, 10), day(4, 12), at(3));
        // Same instant as b3: ties go by id, descending.
        let b4 = booking(
            format!("{}~", b3.id),
            &olga,
            &p2,
            day(5, 1),
            day(5, 2),
            at(3),
        );
        let other = booking(
            unique("b-other"),
            &oscar,
            &p1,
            day(4, 20),
            day(4, 22),
            at(4),
        );
        // Inserted out of order on purpose.
        for b in [&b3, &other, &b1, &b4, &b2] {
            assert!(store.insert_booking(b).await.unwrap());
        }
        let b2 = decide_ok(store, &b2, BookingStatus::Accepted).await;
        let b3 = decide_ok(store, &b3, BookingStatus::Rejected).await;

        let of = |owner: UserId, status: Option<BookingStatus>, property_id: Option<PropertyId>| async move {
            store
                .bookings_of(
                    &owner,
                    &BookingFilter {
                        status,
                        property_id,
                    },
                    &PageRequest::default(),
                )
                .await
                .expect("bookings_of")
                .items
        };
        let all = of(olga.clone(), None, None).await;
        assert_eq!(
            ids(&all),
            ids(&[b4.clone(), b3.clone(), b2.clone(), b1.clone()])
        );
        assert_eq!(
            all,
            vec![b4.clone(), b3.clone(), b2.clone(), b1.clone()],
            "stored as saved"
        );

        assert_eq!(
            of(olga.clone(), Some(BookingStatus::Pending), None).await,
            vec![b4.clone(), b1.clone()]
        );
        assert_eq!(
            of(olga.clone(), Some(BookingStatus::Accepted), None).await,
            vec![b2.clone()]
        );
        assert_eq!(
            of(olga.clone(), Some(BookingStatus::Rejected), None).await,
            vec![b3.clone()]
        );
        assert_eq!(
            of(olga.clone(), Some(BookingStatus::Cancelled), None).await,
            vec![]
        );
        assert_eq!(
            of(olga.clone(), None, Some(p1.clone())).await,
            vec![b3.clone(), b1.clone()]
        );
        assert_eq!(
            of(olga.clone(), None, Some(p2.clone())).await,
            vec![b4.clone(), b2.clone()]
        );
        assert_eq!(
            of(olga.clone(), Some(BookingStatus::Pending), Some(p1.clone())).await,
            vec![b1.clone()]
        );
        assert_eq!(
            of(
                olga.clone(),
                Some(BookingStatus::Accepted),
                Some(p1.clone())
            )
            .await,
            vec![]
        );
        assert_eq!(
            of(olga.clone(), None, Some("no-such-property".into())).await,
            vec![]
        );

        assert_eq!(of(oscar.clone(), None, None).await, vec![other.clone()]);
        assert_eq!(
            of(oscar, None, Some(p2)).await,
            vec![],
            "another owner's property filter"
        );
        assert_eq!(of("nobody".into(), None, None).await, vec![]);
    }

    pub async fn property_pages_walk_every_property_once_by_name_while_new_ones_arrive(s: Subject) {
        let store = &*s.store;
        let (olga, oscar): (UserId, UserId) = (unique("olga").into(), unique("oscar").into());
        let olga = &olga;
        let mut olgas = Vec::new();
        for (i, name) in NAMES_TO_SORT.iter().enumerate() {
            let mut p = property(unique(&format!("p{i}")), olga, at(i as i64));
            p.details.name = name.to_string();
            store.insert_property(&p, upserted(&p)).await.unwrap();
            olgas.push(p);
            let theirs = property(unique("theirs"), &oscar, at(0));
            store
                .insert_property(&theirs, upserted(&theirs))
                .await
                .unwrap();
        }
        // A delisted property is still the owner's, and listed.
        let mut delisted = olgas[3].clone();
        delisted.active = false;
        delisted.version = 2;
        assert!(store
            .update_property(&delisted, 1, upserted(&delisted))
            .await
            .unwrap());
        olgas[3] = delisted;
        let mut by_name = olgas.clone();
        by_name.sort_by(|a, b| (&a.details.name, &a.id).cmp(&(&b.details.name, &b.id)));

        for limit in [1, 2, 6, 7, 8] {
            let all = walk(limit, |page| async move {
                store.properties_of(olga, &page).await.expect("page")
            })
            .await;
            assert_eq!(all, by_name, "limit {limit}");
        }

        // Listed while the pages are read: one named before the cursor is
        // not served, one named after it is, and nothing comes twice.
        let first = store
            .properties_of(olga, &PageRequest::first(3))
            .await
            .unwrap();
        let mut early = property(unique("early"), olga, at(50));
        early.details.name = "Aaa".into();
        let mut late = property(unique("late"), olga, at(50));
        late.details.name = "zzz".into();
        for p in [&early, &late] {
            store.insert_property(p, upserted(p)).await.unwrap();
        }
        let rest = walk_after(&first, 3, |page| async move {
            store.properties_of(olga, &page).await.expect("page")
        })
        .await;
        let mut expected = by_name[3..].to_vec();
        expected.push(late);
        assert_eq!(first.items, by_name[..3]);
        assert_eq!(rest, expected);
        assert_eq!(
            store
                .properties_of(&"nobody".into(), &PageRequest::first(1))
                .await
                .unwrap(),
            Page {
                items: vec![],
                next: None
            }
        );
    }

    pub async fn booking_pages_walk_every_booking_once_newest_first_with_any_filter(s: Subject) {
        let store = &*s.store;
        let (olga, oscar): (UserId, UserId) = (unique("olga").into(), unique("oscar").into());
        let olga = &olga;
        let (p1, p2): (PropertyId, PropertyId) = (unique("p1").into(), unique("p2").into());
        let mut olgas = Vec::new();
        for i in 0..12i64 {
            // Three share one instant: ties go by id, descending.
            let instant = if (3..6).contains(&i) { 3 } else { i };
            let property_id = if i % 3 == 0 { &p2 } else { &p1 };
            let from = day(6, 1) + Duration::days(3 * i);
            let b = booking(
                format!("{}-{i:02}", unique("b")),
                olga,
                property_id,
                from,
                from + Duration::days(2),
                at(instant),
            );
            assert!(store.insert_booking(&b).await.unwrap());
            let theirs = booking(unique("theirs"), &oscar, &p1, from, from, at(instant));
            assert!(store.insert_booking(&theirs).await.unwrap());
            olgas.push(b);
        }
        for i in [1, 4, 7] {
            olgas[i] = decide_ok(store, &olgas[i], BookingStatus::Accepted).await;
        }
        olgas[8] = decide_ok(store, &olgas[8], BookingStatus::Rejected).await;
        let mut newest_first = olgas.clone();
        newest_first.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

        let filters = [
            BookingFilter::default(),
            BookingFilter {
                status: Some(BookingStatus::Accepted),
                property_id: None,
            },
            BookingFilter {
                status: None,
                property_id: Some(p1.clone()),
            },
            BookingFilter {
                status: Some(BookingStatus::Pending),
                property_id: Some(p2.clone()),
            },
        ];
        for filter in &filters {
            let expected: Vec<_> = newest_first
                .iter()
                .filter(|b| filter.admits(b))
                .cloned()
                .collect();
            assert!(!expected.is_empty());
            for limit in [1, 2, 5, 12, 13] {
                let all = walk(limit, |page| async move {
                    store.bookings_of(olga, filter, &page).await.expect("page")
                })
                .await;
                assert_eq!(all, expected, "{filter:?}, limit {limit}");
            }
        }

        // A request arriving while the pages are read comes before the
        // cursor: the rest is exactly what was not served yet.
        let all = BookingFilter::default();
        let first = store
            .bookings_of(olga, &all, &PageRequest::first(5))
            .await
            .unwrap();
        let newcomer = booking(unique("new"), olga, &p1, day(9, 1), day(9, 2), at(99));
        assert!(store.insert_booking(&newcomer).await.unwrap());
        let rest = walk_after(&first, 5, |page| {
            let all = &all;
            async move { store.bookings_of(olga, all, &page).await.expect("page") }
        })
        .await;
        assert_eq!(first.items, newest_first[..5]);
        assert_eq!(rest, newest_first[5..]);
    }

    pub async fn save_decision_requires_the_expected_version(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let b = booking(
            unique("b"),
            unique("owner"),
            unique("p"),
            day(6, 1),
            day(6, 5),
            at(0),
        );
        store.insert_booking(&b).await.unwrap();

        let (rejected, message) = decision(&b, BookingStatus::Rejected, at(30));
        store
            .save_decision(&rejected, 0, message.clone())
            .await
            .expect("first decision");
        assert_eq!(stored(store, &b.id).await, rejected);
        let queued = pending(outbox).await;
        assert_eq!(
            queued,
            vec![message.clone()],
            "exactly the decision's event"
        );
        assert_eq!(
            summary(&queued),
            vec![(
                topics::BOOKING_UPDATES.into(),
                b.id.to_string(),
                "booking.status_changed".into()
            )]
        );
        assert_eq!(payload(&queued[0])["data"]["status"], "REJECTED");
        assert_eq!(payload(&queued[0])["data"]["version"], 1);

        // Decisions computed from the booking as it was before (version 0)
        // lose, whatever they decide, and publish nothing.
        for to in [
            BookingStatus::Cancelled,
            BookingStatus::Rejected,
            BookingStatus::Accepted,
        ] {
            let (late, late_message) = decision(&b, to, at(40));
            assert_eq!(
                store.save_decision(&late, 0, late_message).await,
                Err(SaveDecisionError::Conflict),
                "stale {} must conflict",
                to.as_str()
            );
        }
        assert_eq!(stored(store, &b.id).await, rejected);
        assert_eq!(pending(outbox).await, vec![message.clone()]);

        // A decision on a booking that does not exist conflicts too.
        let ghost = booking_beside(&b, unique("ghost"), day(7, 1), day(7, 2), at(0));
        for to in [BookingStatus::Accepted, BookingStatus::Cancelled] {
            let (next, m) = decision(&ghost, to, at(40));
            assert_eq!(
                store.save_decision(&next, 0, m).await,
                Err(SaveDecisionError::Conflict)
            );
        }
        assert_eq!(store.booking(&ghost.id).await.unwrap(), None);
        assert_eq!(pending(outbox).await, vec![message.clone()]);

        // ACCEPTED then CANCELLED: each step with the version it read.
        let c = booking_beside(&b, unique("c"), day(6, 1), day(6, 5), at(1));
        store.insert_booking(&c).await.unwrap();
        let (accepted, m1) = decision(&c, BookingStatus::Accepted, at(50));
        store
            .save_decision(&accepted, 0, m1.clone())
            .await
            .expect("accept");
        let (cancelled, m2) = decision(&accepted, BookingStatus::Cancelled, at(51));
        assert_eq!(
            store.save_decision(&cancelled, 0, m2.clone()).await,
            Err(SaveDecisionError::Conflict),
            "version 0 is stale once accepted"
        );
        store
            .save_decision(&cancelled, 1, m2.clone())
            .await
            .expect("cancel");
        assert_eq!(stored(store, &c.id).await, cancelled);
        assert_eq!(cancelled.version, 2);
        let of_c: Vec<_> = pending(outbox)
            .await
            .into_iter()
            .filter(|m| m.key == c.id)
            .collect();
        assert_eq!(
            of_c,
            vec![m1.clone(), m2.clone()],
            "one aggregate's events in write order"
        );

        let all: Vec<_> = [&message, &m1, &m2]
            .iter()
            .map(|m| m.event_id.clone())
            .collect();
        outbox.mark_published(&all).await.unwrap();
        assert_eq!(pending(outbox).await, vec![]);
    }

    pub async fn accept_refuses_an_overlapping_accepted_booking(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let (o, p) = (unique("owner"), unique("p"));
        let first = booking(unique("first"), &o, &p, day(6, 10), day(6, 15), at(0));
        store.insert_booking(&first).await.unwrap();
        let first = decide_ok(store, &first, BookingStatus::Accepted).await;
        let baseline = pending(outbox).await;
        assert_eq!(baseline.len(), 1);

        let overlapping = [
            (day(6, 12), day(6, 14), "inside"),
            (day(6, 8), day(6, 11), "across check-in"),
            (day(6, 14), day(6, 20), "across check-out"),
            (day(6, 1), day(6, 30), "around"),
            (day(6, 10), day(6, 15), "same nights"),
            (day(6, 14), day(6, 15), "last night"),
            (day(6, 9), day(6, 11), "first night"),
        ];
        for (check_in, check_out, what) in overlapping {
            let b = booking(unique("b"), &o, &p, check_in, check_out, at(1));
            store.insert_booking(&b).await.unwrap();
            let (next, m) = decision(&b, BookingStatus::Accepted, at(2));
            assert_eq!(
                store.save_decision(&next, 0, m).await,
                Err(SaveDecisionError::Overlap(first.id.clone())),
                "{what}: {check_in}..{check_out} overlaps {}..{}",
                first.stay.check_in,
                first.stay.check_out
            );
            assert_eq!(
                stored(store, &b.id).await,
                b,
                "{what}: the refused booking is unchanged"
            );

            // Through the decision path too, with the same answer.
            let err = owner_decides(store, &b, BookingStatus::Accepted)
                .await
                .expect_err("overlap");
            assert!(
                matches!(&err, DecisionError::Overlap(id) if *id == first.id),
                "{what}: {err:?}"
            );

            // Refusing it is always possible.
            decide_ok(store, &b, BookingStatus::Rejected).await;
        }
        assert_eq!(stored(store, &first.id).await, first);
        let after = pending(outbox).await;
        let decisions: Vec<_> = after.iter().filter(|m| !baseline.contains(m)).collect();
        assert_eq!(
            decisions.len(),
            overlapping.len(),
            "only the rejections were queued"
        );
        assert!(decisions
            .iter()
            .all(|m| payload(m)["data"]["status"] == "REJECTED"));
    }

    pub async fn accept_allows_back_to_back_stays_and_other_properties(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let (o, p, q) = (unique("owner"), unique("p"), unique("q"));
        let middle = booking(unique("middle"), &o, &p, day(8, 10), day(8, 15), at(0));
        let after = booking(unique("after"), &o, &p, day(8, 15), day(8, 18), at(1));
        let before = booking(unique("before"), &o, &p, day(8, 5), day(8, 10), at(2));
        let elsewhere = booking(unique("elsewhere"), &o, &q, day(8, 10), day(8, 15), at(3));
        let other_owner = booking(
            unique("other-owner"),
            unique("owner2"),
            unique("r"),
            day(8, 1),
            day(8, 30),
            at(4),
        );
        let all = [&middle, &after, &before, &elsewhere, &other_owner];
        for b in all {
            store.insert_booking(b).await.unwrap();
        }
        for b in all {
            let next = decide_ok(store, b, BookingStatus::Accepted).await;
            assert_eq!(stored(store, &b.id).await, next);
        }
        let queued = pending(outbox).await;
        let mut keys: Vec<_> = summary(&queued).into_iter().map(|(_, k, _)| k).collect();
        keys.sort();
        let mut expected: Vec<_> = all.iter().map(|b| b.id.clone()).collect();
        expected.sort();
        assert_eq!(keys, expected, "one event per acceptance");

        // Now the gap is closed: a stay across `before` and `middle` overlaps one of them.
        let across = booking(unique("across"), &o, &p, day(8, 9), day(8, 11), at(5));
        store.insert_booking(&across).await.unwrap();
        let (next, m) = decision(&across, BookingStatus::Accepted, at(6));
        match store.save_decision(&next, 0, m).await {
            Err(SaveDecisionError::Overlap(id)) => {
                assert!(id == before.id || id == middle.id, "{id}")
            }
            other => panic!("expected an overlap, got {other:?}"),
        }
        assert_eq!(pending(outbox).await.len(), all.len());
    }

    pub async fn cancelled_and_rejected_bookings_do_not_block_acceptance(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let (o, p) = (unique("owner"), unique("p"));
        let rejected = booking(unique("rejected"), &o, &p, day(9, 1), day(9, 10), at(0));
        let cancelled_pending = booking(unique("cancelled-p"), &o, &p, day(9, 2), day(9, 9), at(1));
        let accepted_then_cancelled =
            booking(unique("cancelled-a"), &o, &p, day(9, 3), day(9, 8), at(2));
        let still_pending = booking(unique("pending"), &o, &p, day(9, 4), day(9, 7), at(3));
        let winner = booking(unique("winner"), &o, &p, day(9, 4), day(9, 6), at(4));
        for b in [
            &rejected,
            &cancelled_pending,
            &accepted_then_cancelled,
            &still_pending,
            &winner,
        ] {
            store.insert_booking(b).await.unwrap();
        }
        decide_ok(store, &rejected, BookingStatus::Rejected).await;
        decide_ok(store, &cancelled_pending, BookingStatus::Cancelled).await;
        let accepted = decide_ok(store, &accepted_then_cancelled, BookingStatus::Accepted).await;
        // While it is accepted, it blocks.
        let (next, m) = decision(&winner, BookingStatus::Accepted, at(5));
        assert_eq!(
            store.save_decision(&next, 0, m).await,
            Err(SaveDecisionError::Overlap(accepted.id.clone()))
        );
        decide_ok(store, &accepted, BookingStatus::Cancelled).await;
        let before = pending(outbox).await.len();

        // Rejected, cancelled (from PENDING or from ACCEPTED) and PENDING
        // bookings of the same nights do not block.
        let won = decide_ok(store, &winner, BookingStatus::Accepted).await;
        assert_eq!(stored(store, &winner.id).await, won);
        assert_eq!(pending(outbox).await.len(), before + 1);

        // ...but the new acceptance blocks the still pending one.
        let (next, m) = decision(&still_pending, BookingStatus::Accepted, at(7));
        assert_eq!(
            store.save_decision(&next, 0, m).await,
            Err(SaveDecisionError::Overlap(winner.id.clone()))
        );
        assert_eq!(pending(outbox).await.len(), before + 1);
    }

    pub async fn concurrent_acceptances_of_overlapping_stays_admit_exactly_one(s: Subject) {
        const TASKS: usize = 8;
        const ROUNDS: usize = 3;
        let outbox = s.outbox.clone();
        for round in 0..ROUNDS {
            let (o, p): (UserId, PropertyId) = (unique("owner").into(), unique("p").into());
            // All stays share the night of the 5th; none is back-to-back with another.
            let mut candidates = Vec::new();
            for i in 0..TASKS {
                let check_in = day(10, 1 + (i as u32 % 4));
                let check_out = day(10, 6 + (i as u32 % 3));
                let b = booking(
                    format!("{}-{i}", unique("b")),
                    &o,
                    &p,
                    check_in,
                    check_out,
                    at(i as i64),
                );
                s.store.insert_booking(&b).await.unwrap();
                candidates.push(b);
            }
            let barrier = Arc::new(Barrier::new(TASKS));
            let tasks: Vec<_> = candidates
                .iter()
                .cloned()
                .map(|b| {
                    let (store, barrier) = (s.store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let result = owner_decides(&*store, &b, BookingStatus::Accepted).await;
                        (b.id, result)
                    })
                })
                .collect();
            let mut won = Vec::new();
            let mut refused = Vec::new();
            for t in tasks {
                match t.await.expect("task") {
                    (id, Ok(next)) => won.push((id, next)),
                    (id, Err(DecisionError::Overlap(other))) => refused.push((id, other)),
                    (id, Err(e)) => panic!("round {round}: {id}: unexpected {e:?}"),
                }
            }
            assert_eq!(
                won.len(),
                1,
                "round {round}: exactly one acceptance wins: {won:?}"
            );
            let winner = &won[0].0;
            assert_eq!(refused.len(), TASKS - 1);
            for (id, other) in &refused {
                assert_eq!(
                    other, winner,
                    "round {round}: {id} is refused because of the winner"
                );
            }

            let accepted = s
                .store
                .bookings_of(
                    &o,
                    &BookingFilter {
                        status: Some(BookingStatus::Accepted),
                        property_id: Some(p.clone()),
                    },
                    &PageRequest::default(),
                )
                .await
                .unwrap()
                .items;
            assert_eq!(ids(&accepted), vec![winner.as_str()], "round {round}");
            assert_eq!(accepted[0].version, 1);
            let still_pending = s
                .store
                .bookings_of(
                    &o,
                    &BookingFilter {
                        status: Some(BookingStatus::Pending),
                        property_id: None,
                    },
                    &PageRequest::default(),
                )
                .await
                .unwrap()
                .items;
            assert_eq!(
                still_pending.len(),
                TASKS - 1,
                "round {round}: the losers are unchanged"
            );
            assert!(still_pending.iter().all(|b| b.version == 0));

            let queued = pending(&*outbox).await;
            assert_eq!(
                queued.len(),
                1,
                "round {round}: one event, the winner's: {:?}",
                summary(&queued)
            );
            assert_eq!(&queued[0].key, winner);
            assert_eq!(payload(&queued[0])["data"]["status"], "ACCEPTED");
            outbox
                .mark_published(std::slice::from_ref(&queued[0].event_id))
                .await
                .unwrap();
        }
    }

    pub async fn concurrent_decisions_on_one_booking_admit_exactly_one(s: Subject) {
        const ROUNDS: usize = 3;
        let outbox = s.outbox.clone();
        let choices = [
            BookingStatus::Accepted,
            BookingStatus::Rejected,
            BookingStatus::Cancelled,
            BookingStatus::Accepted,
            BookingStatus::Rejected,
            BookingStatus::Cancelled,
            BookingStatus::Accepted,
            BookingStatus::Rejected,
        ];
        for round in 0..ROUNDS {
            let o = unique("owner");
            let b = booking(unique("b"), &o, unique("p"), day(11, 1), day(11, 8), at(0));
            s.store.insert_booking(&b).await.unwrap();
            // Rotate so a different kind of decision starts first each round.
            let mut order = choices.to_vec();
            order.rotate_left(round);
            let barrier = Arc::new(Barrier::new(order.len()));
            let tasks: Vec<_> = order
                .iter()
                .map(|&to| {
                    let (store, barrier, b) = (s.store.clone(), barrier.clone(), b.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let result = owner_decides(&*store, &b, to).await;
                        (to, result)
                    })
                })
                .collect();
            let mut won = Vec::new();
            let mut conflicts = 0;
            for t in tasks {
                match t.await.expect("task") {
                    (to, Ok(next)) => won.push((to, next)),
                    (_, Err(DecisionError::Conflict)) => conflicts += 1,
                    (to, Err(e)) => panic!("round {round}: {}: unexpected {e:?}", to.as_str()),
                }
            }
            assert_eq!(
                won.len(),
                1,
                "round {round}: exactly one decision wins: {won:?}"
            );
            assert_eq!(conflicts, order.len() - 1);
            let (to, next) = &won[0];

            let now = stored(&*s.store, &b.id).await;
            assert_eq!((now.status, now.version), (*to, 1), "round {round}");
            assert_eq!(now.id, next.id);

            let queued = pending(&*outbox).await;
            let mine: Vec<_> = queued.iter().filter(|m| m.key == b.id).collect();
            assert_eq!(
                mine.len(),
                1,
                "round {round}: one event for the booking: {:?}",
                summary(&queued)
            );
            assert_eq!(queued.len(), 1);
            let data = &payload(mine[0])["data"];
            assert_eq!(data["status"], to.as_str());
            assert_eq!(data["previous_status"], "PENDING");
            assert_eq!(data["version"], 1);
            outbox
                .mark_published(std::slice::from_ref(&mine[0].event_id))
                .await
                .unwrap();
        }
    }
}
