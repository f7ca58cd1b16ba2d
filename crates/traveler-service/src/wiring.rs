//! What sets traveler-service apart when it is assembled; the assembly
//! itself (router, state, start-up, adapters) is `service_runtime::assembly`,
//! one for both services.

use std::sync::Arc;

use service_runtime::{
    assembly::{ServiceSpec, StoreAt},
    auth::Role,
    config::ServiceDefaults,
    messaging::Subscription,
    store::StoreError,
};
use utoipa_axum::router::OpenApiRouter;

use crate::{
    consumer::{BookingUpdatesHandler, PropertyListingsHandler},
    routes, store, AppState, TravelerService, DEFAULTS,
};

impl ServiceSpec for TravelerService {
    const DEFAULTS: ServiceDefaults = DEFAULTS;
    const ROLE: Role = Role::Traveler;
    const DESCRIPTION: &'static str = "The traveler-facing API of the booking platform: sign up and log in, browse the catalog of active properties and price a stay, request bookings and ask to cancel them, and read notifications (also live, as server-sent events).\n\nEvery error is a problem document (`application/problem+json`, RFC 9457) with a stable `code`. Authenticate with the `token` that sign-up and login return, as `Authorization: Bearer <token>`; the web app uses the `traveler_session` cookie instead.";

    /// `booking-updates` (status changes and their notifications) and
    /// `property-listings` (the catalog, and the cache booking creation reads).
    fn subscriptions(state: &AppState) -> Vec<Subscription> {
        let updates = BookingUpdatesHandler {
            store: state.store.clone(),
            notifications: state.notifications.store.clone(),
            metrics: state.metrics.clone(),
        };
        let listings = PropertyListingsHandler {
            store: state.store.clone(),
            cache: state.listings.clone(),
        };
        vec![
            Subscription::new(state.topics.booking_updates.clone(), Arc::new(updates)),
            Subscription::new(state.topics.property_listings.clone(), Arc::new(listings)),
        ]
    }

    async fn open(at: StoreAt<'_>) -> Result<Self, StoreError> {
        let store: Arc<dyn store::TravelerStore> = match at {
            StoreAt::Mongo(db, signal) => {
                Arc::new(store::MongoTravelerStore::new(db, signal).await?)
            }
            StoreAt::Memory(outbox) => Arc::new(store::InMemoryTravelerStore::new(outbox)),
        };
        let listings = Arc::default();
        Ok(Self { store, listings })
    }

    const OUTBOX_COLLECTIONS: &'static [&'static str] = &store::OUTBOX_COLLECTIONS;

    fn routes() -> OpenApiRouter<AppState> {
        routes::catalog::routes().merge(routes::bookings::routes())
    }
}
