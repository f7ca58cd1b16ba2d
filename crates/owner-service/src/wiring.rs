//! Assembling owner-service: the same router and handlers over either the
//! production adapters (MongoDB + Kafka) or the in-memory ones.

use std::sync::Arc;

use axum::Router;
use service_runtime::{
    auth::Role,
    config::{ExposeSecret, SecretString, ServiceConfig},
    http::{service_router, Readiness},
    identity::{self, IdentityConfig, IdentityState},
    messaging::{memory::InMemoryBus, Subscription},
    metrics::MetricsEndpoint,
    notifications::{self, hub::StreamConfig, Notifications},
    openapi::{service_document, ApiSpec},
    outbox::InMemoryOutbox,
    runner::{retry_store, Service, Wiring},
    web,
};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    consumer::BookingRequestsHandler,
    property_cache::PropertyCache,
    routes,
    store::{InMemoryOwnerStore, MongoOwnerStore, OwnerStore, OUTBOX_COLLECTIONS},
    AppState, Topics, DEFAULTS,
};

/// What tells this service's OpenAPI document from owner-service's.
pub const API: ApiSpec = ApiSpec {
    title: "owner-service",
    description: "The owner-facing API of the booking platform: sign up and log in, list and edit properties (published to the traveler catalog), approve, reject or cancel the booking requests for them, and read notifications (also live, as server-sent events).\n\nEvery error is a problem document (`application/problem+json`, RFC 9457) with a stable `code`. Authenticate with the `token` that sign-up and login return, as `Authorization: Bearer <token>`; the web app uses the `owner_session` cookie instead.",
    role: Role::Owner,
    prefix: "/api/owners",
};

/// Every API endpoint, mounted under [`API`]'s prefix: identity,
/// notifications, properties and bookings, each described by its annotations.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(identity::routes())
        .merge(notifications::routes())
        .merge(routes::properties::routes())
        .merge(routes::bookings::routes())
}

/// The service's OpenAPI document, as `GET /openapi.json` serves it
/// (committed as `docs/openapi/owner-service.json`).
pub fn openapi_document() -> serde_json::Value {
    service_document(&API, api_routes().into_openapi())
}

/// The HTTP API: identity, notifications, properties and bookings under
/// `/api/owners`, health, metrics and the API description at the root, and
/// the owner app at `/`.
pub fn router(state: AppState, readiness: Readiness, metrics: MetricsEndpoint) -> Router {
    service_router(
        &API,
        api_routes().with_state(state),
        readiness,
        metrics,
        web::routes(web::App::Owner),
    )
}

/// Topic names and other settings that do not depend on the adapters.
/// `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct Settings {
    pub jwt_secret: SecretString,
    pub request_topic: String,
    pub topics: Topics,
    pub shutdown_timeout: std::time::Duration,
    /// Limits on logins and sign-ups, and whose `X-Forwarded-For` to believe.
    pub identity: IdentityConfig,
    /// Limits on notification streams.
    pub streams: StreamConfig,
}

impl Settings {
    /// The default topic names, for the embedded mode and tests.
    pub fn with_default_topics(jwt_secret: &str, shutdown_timeout: std::time::Duration) -> Self {
        Self {
            jwt_secret: SecretString::from(jwt_secret),
            request_topic: events::topics::BOOKING_REQUESTS.into(),
            topics: Topics {
                booking_updates: events::topics::BOOKING_UPDATES.into(),
                property_listings: events::topics::PROPERTY_LISTINGS.into(),
            },
            shutdown_timeout,
            identity: IdentityConfig::default(),
            streams: StreamConfig::default(),
        }
    }

    pub fn from_config(c: &ServiceConfig) -> Self {
        Self {
            jwt_secret: c.jwt_secret.clone(),
            request_topic: c.kafka.request_topic.clone(),
            topics: Topics {
                booking_updates: c.kafka.response_topic.clone(),
                property_listings: c.kafka.property_topic.clone(),
            },
            shutdown_timeout: c.shutdown_timeout,
            identity: c.identity.clone(),
            streams: c.streams,
        }
    }
}

fn assemble(settings: Settings, wiring: Wiring, store: Arc<dyn OwnerStore>) -> Service {
    let Wiring {
        common,
        outbox,
        messaging,
        readiness,
        metrics,
    } = wiring;
    let notifications = Notifications::new(common.notifications.clone(), settings.streams);
    let property_cache = Arc::new(PropertyCache::default());
    let handler = Arc::new(BookingRequestsHandler {
        store: store.clone(),
        properties: property_cache.clone(),
        notifications: common.notifications.clone(),
        updates_topic: settings.topics.booking_updates.clone(),
        metrics: metrics.clone(),
    });
    let state = AppState {
        identity: IdentityState::new(
            common.users,
            common.attempts,
            settings.jwt_secret.expose_secret(),
            Role::Owner,
            &settings.identity,
        ),
        notifications: notifications.clone(),
        store,
        property_cache,
        topics: settings.topics.clone(),
        metrics: metrics.clone(),
    };
    Service {
        name: DEFAULTS.name,
        supervisor: readiness.supervisor(),
        router: router(
            state,
            readiness,
            MetricsEndpoint {
                metrics: metrics.clone(),
                outbox: outbox.clone(),
            },
        ),
        inbox_watcher: notifications.watcher(),
        outbox,
        metrics,
        signal: common.signal,
        subscriptions: vec![Subscription::new(settings.request_topic.clone(), handler)],
        messaging,
        shutdown_timeout: settings.shutdown_timeout,
    }
}

/// owner-service on MongoDB and Kafka.
pub async fn production(config: &ServiceConfig) -> Result<Service, String> {
    let (db, wiring) = Wiring::production(config, &OUTBOX_COLLECTIONS).await?;
    let signal = wiring.common.signal.clone();
    let store = retry_store("prepare bookings", || {
        MongoOwnerStore::new(&db, signal.clone())
    })
    .await?;
    Ok(assemble(
        Settings::from_config(config),
        wiring,
        Arc::new(store),
    ))
}

/// owner-service entirely in memory, on a shared in-process bus.
pub fn in_memory(settings: Settings, bus: Arc<InMemoryBus>) -> Service {
    with_in_memory_stores(settings, Wiring::in_memory(bus))
}

/// owner-service on in-memory stores and the messaging of `wiring`
/// ([`Wiring::in_memory`] or [`Wiring::in_memory_on_kafka`]).
pub fn with_in_memory_stores(
    settings: Settings,
    (outbox, wiring): (Arc<InMemoryOutbox>, Wiring),
) -> Service {
    assemble(settings, wiring, Arc::new(InMemoryOwnerStore::new(outbox)))
}
