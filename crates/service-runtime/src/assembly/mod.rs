//! Assembling a service from what is particular to it ([`ServiceSpec`]):
//! the router, the state every handler reaches ([`AppState`]), the
//! subscriptions and the background work, over the production adapters
//! (MongoDB + Kafka) or the in-memory ones. Written once for both services,
//! so they cannot drift apart in how they start.
//!
//! Imports go one way: this module uses [`crate::runner`] (what a
//! [`Service`] is and how it runs); the runner knows nothing of it.

mod settings;
mod spec;
mod state;

use std::sync::Arc;

use axum::Router;
use utoipa_axum::router::OpenApiRouter;

pub use settings::ServiceSettings;
pub use spec::{ServiceSpec, StoreAt};
pub use state::AppState;

use crate::{
    auth::Role,
    config::{ExposeSecret, ServiceConfig},
    http::{service_router, MetricsEndpoint, Readiness},
    identity::{self, IdentityState},
    messaging::memory::InMemoryBus,
    notifications::{self, Notifications},
    openapi::{service_document, ApiSpec},
    outbox::InMemoryOutbox,
    runner::{retry_store, run_binary, Service, Wiring},
    web,
};

/// What tells `S`'s API and document from the other service's: its name,
/// its description, and its role's prefix.
pub fn api<S: ServiceSpec>() -> ApiSpec {
    ApiSpec {
        title: S::DEFAULTS.name,
        description: S::DESCRIPTION,
        role: S::ROLE,
        prefix: match S::ROLE {
            Role::Traveler => "/api/travelers",
            Role::Owner => "/api/owners",
        },
    }
}

/// Every API endpoint of `S`, mounted under its prefix: identity,
/// notifications and the service's own, each described by its annotations.
pub fn api_routes<S: ServiceSpec>() -> OpenApiRouter<AppState<S>> {
    OpenApiRouter::new()
        .merge(identity::routes())
        .merge(notifications::routes())
        .merge(S::routes())
}

/// The OpenAPI document of `S`, as `GET /openapi.json` serves it
/// (committed as `docs/openapi/<name>.json`).
pub fn openapi_document<S: ServiceSpec>() -> serde_json::Value {
    service_document(&api::<S>(), api_routes::<S>().into_openapi())
}

/// The web app a service of `role` serves at `/`.
fn app(role: Role) -> web::App {
    match role {
        Role::Traveler => web::App::Traveler,
        Role::Owner => web::App::Owner,
    }
}

/// The whole HTTP surface: the API under its prefix, health, metrics and
/// the API description at the root, and the role's web app at `/`.
pub fn router<S: ServiceSpec>(
    state: AppState<S>,
    readiness: Readiness,
    metrics: MetricsEndpoint,
) -> Router {
    service_router(
        &api::<S>(),
        api_routes::<S>().with_state(state),
        readiness,
        metrics,
        web::routes(app(S::ROLE)),
    )
}

/// `S` over its own part `service` and the shared parts of `wiring`.
fn assemble<S: ServiceSpec>(settings: ServiceSettings, wiring: Wiring, service: S) -> Service {
    let Wiring {
        common,
        outbox,
        messaging,
        readiness,
        metrics,
    } = wiring;
    let notifications = Notifications::new(common.notifications, settings.streams);
    let state = AppState {
        identity: IdentityState::new(
            common.users,
            common.attempts,
            settings.jwt_secret.expose_secret(),
            S::ROLE,
            &settings.identity,
        ),
        notifications: notifications.clone(),
        topics: settings.topics,
        metrics: metrics.clone(),
        service: Arc::new(service),
    };
    let subscriptions = S::subscriptions(&state);
    Service {
        name: S::DEFAULTS.name,
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
        subscriptions,
        messaging,
        shutdown_timeout: settings.shutdown_timeout,
    }
}

/// `S` on MongoDB and Kafka, configured by `config`.
pub async fn production<S: ServiceSpec>(config: &ServiceConfig) -> Result<Service, String> {
    let (db, wiring) = Wiring::production(config, S::OUTBOX_COLLECTIONS).await?;
    let signal = wiring.common.signal.clone();
    let open = || S::open(StoreAt::Mongo(&db, signal.clone()));
    let service = retry_store("prepare bookings", open).await?;
    Ok(assemble(
        ServiceSettings::from_config(config),
        wiring,
        service,
    ))
}

/// `S` entirely in memory, on a shared in-process bus.
pub async fn in_memory<S: ServiceSpec>(
    settings: ServiceSettings,
    bus: Arc<InMemoryBus>,
) -> Service {
    with_in_memory_stores::<S>(settings, Wiring::in_memory(bus)).await
}

/// `S` on in-memory stores and the messaging of `wiring`
/// ([`Wiring::in_memory`] or [`Wiring::in_memory_on_kafka`]). Async only
/// because [`ServiceSpec::open`] is one function for both adapters: an
/// in-memory store touches nothing that can fail, so an error is a bug.
pub async fn with_in_memory_stores<S: ServiceSpec>(
    settings: ServiceSettings,
    (outbox, wiring): (Arc<InMemoryOutbox>, Wiring),
) -> Service {
    let service = S::open(StoreAt::Memory(outbox)).await;
    assemble(settings, wiring, service.expect("an in-memory store opens"))
}

/// The whole `main` of `S`'s binary: [`run_binary`] over [`production`].
pub async fn main<S: ServiceSpec>() {
    run_binary(S::DEFAULTS, |config| async move {
        production::<S>(&config).await
    })
    .await
}
