//! traveler-service: travelers sign up, browse the catalog (rebuilt from
//! `property-listings`), create bookings (saved with their
//! `booking-requests` event in one write), cancel their own, and read their
//! bookings and notifications, kept current from `booking-updates`.
//!
//! Where things are:
//! - `routes/catalog.rs`, `routes/bookings.rs` — the HTTP endpoints
//!   (create a booking: `routes/bookings.rs`, `create`).
//! - `domain/` — booking rules and pricing, the catalog.
//! - `store/` — the storage port and its MongoDB and in-memory adapters.
//! - `consumer.rs` — applying `booking-updates` and `property-listings`.
//! - `wiring.rs` — assembling the service for production or in memory.

pub mod consumer;
pub mod domain;
pub mod listing_cache;
pub mod routes;
pub mod store;
pub mod wiring;

use std::sync::Arc;

use axum::extract::FromRef;
use service_runtime::{
    config::ServiceDefaults, identity::IdentityState, notifications::Notifications,
};

use crate::store::TravelerStore;

/// Service name, port and database when the environment does not say otherwise.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "traveler-service",
    port: 5005,
    database: "traveler",
};

/// The CloudEvents `source` of every event this service publishes.
pub const SOURCE: &str = "traveler-service";

/// Topics this service publishes to.
#[derive(Debug, Clone)]
pub struct Topics {
    pub booking_requests: String,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub identity: IdentityState,
    pub notifications: Notifications,
    pub store: Arc<dyn TravelerStore>,
    /// Catalog entries for booking creation, up to a second old.
    pub listings: Arc<listing_cache::ListingCache>,
    pub topics: Topics,
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
