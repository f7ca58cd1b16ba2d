//! The `TravelerStore` contract: every check below runs against both adapters
//! — the in-memory one (embedded mode) and the MongoDB one (production,
//! against the real MongoDB-protocol test server) — so the two cannot drift
//! apart.
//!
//! Each check gets a fresh store and its outbox; events are observed through
//! `OutboxStore::pending`, exactly as the relay sees them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use events::{
    topics, Actor, ActorRole, BookingCancellationRequested, BookingId, BookingRequestEvent,
    BookingStatus, BookingStatusChanged, Envelope, PropertyDetails, PropertyId, Stay, UserId,
};
use service_runtime::{
    outbox::{OutboxMessage, OutboxSignal},
    paging::{Page, PageRequest},
};
use test_support::{
    store::{
        at, day, event_type, found, payload, pending, property_details_with_extras, sorted, walk,
        walk_after, NAMES_TO_SORT,
    },
    unique,
};
use tokio::sync::Barrier;
use traveler_service::{
    domain::{
        booking::Booking,
        catalog::{CatalogProperty, CatalogQuery},
    },
    store::{
        CancelOutcome, CreateOutcome, IdempotencyKey, InMemoryTravelerStore, MongoTravelerStore,
        StatusApplied, TravelerStore, OUTBOX_COLLECTIONS,
    },
};

// Each check runs as `in_memory::<check>` and `mongodb::<check>`.
test_support::store_contract! {
    service: "traveler",
    database: "traveler_contract",
    store: dyn TravelerStore,
    in_memory: |outbox| InMemoryTravelerStore::new(outbox),
    mongodb: |db| MongoTravelerStore::new(db, OutboxSignal::default()),
    outbox: (&OUTBOX_COLLECTIONS, "traveler-service"),
    checks: [
        upsert_listing_then_read_it_back,
        an_older_listing_version_never_overwrites_a_newer_one,
        delist_applies_only_to_newer_versions,
        concurrent_listing_versions_converge_on_the_newest,
        search_returns_active_listings_by_city_and_capacity,
        create_booking_queues_its_request_event,
        idempotency_key_replays_the_same_request_and_refuses_a_different_one,
        concurrent_retries_with_one_idempotency_key_create_one_booking,
        bookings_of_filters_by_traveler_and_status_newest_first,
        booking_pages_walk_every_booking_once_newest_first_while_new_ones_arrive,
        catalog_pages_walk_every_listing_once_by_name_while_the_catalog_changes,
        cancellation_is_requested_once_and_only_by_the_traveler,
        cancellation_of_a_final_booking_is_refused,
        concurrent_cancellation_requests_queue_one_event,
        apply_status_keeps_the_newest_version,
        concurrent_status_changes_converge_on_the_newest,
        batched_status_changes_apply_in_order_and_ignore_stale_ones,
    ],
}

// ---------------------------------------------------------------- test data

fn listing(
    id: impl AsRef<str>,
    name: &str,
    city: &str,
    max_guests: u32,
    version: u64,
) -> CatalogProperty {
    CatalogProperty {
        id: id.as_ref().into(),
        owner_id: "owner-1".into(),
        details: property_details_with_extras(name, city, max_guests, &["wifi"]),
        active: true,
        version,
        updated_at: at(version as i64),
    }
}

fn booking(
    id: impl AsRef<str>,
    traveler_id: impl AsRef<str>,
    created_at: DateTime<Utc>,
) -> Booking {
    Booking {
        id: id.as_ref().into(),
        stay: Stay {
            property_id: "p-1".into(),
            check_in: day(3, 1),
            check_out: day(3, 4),
            nights: 3,
            guests: 2,
            total_price_cents: 32_500,
            currency: "EUR".into(),
        },
        property_name: "Casa Azul".into(),
        owner_id: "owner-1".into(),
        traveler_id: traveler_id.as_ref().into(),
        status: BookingStatus::Pending,
        status_reason: None,
        version: 0,
        cancellation_requested_at: None,
        created_at,
        updated_at: created_at,
    }
}

fn requested(b: &Booking) -> OutboxMessage {
    let envelope = Envelope::new("test", BookingRequestEvent::Requested(b.requested_event()));
    OutboxMessage::new(topics::BOOKING_REQUESTS, &envelope)
}

fn cancellation(b: &Booking, at: DateTime<Utc>) -> OutboxMessage {
    let envelope = Envelope::new(
        "test",
        BookingRequestEvent::CancellationRequested(BookingCancellationRequested {
            booking_id: b.id.clone(),
            traveler_id: b.traveler_id.clone(),
            reason: Some("plans changed".into()),
            requested_at: at,
        }),
    );
    OutboxMessage::new(topics::BOOKING_REQUESTS, &envelope)
}

fn change(
    b: &Booking,
    status: BookingStatus,
    version: u32,
    reason: Option<&str>,
    at: DateTime<Utc>,
) -> BookingStatusChanged {
    BookingStatusChanged {
        booking_id: b.id.clone(),
        property_id: b.stay.property_id.clone(),
        owner_id: b.owner_id.clone(),
        traveler_id: b.traveler_id.clone(),
        status,
        previous_status: BookingStatus::Pending,
        reason: reason.map(str::to_string),
        changed_by: Actor {
            role: ActorRole::Owner,
            id: b.owner_id.clone(),
        },
        version,
        changed_at: at,
    }
}

fn key(scoped_key: &str, fingerprint: &str) -> IdempotencyKey {
    IdempotencyKey {
        scoped_key: scoped_key.into(),
        fingerprint: fingerprint.into(),
    }
}

fn ids<T: HasId>(items: &[T]) -> Vec<&str> {
    items.iter().map(HasId::id).collect()
}

trait HasId {
    fn id(&self) -> &str;
}

