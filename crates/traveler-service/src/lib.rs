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
//! - `wiring.rs` — what the shared assembly (`service_runtime::assembly`)
//!   needs to know of this service: name, role, store, routes, subscriptions.

pub mod consumer;
pub mod domain;
pub mod listing_cache;
pub mod routes;
pub mod store;
pub mod wiring;

use std::sync::Arc;

use service_runtime::config::ServiceDefaults;

use crate::store::TravelerStore;

/// What every handler can reach: identity, notifications, topics, metrics,
/// and (through `Deref`) the store and the listing cache.
pub type AppState = service_runtime::assembly::AppState<TravelerService>;

/// traveler-service's own part of the state its handlers reach (the rest,
/// shared with owner-service, is in [`AppState`]); `wiring.rs` tells the
/// assembly how to build it.
pub struct TravelerService {
    /// The traveler's bookings and the catalog.
    pub store: Arc<dyn TravelerStore>,
    /// Catalog entries for booking creation, up to a second old.
    pub listings: Arc<listing_cache::ListingCache>,
}

/// Service name, port and database when the environment does not say otherwise.
pub const DEFAULTS: ServiceDefaults = ServiceDefaults {
    name: "traveler-service",
    port: 5005,
    database: "traveler",
};

/// The CloudEvents `source` of every event this service publishes.
pub const SOURCE: &str = DEFAULTS.name;
