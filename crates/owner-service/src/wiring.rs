//! What sets owner-service apart when it is assembled; the assembly itself
//! (router, state, start-up, adapters) is `service_runtime::assembly`, one
//! for both services.

use std::sync::Arc;

use service_runtime::{
    assembly::{ServiceSpec, StoreAt},
    auth::Role,
    config::ServiceDefaults,
    messaging::Subscription,
    store::StoreError,
};
use utoipa_axum::router::OpenApiRouter;

use crate::{consumer::BookingRequestsHandler, routes, store, AppState, OwnerService, DEFAULTS};

impl ServiceSpec for OwnerService {
    const DEFAULTS: ServiceDefaults = DEFAULTS;
    const ROLE: Role = Role::Owner;
    const DESCRIPTION: &'static str = "The owner-facing API of the booking platform: sign up and log in, list and edit properties (published to the traveler catalog), approve, reject or cancel the booking requests for them, and read notifications (also live, as server-sent events).\n\nEvery error is a problem document (`application/problem+json`, RFC 9457) with a stable `code`. Authenticate with the `token` that sign-up and login return, as `Authorization: Bearer <token>`; the web app uses the `owner_session` cookie instead.";

    /// `booking-requests`, checked against the property cache that the
    /// handlers drop changed properties from.
    fn subscriptions(state: &AppState) -> Vec<Subscription> {
        let topic = state.topics.booking_requests.clone();
        let handler = BookingRequestsHandler {
            store: state.store.clone(),
            properties: state.property_cache.clone(),
            notifications: state.notifications.store.clone(),
            updates_topic: state.topics.booking_updates.clone(),
            metrics: state.metrics.clone(),
        };
        vec![Subscription::new(topic, Arc::new(handler))]
    }

    async fn open(at: StoreAt<'_>) -> Result<Self, StoreError> {
        let store: Arc<dyn store::OwnerStore> = match at {
            StoreAt::Mongo(db, signal) => Arc::new(store::MongoOwnerStore::new(db, signal).await?),
            StoreAt::Memory(outbox) => Arc::new(store::InMemoryOwnerStore::new(outbox)),
        };
        let property_cache = Arc::default();
        Ok(Self {
            store,
            property_cache,
        })
    }

    const OUTBOX_COLLECTIONS: &'static [&'static str] = &store::OUTBOX_COLLECTIONS;

    fn routes() -> OpenApiRouter<AppState> {
        routes::properties::routes().merge(routes::bookings::routes())
    }
}