impl HasId for Booking {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

impl HasId for CatalogProperty {
    fn id(&self) -> &str {
        self.id.as_str()
    }
}

async fn stored(store: &dyn TravelerStore, id: &BookingId) -> Booking {
    found(store.booking(id).await, "booking")
}

/// The first page (of the default size) of the active listings matching `q`.
async fn first_search_page(store: &dyn TravelerStore, q: &CatalogQuery) -> Vec<CatalogProperty> {
    store
        .search_listings(q, &PageRequest::default())
        .await
        .expect("search listings")
        .items
}

/// A search of `city`, for any number of guests.
fn in_city(city: &str) -> CatalogQuery {
    CatalogQuery {
        city: Some(city.into()),
        guests: None,
    }
}

/// The first page (of the default size) of `traveler_id`'s bookings, of
/// `status` or of any.
async fn first_bookings_page(
    store: &dyn TravelerStore,
    traveler_id: &UserId,
    status: Option<BookingStatus>,
) -> Vec<Booking> {
    store
        .bookings_of(traveler_id, status, &PageRequest::default())
        .await
        .expect("bookings of")
        .items
}

/// `traveler_id` asks to cancel booking `id` at `at`, with `event`.
async fn ask_to_cancel(
    store: &dyn TravelerStore,
    id: &BookingId,
    traveler_id: &UserId,
    at: DateTime<Utc>,
    event: OutboxMessage,
) -> CancelOutcome {
    store
        .request_cancellation(id, traveler_id, at, event)
        .await
        .expect("request cancellation")
}

/// Creates `b` with `event`, under `key` when given.
async fn create_under_key(
    store: &dyn TravelerStore,
    b: &Booking,
    key: Option<&IdempotencyKey>,
    event: OutboxMessage,
) -> CreateOutcome {
    store
        .create_booking(b, key, event)
        .await
        .expect("create booking")
}

async fn create(store: &dyn TravelerStore, b: &Booking) -> OutboxMessage {
    let m = requested(b);
    assert_eq!(
        store
            .create_booking(b, None, m.clone())
            .await
            .expect("create booking"),
        CreateOutcome::Created
    );
    m
}

// ------------------------------------------------------------------- checks

mod checks {
    use super::*;

    pub async fn upsert_listing_then_read_it_back(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let v1 = listing(unique("p"), "Casa Azul", "Porto", 4, 1);
        store.upsert_listing(&v1).await.unwrap();
        assert_eq!(store.listing(&v1.id).await.unwrap(), Some(v1.clone()));
        assert_eq!(
            store.listing(&"no-such-listing".into()).await.unwrap(),
            None
        );

        let v2 = CatalogProperty {
            details: PropertyDetails {
                name: "Casa Verde".into(),
                city: "Lisbon".into(),
                address: None,
                amenities: vec![],
                max_guests: 6,
                ..v1.details.clone()
            },
            version: 2,
            updated_at: at(2),
            ..v1.clone()
        };
        store.upsert_listing(&v2).await.unwrap();
        assert_eq!(store.listing(&v1.id).await.unwrap(), Some(v2.clone()));

        // Another listing is independent.
        let other = listing(unique("q"), "Other", "Faro", 2, 1);
        store.upsert_listing(&other).await.unwrap();
        assert_eq!(store.listing(&other.id).await.unwrap(), Some(other.clone()));
        assert_eq!(store.listing(&v1.id).await.unwrap(), Some(v2.clone()));
        let mut both = store
            .listings(&[v1.id.clone(), "no-such-listing".into(), other.id.clone()])
            .await
            .unwrap();
        both.sort_by(|a, b| a.id.cmp(&b.id));
        let mut expected = vec![v2, other];
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(both, expected, "the listings that exist, one read");
        assert_eq!(
            pending(outbox).await,
            vec![],
            "the catalog publishes nothing"
        );
    }

    pub async fn an_older_listing_version_never_overwrites_a_newer_one(s: Subject) {
        let store = &*s.store;
        // Newer first, then the older one arrives late.
        let id: PropertyId = unique("p").into();
        let v3 = listing(&id, "Version three", "Porto", 4, 3);
        let v2 = listing(&id, "Version two", "Lisbon", 8, 2);
        store.upsert_listing(&v3).await.unwrap();
        store.upsert_listing(&v2).await.unwrap();
        assert_eq!(
            store.listing(&id).await.unwrap(),
            Some(v3.clone()),
            "late older version ignored"
        );

        // The same version again (redelivery, even with other content) changes nothing.
        let v3_again = CatalogProperty {
            details: PropertyDetails {
                name: "Redelivered".into(),
                ..v3.details.clone()
            },
            ..v3.clone()
        };
        store.upsert_listing(&v3_again).await.unwrap();
        assert_eq!(
            store.listing(&id).await.unwrap(),
            Some(v3.clone()),
            "same version ignored"
        );

        // In order: older first, then newer.
        let id: PropertyId = unique("q").into();
        let v1 = listing(&id, "Version one", "Porto", 4, 1);
        let v5 = listing(&id, "Version five", "Braga", 3, 5);
        store.upsert_listing(&v1).await.unwrap();
        store.upsert_listing(&v5).await.unwrap();
        assert_eq!(store.listing(&id).await.unwrap(), Some(v5.clone()));
        store.upsert_listing(&v1).await.unwrap();
        assert_eq!(store.listing(&id).await.unwrap(), Some(v5.clone()));

        // Search sees the winning versions only.
        let braga = first_search_page(store, &in_city("Braga")).await;
        assert_eq!(braga, vec![v5]);
        let lisbon = first_search_page(store, &in_city("Lisbon")).await;
        assert_eq!(lisbon, vec![], "the stale Lisbon version was never stored");
    }

