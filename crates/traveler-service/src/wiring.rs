//! Assembling traveler-service: the same router and handlers over either the
//! production adapters (MongoDB + Kafka) or the in-memory ones.

use std::sync::Arc;

use axum::Router;
use service_runtime::{
    auth::{JwtKeys, Role},
    config::ServiceConfig,
    http::{finish_router, health_routes, Readiness},
    identity::{self, IdentityState},
    messaging::{memory::InMemoryBus, Subscription},
    mongo::MongoOutbox,
    notifications::{self, Notifications},
    outbox::{InMemoryOutbox, OutboxStore},
    runner::{retry_store, CommonStores, Infrastructure, Messaging, Service},
};

use crate::{
    consumer::{BookingUpdatesHandler, PropertyListingsHandler},
    routes,
    store::{InMemoryTravelerStore, MongoTravelerStore, TravelerStore, OUTBOX_COLLECTIONS},
    AppState, Topics, DEFAULTS,
};

/// The HTTP API: identity, notifications, catalog and bookings under
/// `/api/travelers`, health at the root.
pub fn router(state: AppState, readiness: Readiness) -> Router {
    let api = Router::new()
        .merge(identity::routes())
        .merge(notifications::routes())
        .merge(routes::catalog::routes())
        .merge(routes::bookings::routes())
        .with_state(state);
    finish_router(Router::new().nest("/api/travelers", api).merge(health_routes(readiness)))
}

/// Topic names and other settings that do not depend on the adapters.
#[derive(Debug, Clone)]
pub struct Settings {
    pub jwt_secret: String,
    pub topics: Topics,
    pub updates_topic: String,
    pub listings_topic: String,
    pub shutdown_timeout: std::time::Duration,
}

impl Settings {
    pub fn from_config(c: &ServiceConfig) -> Self {
        Self {
            jwt_secret: c.jwt_secret.clone(),
            topics: Topics {
                booking_requests: c.kafka.request_topic.clone(),
            },
            updates_topic: c.kafka.response_topic.clone(),
            listings_topic: c.kafka.property_topic.clone(),
            shutdown_timeout: c.shutdown_timeout,
        }
    }
}

fn assemble(
    settings: Settings,
    common: CommonStores,
    store: Arc<dyn TravelerStore>,
    outbox: Arc<dyn OutboxStore>,
    messaging: Messaging,
    readiness: Readiness,
) -> Service {
    let updates = Arc::new(BookingUpdatesHandler {
        store: store.clone(),
        notifications: common.notifications.clone(),
    });
    let listings = Arc::new(PropertyListingsHandler { store: store.clone() });
    let state = AppState {
        identity: IdentityState {
            users: common.users,
            jwt: Arc::new(JwtKeys::new(settings.jwt_secret.as_bytes())),
            role: Role::Traveler,
        },
        notifications: Notifications(common.notifications),
        store,
        topics: settings.topics.clone(),
    };
    Service {
        name: DEFAULTS.name,
        router: router(state, readiness),
        outbox,
        signal: common.signal,
        subscriptions: vec![
            Subscription::new(settings.updates_topic.clone(), updates),
            Subscription::new(settings.listings_topic.clone(), listings),
        ],
        messaging,
        shutdown_timeout: settings.shutdown_timeout,
    }
}

/// traveler-service on MongoDB and Kafka.
pub async fn production(config: &ServiceConfig) -> Result<Service, String> {
    let infra = Infrastructure::connect(config).await?;
    let db = infra.db.clone();
    let common = CommonStores::mongo(&db).await?;
    let signal = common.signal.clone();
    let store = retry_store("prepare bookings", || MongoTravelerStore::new(&db, signal.clone())).await?;
    let outbox = retry_store("prepare outbox", || MongoOutbox::new(&db, &OUTBOX_COLLECTIONS, DEFAULTS.name)).await?;
    Ok(assemble(
        Settings::from_config(config),
        common,
        Arc::new(store),
        Arc::new(outbox),
        infra.messaging,
        infra.readiness,
    ))
}

/// traveler-service entirely in memory, on a shared in-process bus.
pub fn in_memory(settings: Settings, bus: Arc<InMemoryBus>) -> Service {
    let common = CommonStores::in_memory();
    let outbox = Arc::new(InMemoryOutbox::new(common.signal.clone()));
    let store = Arc::new(InMemoryTravelerStore::new(outbox.clone()));
    assemble(settings, common, store, outbox, Messaging::InMemory(bus), Readiness::default())
}
