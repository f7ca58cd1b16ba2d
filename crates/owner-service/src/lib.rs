//! owner-service: owners sign up, list properties, receive booking requests
//! from `booking-requests`, and approve / reject / cancel them; each decision
//! is saved with its `booking-updates` event in one atomic write (outbox).
//!
//! Where things are:
//! - `routes/properties.rs`, `routes/bookings.rs` — the HTTP endpoints
//!   (approve a booking: `routes/bookings.rs`, `approve`).
//! - `decisions.rs` — the one path every status change takes.
//! - `domain/` — properties, bookings, the overlap rule.
//! - `store/` — the storage port and its MongoDB and in-memory adapters.
//! - `consumer.rs` — applying `booking-requests`.
//! - `property_cache.rs` — the properties the consumer checks requests against.
//! - `wiring.rs` — assembling the service for production or in memory.

pub mod consumer;
pub mod decisions;
pub mod domain;
pub mod property_cache;
pub mod routes;
pub mod store;
pub mod wiring;

use std::sync::Arc;

use axum::extract::FromRef;
use service_runtime::{
    config::ServiceDefaults, identity::IdentityState, metrics::Metrics,
    notifications::Notifications,
};

use crate::{property_cache::PropertyCache, store::OwnerStore};

/// Service name, port and database when the environment does not say otherwise.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "owner-service",
    port: 5002,
    database: "owner",
};

/// The CloudEvents `source` of every event this service publishes.
pub const SOURCE: &str = "owner-service";

/// Topics this service publishes to.
#[derive(Debug, Clone)]
pub struct Topics {
    pub booking_updates: String,
    pub property_listings: String,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub identity: IdentityState,
    pub notifications: Notifications,
    pub store: Arc<dyn OwnerStore>,
    /// Dropped entries on every property change this process makes.
    pub property_cache: Arc<PropertyCache>,
    pub topics: Topics,
    /// Where decisions are counted (`booking_transitions_total`).
    pub metrics: Arc<Metrics>,
}

impl FromRef<AppState> for IdentityState {
    fn from_ref(s: &AppState) -> Self {
        s.identity.clone()
    }
}

impl FromRef<AppState> for Notifications {
    fn from_ref(s: &AppState) -> Self {
        s.notifications.clone()
    }
}