    pub async fn delist_applies_only_to_newer_versions(s: Subject) {
        let store = &*s.store;
        let v2 = listing(unique("p"), "Casa", "Porto", 4, 2);
        store.upsert_listing(&v2).await.unwrap();

        // An older or equal version's delisting is stale.
        store.delist_listing(&v2.id, 1, at(100)).await.unwrap();
        assert_eq!(store.listing(&v2.id).await.unwrap(), Some(v2.clone()));
        store.delist_listing(&v2.id, 2, at(100)).await.unwrap();
        assert_eq!(store.listing(&v2.id).await.unwrap(), Some(v2.clone()));

        // A newer one takes it off the market.
        store.delist_listing(&v2.id, 3, at(200)).await.unwrap();
        let delisted = CatalogProperty {
            active: false,
            version: 3,
            updated_at: at(200),
            ..v2.clone()
        };
        assert_eq!(store.listing(&v2.id).await.unwrap(), Some(delisted.clone()));
        let porto = CatalogQuery {
            city: Some("Porto".into()),
            guests: None,
        };
        assert_eq!(first_search_page(store, &porto).await, vec![]);

        // A late snapshot of the same or an older version does not relist it.
        store
            .upsert_listing(&listing(&v2.id, "Casa", "Porto", 4, 3))
            .await
            .unwrap();
        store.upsert_listing(&v2).await.unwrap();
        assert_eq!(store.listing(&v2.id).await.unwrap(), Some(delisted.clone()));

        // A newer snapshot does.
        let v4 = listing(&v2.id, "Casa reaberta", "Porto", 4, 4);
        store.upsert_listing(&v4).await.unwrap();
        assert_eq!(store.listing(&v2.id).await.unwrap(), Some(v4.clone()));
        assert_eq!(first_search_page(store, &porto).await, vec![v4]);

        // Delisting something never seen does not invent it.
        let ghost: PropertyId = unique("ghost").into();
        store.delist_listing(&ghost, 9, at(300)).await.unwrap();
        assert_eq!(store.listing(&ghost).await.unwrap(), None);
    }

    pub async fn concurrent_listing_versions_converge_on_the_newest(s: Subject) {
        // Snapshots of a property not seen before, delivered all at once (a
        // redelivery overlapping a rebalance, two replicas): the newest wins.
        const VERSIONS: u64 = 8;
        const ROUNDS: usize = 10;
        let mut lost = Vec::new();
        for round in 0..ROUNDS {
            let id: PropertyId = unique("p").into();
            let barrier = Arc::new(Barrier::new(VERSIONS as usize));
            let tasks: Vec<_> = (1..=VERSIONS)
                .map(|v| {
                    let p = listing(&id, &format!("Version {v}"), "Porto", 4, v);
                    let (store, barrier) = (s.store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        store.upsert_listing(&p).await.expect("upsert");
                    })
                })
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
            let now = s.store.listing(&id).await.unwrap().expect("listing stored");
            if now.version != VERSIONS {
                lost.push((round, now.version));
            }
        }
        assert_eq!(
            lost,
            vec![],
            "(round, version kept) where version {VERSIONS}, the newest, was lost"
        );
    }

    pub async fn search_returns_active_listings_by_city_and_capacity(s: Subject) {
        let store = &*s.store;
        let city = format!("Lisbon {}", unique("x"));
        let big = listing(unique("big"), "B big", &city, 6, 1);
        let small = listing(unique("small"), "A small", &city.to_uppercase(), 2, 1);
        let exact = listing(unique("exact"), "C exact", &city.to_lowercase(), 4, 1);
        // Same name as `exact`: ties go by id.
        let twin = listing(format!("{}~", exact.id), "C exact", &city, 4, 1);
        let inactive = CatalogProperty {
            active: false,
            ..listing(unique("inactive"), "D inactive", &city, 10, 1)
        };
        let delisted = listing(unique("delisted"), "E delisted", &city, 10, 1);
        let elsewhere = listing(unique("elsewhere"), "F elsewhere", "Faro", 10, 1);
        let prefix = listing(
            unique("prefix"),
            "G prefix",
            &format!("{city}-Norte"),
            10,
            1,
        );
        for p in [
            &big, &small, &exact, &twin, &inactive, &delisted, &elsewhere, &prefix,
        ] {
            store.upsert_listing(p).await.unwrap();
        }
        store.delist_listing(&delisted.id, 2, at(50)).await.unwrap();

        let search = |city: Option<String>, guests: Option<u32>| async move {
            store
                .search_listings(&CatalogQuery { city, guests }, &PageRequest::default())
                .await
                .expect("search")
                .items
        };

        let in_city = search(Some(city.clone()), None).await;
        assert_eq!(
            in_city,
            vec![small.clone(), big.clone(), exact.clone(), twin.clone()],
            "active listings of the city, any case, by name then id"
        );
        assert_eq!(search(Some(city.to_uppercase()), None).await, in_city);
        assert_eq!(search(Some(city.to_lowercase()), None).await, in_city);
        assert_eq!(
            search(Some(city.clone()), Some(4)).await,
            vec![big.clone(), exact.clone(), twin.clone()],
            "capacity is inclusive"
        );
        assert_eq!(search(Some(city.clone()), Some(5)).await, vec![big.clone()]);
        assert_eq!(search(Some(city.clone()), Some(7)).await, vec![]);
        assert_eq!(search(Some(city.clone()), Some(1)).await, in_city);
        assert_eq!(
            search(Some(city[..4].to_string()), None).await,
            vec![],
            "whole city name only"
        );

        // Without a city: every active listing (this store holds only ours).
        let all = search(None, None).await;
        assert_eq!(
            ids(&all),
            ids(&[
                small.clone(),
                big.clone(),
                exact.clone(),
                twin.clone(),
                elsewhere.clone(),
                prefix.clone()
            ])
        );
        assert_eq!(
            ids(&search(None, Some(7)).await),
            ids(&[elsewhere.clone(), prefix.clone()])
        );

        // A listing that moves city is found only in the new one.
        let moved = CatalogProperty {
            details: PropertyDetails {
                city: "Faro".into(),
                ..big.details.clone()
            },
            version: 2,
            ..big.clone()
        };
        store.upsert_listing(&moved).await.unwrap();
        assert_eq!(search(Some(city.clone()), Some(5)).await, vec![]);
        assert_eq!(
            search(Some("FARO".into()), Some(5)).await,
            vec![moved, elsewhere]
        );
    }

    pub async fn create_booking_queues_its_request_event(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let b = booking(unique("b"), unique("tom"), at(0));
        let m = create(store, &b).await;
        assert_eq!(stored(store, &b.id).await, b);
        assert_eq!(
            store.booking(&"no-such-booking".into()).await.unwrap(),
            None
        );

        let queued = pending(outbox).await;
        assert_eq!(
            queued,
            vec![m.clone()],
            "exactly the booking's event, unchanged"
        );
        assert_eq!(queued[0].topic, topics::BOOKING_REQUESTS);
        assert_eq!(queued[0].key, b.id);
        assert_eq!(event_type(&queued[0]), "booking.requested");
        assert_eq!(payload(&queued[0])["data"]["booking_id"], b.id.as_str());

        // Without idempotency keys, two requests are two bookings.
        let b2 = booking(unique("b2"), &b.traveler_id, at(1));
        let m2 = create(store, &b2).await;
        assert_eq!(
            sorted(pending(outbox).await),
            sorted(vec![m.clone(), m2.clone()])
        );

        outbox
            .mark_published(std::slice::from_ref(&m.event_id))
            .await
            .unwrap();
        assert_eq!(pending(outbox).await, vec![m2.clone()]);
        outbox
            .mark_published(std::slice::from_ref(&m2.event_id))
            .await
            .unwrap();
        assert_eq!(pending(outbox).await, vec![]);
        assert_eq!(
            stored(store, &b.id).await,
            b,
            "publishing leaves the booking alone"
        );
    }

    pub async fn idempotency_key_replays_the_same_request_and_refuses_a_different_one(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let (tom, tina): (UserId, UserId) = (unique("tom").into(), unique("tina").into());
        let raw_key = unique("key");
        let toms_key = key(&format!("{tom}:{raw_key}"), "fingerprint-A");

        // A keyed booking's id is the key's (the store's contract).
        let original = booking(toms_key.booking_id(), &tom, at(0));
        let first = requested(&original);
        assert_eq!(
            create_under_key(store, &original, Some(&toms_key), first.clone()).await,
            CreateOutcome::Created
        );
        // The key finds the booking and the fingerprint of what created it.
        assert_eq!(
            store
                .booking_by_idempotency_key(&toms_key.scoped_key)
                .await
                .unwrap(),
            Some((original.clone(), "fingerprint-A".to_string()))
        );
        assert_eq!(
            store
                .booking_by_idempotency_key(&format!("{tina}:{raw_key}"))
                .await
                .unwrap(),
            None,
            "keys are per traveler"
        );

        // A retry of the same request (the handler made a fresh event).
        let retry = booking(toms_key.booking_id(), &tom, at(5));
        assert_eq!(
            create_under_key(store, &retry, Some(&toms_key), requested(&retry)).await,
            CreateOutcome::Replayed(original.clone())
        );
        assert_eq!(
            stored(store, &original.id).await,
            original,
            "the first booking stands"
        );

        // The same key for a different request.
        let different = booking(toms_key.booking_id(), &tom, at(6));
        let different = Booking {
            stay: Stay {
                guests: 4,
                ..different.stay.clone()
            },
            ..different
        };
        assert_eq!(
            create_under_key(
                store,
                &different,
                Some(&key(&toms_key.scoped_key, "fingerprint-B")),
                requested(&different)
            )
            .await,
            CreateOutcome::KeyReused
        );
        assert_eq!(stored(store, &original.id).await, original);
        assert_eq!(
            pending(outbox).await,
            vec![first.clone()],
            "neither queued an event"
        );
        assert_eq!(
            ids(&first_bookings_page(store, &tom, None).await),
            vec![original.id.as_str()]
        );

        // The same key string from another traveler is another key.
        let tinas_key = key(&format!("{tina}:{raw_key}"), "fingerprint-A");
        assert_ne!(tinas_key.booking_id(), toms_key.booking_id());
        let tinas = booking(tinas_key.booking_id(), &tina, at(7));
        let tinas_event = requested(&tinas);
        assert_eq!(
            create_under_key(store, &tinas, Some(&tinas_key), tinas_event.clone()).await,
            CreateOutcome::Created
        );
        assert_eq!(stored(store, &tinas.id).await, tinas);
        assert_eq!(
            sorted(pending(outbox).await),
            sorted(vec![first.clone(), tinas_event.clone()])
        );

        // A replay returns the booking as it is now, after its status changed.
        store
            .apply_status(&change(&original, BookingStatus::Accepted, 1, None, at(20)))
            .await
            .unwrap();
        let now = stored(store, &original.id).await;
        assert_eq!(now.status, BookingStatus::Accepted);
        let again = booking(toms_key.booking_id(), &tom, at(30));
        assert_eq!(
            create_under_key(store, &again, Some(&toms_key), requested(&again)).await,
            CreateOutcome::Replayed(now)
        );
        // ...and still replays after its event was published.
        outbox
            .mark_published(std::slice::from_ref(&first.event_id))
            .await
            .unwrap();
        assert!(matches!(
            create_under_key(store, &again, Some(&toms_key), requested(&again)).await,
            CreateOutcome::Replayed(b) if b.id == original.id
        ));
        assert_eq!(pending(outbox).await, vec![tinas_event]);
    }

    pub async fn concurrent_retries_with_one_idempotency_key_create_one_booking(s: Subject) {
        const TASKS: usize = 8;
        let tom: UserId = unique("tom").into();
        let scoped = format!("{tom}:{}", unique("key"));
        let barrier = Arc::new(Barrier::new(TASKS));
        // Six retries of one request and two different requests, all with one key.
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (store, barrier) = (s.store.clone(), barrier.clone());
                let fingerprint = if i % 4 == 3 {
                    "fingerprint-B"
                } else {
                    "fingerprint-A"
                };
                let k = key(&scoped, fingerprint);
                let b = booking(k.booking_id(), &tom, at(i as i64));
                tokio::spawn(async move {
                    let message = requested(&b);
                    barrier.wait().await;
                    let outcome = store
                        .create_booking(&b, Some(&k), message.clone())
                        .await
                        .expect("create");
                    (b, k.fingerprint, message, outcome)
                })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.expect("task"));
        }
        let created: Vec<_> = results
            .iter()
            .filter(|r| r.3 == CreateOutcome::Created)
            .collect();
        assert_eq!(
            created.len(),
            1,
            "exactly one request creates the booking: {:?}",
            results.iter().map(|r| &r.3).collect::<Vec<_>>()
        );
        let (winner, winner_fingerprint, winner_message, _) = created[0].clone();
        // All carry the key's booking id; they differ in creation time.
        for (b, fingerprint, _, outcome) in &results {
            if *outcome == CreateOutcome::Created {
                continue;
            }
            let expected = if *fingerprint == winner_fingerprint {
                CreateOutcome::Replayed(winner.clone())
            } else {
                CreateOutcome::KeyReused
            };
            assert_eq!(outcome, &expected, "{} ({fingerprint})", b.created_at);
        }
        assert_eq!(
            first_bookings_page(&*s.store, &tom, None).await,
            vec![winner]
        );
        assert_eq!(
            pending(&*s.outbox).await,
            vec![winner_message],
            "one booking, one event"
        );
    }

    pub async fn bookings_of_filters_by_traveler_and_status_newest_first(s: Subject) {
        let store = &*s.store;
        let (tom, una): (UserId, UserId) = (unique("tom").into(), unique("una").into());
        let b1 = booking(unique("b1"), &tom, at(1));
        let b2 = booking(unique("b2"), &tom, at(2));
        let b3 = booking(unique("b3"), &tom, at(3));
        // Same instant as b3: ties go by id, descending.
        let b4 = booking(format!("{}~", b3.id), &tom, at(3));
        let unas = booking(unique("una-b"), &una, at(4));
        for b in [&b3, &unas, &b1, &b4, &b2] {
            create(store, b).await;
        }
        store
            .apply_status(&change(&b2, BookingStatus::Accepted, 1, None, at(10)))
            .await
            .unwrap();
        store
            .apply_status(&change(
                &b3,
                BookingStatus::Rejected,
                1,
                Some("busy"),
                at(11),
            ))
            .await
            .unwrap();
        let b2 = stored(store, &b2.id).await;
        let b3 = stored(store, &b3.id).await;

        assert_eq!(
            first_bookings_page(store, &tom, None).await,
            vec![b4.clone(), b3.clone(), b2.clone(), b1.clone()]
        );
        assert_eq!(
            first_bookings_page(store, &tom, Some(BookingStatus::Pending)).await,
            vec![b4.clone(), b1.clone()]
        );
        assert_eq!(
            first_bookings_page(store, &tom, Some(BookingStatus::Accepted)).await,
            vec![b2.clone()]
        );
        assert_eq!(
            first_bookings_page(store, &tom, Some(BookingStatus::Rejected)).await,
            vec![b3.clone()]
        );
        assert_eq!(
            first_bookings_page(store, &tom, Some(BookingStatus::Cancelled)).await,
            vec![]
        );
        assert_eq!(
            first_bookings_page(store, &una, None).await,
            vec![unas.clone()]
        );
        assert_eq!(
            first_bookings_page(store, &una, Some(BookingStatus::Accepted)).await,
            vec![]
        );
        assert_eq!(
            first_bookings_page(store, &"nobody".into(), None).await,
            vec![]
        );
    }

    pub async fn booking_pages_walk_every_booking_once_newest_first_while_new_ones_arrive(
        s: Subject,
    ) {
        let store = &*s.store;
        let (tom, una): (UserId, UserId) = (unique("tom").into(), unique("una").into());
        let tom = &tom;
        // Eleven of Tom's bookings, three sharing one instant (ties go by
        // id, descending), and Una's in between.
        let mut toms = Vec::new();
        for i in 0..11i64 {
            let instant = if (4..7).contains(&i) { 4 } else { i };
            let b = booking(format!("{}-{i:02}", unique("b")), tom, at(instant));
            create(store, &b).await;
            create(store, &booking(unique("una-b"), &una, at(instant))).await;
            toms.push(b);
        }
        store
            .apply_status(&change(&toms[5], BookingStatus::Accepted, 1, None, at(20)))
            .await
            .unwrap();
        toms[5] = stored(store, &toms[5].id).await;
        let mut newest_first = toms.clone();
        newest_first.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));

        for limit in [1, 3, 4, 11, 12, 200] {
            let all = walk(limit, |page| async move {
                store.bookings_of(tom, None, &page).await.expect("page")
            })
            .await;
            assert_eq!(ids(&all), ids(&newest_first), "limit {limit}");
        }
        // A status filter pages the same way.
        let pending = walk(2, |page| async move {
            store
                .bookings_of(tom, Some(BookingStatus::Pending), &page)
                .await
                .expect("page")
        })
        .await;
        let expected: Vec<_> = newest_first
            .iter()
            .filter(|b| b.status == BookingStatus::Pending)
            .cloned()
            .collect();
        assert_eq!(pending, expected);

        // Bookings made while the pages are read come before the cursor:
        // the remaining pages still hold exactly the bookings not yet served.
        let first = store
            .bookings_of(tom, None, &PageRequest::first(4))
            .await
            .unwrap();
        assert_eq!(ids(&first.items), ids(&newest_first[..4]));
        let newcomer = booking(unique("new"), tom, at(30));
        create(store, &newcomer).await;
        let rest = walk_after(&first, 4, |page| async move {
            store.bookings_of(tom, None, &page).await.expect("page")
        })
        .await;
        assert_eq!(ids(&rest), ids(&newest_first[4..]));
        // A new first page starts with it.
        let newest = store
            .bookings_of(tom, None, &PageRequest::first(1))
            .await
            .unwrap();
        assert_eq!(ids(&newest.items), vec![newcomer.id.as_str()]);
        assert_eq!(
            store
                .bookings_of(&"nobody".into(), None, &PageRequest::first(5))
                .await
                .unwrap(),
            Page {
                items: vec![],
                next: None
            }
        );
    }

    pub async fn catalog_pages_walk_every_listing_once_by_name_while_the_catalog_changes(
        s: Subject,
    ) {
        let store = &*s.store;
        let mut listings = Vec::new();
        for (i, name) in NAMES_TO_SORT.iter().enumerate() {
            let city = if i % 2 == 0 { "Porto" } else { "Faro" };
            let p = listing(unique(&format!("p{i}")), name, city, 2 + i as u32, 1);
            store.upsert_listing(&p).await.unwrap();
            listings.push(p);
        }
        // A delisted one is never served.
        let gone = listing(unique("gone"), "Casa", "Porto", 4, 1);
        store.upsert_listing(&gone).await.unwrap();
        store.delist_listing(&gone.id, 2, at(5)).await.unwrap();

        let mut by_name = listings.clone();
        by_name.sort_by(|a, b| (&a.details.name, &a.id).cmp(&(&b.details.name, &b.id)));
        let everything = CatalogQuery::default();
        for limit in [1, 2, 7, 8] {
            let all = walk(limit, |page| {
                let q = everything.clone();
                async move { store.search_listings(&q, &page).await.expect("page") }
            })
            .await;
            assert_eq!(ids(&all), ids(&by_name), "limit {limit}");
        }
        let porto_for_six = CatalogQuery {
            city: Some("porto".into()),
            guests: Some(6),
        };
        let filtered = walk(1, |page| {
            let q = porto_for_six.clone();
            async move { store.search_listings(&q, &page).await.expect("page") }
        })
        .await;
        let expected: Vec<_> = by_name
            .iter()
            .filter(|p| porto_for_six.matches(p))
            .cloned()
            .collect();
        assert_eq!(expected.len(), 2);
        assert_eq!(filtered, expected);

        // Listed while the pages are read: one named before the cursor is
        // not served, one named after it is, and nothing comes twice.
        let first = store
            .search_listings(&everything, &PageRequest::first(3))
            .await
            .unwrap();
        let early = listing(unique("early"), "Aaa", "Porto", 4, 1);
        let late = listing(unique("late"), "zzz", "Porto", 4, 1);
        store.upsert_listing(&early).await.unwrap();
        store.upsert_listing(&late).await.unwrap();
        let rest = walk_after(&first, 3, |page| {
            let q = everything.clone();
            async move { store.search_listings(&q, &page).await.expect("page") }
        })
        .await;
        let mut expected = by_name[3..].to_vec();
        expected.push(late);
        assert_eq!(ids(&first.items), ids(&by_name[..3]));
        assert_eq!(ids(&rest), ids(&expected));
    }

    pub async fn cancellation_is_requested_once_and_only_by_the_traveler(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let tom: UserId = unique("tom").into();
        let b = booking(unique("b"), &tom, at(0));
        let created = create(store, &b).await;

        // Not the traveler's booking, or no booking at all: not found, no effect.
        let intruder: UserId = unique("intruder").into();
        assert_eq!(
            ask_to_cancel(store, &b.id, &intruder, at(10), cancellation(&b, at(10))).await,
            CancelOutcome::NotFound
        );
        assert_eq!(
            ask_to_cancel(
                store,
                &"no-such-booking".into(),
                &tom,
                at(10),
                cancellation(&b, at(10))
            )
            .await,
            CancelOutcome::NotFound
        );
        assert_eq!(stored(store, &b.id).await, b);
        assert_eq!(pending(outbox).await, vec![created.clone()]);

        // The traveler asks: recorded, with its event.
        let asked = cancellation(&b, at(20));
        let expected = Booking {
            cancellation_requested_at: Some(at(20)),
            updated_at: at(20),
            ..b.clone()
        };
        assert_eq!(
            ask_to_cancel(store, &b.id, &tom, at(20), asked.clone()).await,
            CancelOutcome::Requested(expected.clone())
        );
        assert_eq!(stored(store, &b.id).await, expected);
        let queued = pending(outbox).await;
        assert_eq!(
            queued,
            vec![created.clone(), asked.clone()],
            "one aggregate's events in write order"
        );
        assert_eq!(queued[1].topic, topics::BOOKING_REQUESTS);
        assert_eq!(queued[1].key, b.id);
        assert_eq!(event_type(&queued[1]), "booking.cancellation_requested");

        // Asking again changes nothing and publishes nothing.
        assert_eq!(
            ask_to_cancel(store, &b.id, &tom, at(30), cancellation(&b, at(30))).await,
            CancelOutcome::AlreadyRequested(expected.clone())
        );
        assert_eq!(stored(store, &b.id).await, expected);
        assert_eq!(pending(outbox).await, vec![created.clone(), asked.clone()]);

        // An intruder still cannot see it.
        assert_eq!(
            ask_to_cancel(store, &b.id, &intruder, at(40), cancellation(&b, at(40))).await,
            CancelOutcome::NotFound
        );

        // An ACCEPTED booking can be asked to cancel too.
        let accepted = booking(unique("accepted"), &tom, at(1));
        let accepted_created = create(store, &accepted).await;
        store
            .apply_status(&change(&accepted, BookingStatus::Accepted, 1, None, at(50)))
            .await
            .unwrap();
        let accepted_now = stored(store, &accepted.id).await;
        let ask = cancellation(&accepted, at(60));
        assert_eq!(
            ask_to_cancel(store, &accepted.id, &tom, at(60), ask.clone()).await,
            CancelOutcome::Requested(Booking {
                cancellation_requested_at: Some(at(60)),
                updated_at: at(60),
                ..accepted_now
            })
        );
        assert_eq!(
            sorted(pending(outbox).await),
            sorted(vec![created, asked, accepted_created, ask])
        );
    }

    pub async fn cancellation_of_a_final_booking_is_refused(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let tom: UserId = unique("tom").into();
        for status in [BookingStatus::Cancelled, BookingStatus::Rejected] {
            let b = booking(unique("b"), &tom, at(0));
            let created = create(store, &b).await;
            assert_eq!(
                store
                    .apply_status(&change(&b, status, 1, Some("owner said so"), at(10)))
                    .await
                    .unwrap(),
                StatusApplied::Applied
            );
            let decided = stored(store, &b.id).await;
            assert_eq!(decided.status, status);
            assert_eq!(
                ask_to_cancel(store, &b.id, &tom, at(20), cancellation(&b, at(20))).await,
                CancelOutcome::Final(decided.clone()),
                "{}",
                status.as_str()
            );
            assert_eq!(stored(store, &b.id).await, decided, "unchanged");
            assert_eq!(
                ask_to_cancel(
                    store,
                    &b.id,
                    &unique("intruder").into(),
                    at(20),
                    cancellation(&b, at(20))
                )
                .await,
                CancelOutcome::NotFound,
                "another traveler learns nothing about it"
            );
            assert_eq!(
                pending(outbox).await,
                vec![created.clone()],
                "nothing queued"
            );
            outbox.mark_published(&[created.event_id]).await.unwrap();
        }

        // Requested, then decided: the request no longer matters, the decision is final.
        let b = booking(unique("b"), &tom, at(0));
        let created = create(store, &b).await;
        let asked = cancellation(&b, at(5));
        assert!(matches!(
            ask_to_cancel(store, &b.id, &tom, at(5), asked.clone()).await,
            CancelOutcome::Requested(_)
        ));
        store
            .apply_status(&change(&b, BookingStatus::Cancelled, 1, None, at(10)))
            .await
            .unwrap();
        let decided = stored(store, &b.id).await;
        assert_eq!(decided.status, BookingStatus::Cancelled);
        assert_eq!(decided.cancellation_requested_at, Some(at(5)));
        assert_eq!(
            ask_to_cancel(store, &b.id, &tom, at(20), cancellation(&b, at(20))).await,
            CancelOutcome::Final(decided)
        );
        assert_eq!(pending(outbox).await, vec![created, asked]);
    }

    pub async fn concurrent_cancellation_requests_queue_one_event(s: Subject) {
        const TASKS: usize = 8;
        let tom: UserId = unique("tom").into();
        let b = booking(unique("b"), &tom, at(0));
        let created = create(&*s.store, &b).await;
        let barrier = Arc::new(Barrier::new(TASKS));
        let tasks: Vec<_> = (0..TASKS)
            .map(|i| {
                let (store, barrier, b, tom) =
                    (s.store.clone(), barrier.clone(), b.clone(), tom.clone());
                tokio::spawn(async move {
                    let when = at(10 + i as i64);
                    let message = cancellation(&b, when);
                    barrier.wait().await;
                    let outcome = store
                        .request_cancellation(&b.id, &tom, when, message.clone())
                        .await
                        .expect("cancel");
                    (when, message, outcome)
                })
            })
            .collect();
        let mut requested = Vec::new();
        let mut already = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (when, message, CancelOutcome::Requested(now)) => {
                    requested.push((when, message, now))
                }
                (_, _, CancelOutcome::AlreadyRequested(now)) => already.push(now),
                (_, _, other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(requested.len(), 1, "exactly one request is recorded");
        assert_eq!(already.len(), TASKS - 1);
        let (when, message, now) = requested.pop().unwrap();
        assert_eq!(now.cancellation_requested_at, Some(when));
        assert!(
            already
                .iter()
                .all(|b| b.cancellation_requested_at == Some(when)),
            "everyone sees the first request"
        );
        assert_eq!(stored(&*s.store, &b.id).await, now);
        assert_eq!(
            pending(&*s.outbox).await,
            vec![created, message],
            "one cancellation event"
        );
    }

    /// The consumer's bulk path: several changes (two for one booking, one
    /// redelivered) in one call, and bookings looked up together.
    pub async fn batched_status_changes_apply_in_order_and_ignore_stale_ones(s: Subject) {
        let store = &*s.store;
        let tom: UserId = unique("tom").into();
        let a = booking(unique("a"), &tom, at(0));
        let b = booking(unique("b"), &tom, at(1));
        create(store, &a).await;
        create(store, &b).await;

        let a1 = change(&a, BookingStatus::Accepted, 1, None, at(10));
        let a2 = change(&a, BookingStatus::Cancelled, 2, Some("storm"), at(20));
        let b1 = change(&b, BookingStatus::Rejected, 1, Some("full"), at(15));
        store
            .apply_statuses(&[a1.clone(), b1.clone(), a2.clone()])
            .await
            .unwrap();
        // Redelivered together with an older one: nothing moves backwards.
        store
            .apply_statuses(&[a1.clone(), b1.clone()])
            .await
            .unwrap();
        store.apply_statuses(&[]).await.unwrap();

        let after_a = stored(store, &a.id).await;
        assert_eq!(
            (after_a.status, after_a.version),
            (BookingStatus::Cancelled, 2)
        );
        assert_eq!(after_a.status_reason.as_deref(), Some("storm"));
        let after_b = stored(store, &b.id).await;
        assert_eq!(
            (after_b.status, after_b.version),
            (BookingStatus::Rejected, 1)
        );

        let mut found: Vec<BookingId> = store
            .bookings_by_ids(&[a.id.clone(), b.id.clone(), "no-such-booking".into()])
            .await
            .unwrap()
            .into_iter()
            .map(|x| x.id)
            .collect();
        found.sort();
        let mut expected = vec![a.id.clone(), b.id.clone()];
        expected.sort();
        assert_eq!(found, expected);
    }

    pub async fn apply_status_keeps_the_newest_version(s: Subject) {
        let (store, outbox) = (&*s.store, &*s.outbox);
        let b = booking(unique("b"), unique("tom"), at(0));
        let created = create(store, &b).await;

        let v1 = change(&b, BookingStatus::Accepted, 1, None, at(10));
        assert_eq!(
            store.apply_status(&v1).await.unwrap(),
            StatusApplied::Applied
        );
        let after_v1 = Booking {
            status: BookingStatus::Accepted,
            status_reason: None,
            version: 1,
            updated_at: at(10),
            ..b.clone()
        };
        assert_eq!(stored(store, &b.id).await, after_v1);

        // Redelivery of the same change.
        assert_eq!(store.apply_status(&v1).await.unwrap(), StatusApplied::Stale);
        assert_eq!(stored(store, &b.id).await, after_v1);

        let v2 = change(&b, BookingStatus::Cancelled, 2, Some("flooded"), at(20));
        assert_eq!(
            store.apply_status(&v2).await.unwrap(),
            StatusApplied::Applied
        );
        let after_v2 = Booking {
            status: BookingStatus::Cancelled,
            status_reason: Some("flooded".into()),
            version: 2,
            updated_at: at(20),
            ..b.clone()
        };
        assert_eq!(stored(store, &b.id).await, after_v2);

        // Older changes arriving late, or the same version again, are stale.
        for late in [
            &v1,
            &v2,
            &change(&b, BookingStatus::Rejected, 2, Some("other"), at(30)),
        ] {
            assert_eq!(
                store.apply_status(late).await.unwrap(),
                StatusApplied::Stale
            );
            assert_eq!(stored(store, &b.id).await, after_v2);
        }

        // Reordered from the start: v2 first, then v1.
        let r = booking(unique("r"), &b.traveler_id, at(1));
        let r_created = create(store, &r).await;
        assert_eq!(
            store
                .apply_status(&change(&r, BookingStatus::Cancelled, 2, None, at(40)))
                .await
                .unwrap(),
            StatusApplied::Applied,
            "a version can be skipped"
        );
        assert_eq!(
            store
                .apply_status(&change(&r, BookingStatus::Accepted, 1, None, at(35)))
                .await
                .unwrap(),
            StatusApplied::Stale
        );
        let now = stored(store, &r.id).await;
        assert_eq!(
            (now.status, now.version, now.updated_at),
            (BookingStatus::Cancelled, 2, at(40))
        );

        // Unknown bookings are reported, not created.
        let ghost = booking(unique("ghost"), &b.traveler_id, at(2));
        assert_eq!(
            store
                .apply_status(&change(&ghost, BookingStatus::Accepted, 1, None, at(50)))
                .await
                .unwrap(),
            StatusApplied::UnknownBooking
        );
        assert_eq!(store.booking(&ghost.id).await.unwrap(), None);

        // Mirroring a decision publishes nothing.
        assert_eq!(
            sorted(pending(outbox).await),
            sorted(vec![created, r_created])
        );
    }

    pub async fn concurrent_status_changes_converge_on_the_newest(s: Subject) {
        const VERSIONS: u32 = 8;
        for round in 0..3u32 {
            let b = booking(unique("b"), unique("tom"), at(0));
            create(&*s.store, &b).await;
            let barrier = Arc::new(Barrier::new(VERSIONS as usize));
            // Delivered all at once, in a different order each round.
            let mut versions: Vec<u32> = (1..=VERSIONS).collect();
            versions.rotate_left(round as usize * 3);
            let tasks: Vec<_> = versions
                .into_iter()
                .map(|v| {
                    let status = if v == VERSIONS {
                        BookingStatus::Cancelled
                    } else {
                        BookingStatus::Accepted
                    };
                    let c = change(
                        &b,
                        status,
                        v,
                        Some(&format!("v{v}")),
                        at(100 + i64::from(v)),
                    );
                    let (store, barrier) = (s.store.clone(), barrier.clone());
                    tokio::spawn(async move {
                        barrier.wait().await;
                        (v, store.apply_status(&c).await.expect("apply"))
                    })
                })
                .collect();
            for t in tasks {
                let (v, outcome) = t.await.expect("task");
                assert_ne!(outcome, StatusApplied::UnknownBooking);
                if v == VERSIONS {
                    assert_eq!(
                        outcome,
                        StatusApplied::Applied,
                        "round {round}: the newest always applies"
                    );
                }
            }
            let now = stored(&*s.store, &b.id).await;
            assert_eq!(
                (
                    now.status,
                    now.version,
                    now.status_reason.as_deref(),
                    now.updated_at
                ),
                (
                    BookingStatus::Cancelled,
                    VERSIONS,
                    Some("v8"),
                    at(100 + i64::from(VERSIONS))
                ),
                "round {round}"
            );
        }
    }
}
