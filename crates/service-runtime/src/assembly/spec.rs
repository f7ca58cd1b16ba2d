//! What is particular to one service, as the assembly asks for it.

use std::{future::Future, sync::Arc};

use utoipa_axum::router::OpenApiRouter;

use super::state::AppState;
use crate::{
    auth::Role, config::ServiceDefaults, messaging::Subscription, outbox::InMemoryOutbox,
    outbox::OutboxSignal, store::StoreError,
};

/// Where a service's own store keeps its data.
pub enum StoreAt<'a> {
    /// In the service's MongoDB database; its writes wake the relay with the signal.
    Mongo(&'a mongodb::Database, OutboxSignal),
    /// In memory; its writes push their events to this outbox.
    Memory(Arc<InMemoryOutbox>),
}

/// A service, told by what sets it apart: its name and role, its store, its
/// routes and its subscriptions. The type that implements it is the
/// service's own part of the [`AppState`] (its store and caches), so one
/// generic assembly ([`super::production`], [`super::in_memory`]) builds
/// either service, and the shared startup is written once.
pub trait ServiceSpec: Sized + Send + Sync + 'static {
    /// Name (consumer group, CloudEvents `source`, logs), port and database.
    const DEFAULTS: ServiceDefaults;
    /// Whose tokens and session cookie it accepts; this also decides where
    /// its API is mounted and which web app it serves (see [`super::api`]).
    const ROLE: Role;
    /// What the API is for, as its OpenAPI document says (Markdown).
    const DESCRIPTION: &'static str;

    /// The topics the service consumes, each with its handler.
    fn subscriptions(state: &AppState<Self>) -> Vec<Subscription>;

    /// The service's part over its own store, opened `at` MongoDB
    /// (creating its indexes; the start-up retries this while the server
    /// comes up) or in memory (which must not fail). One function for both,
    /// so each service names its two adapters side by side.
    fn open(at: StoreAt<'_>) -> impl Future<Output = Result<Self, StoreError>> + Send;

    /// The collections whose documents embed outbox events, for the relay.
    const OUTBOX_COLLECTIONS: &'static [&'static str];

    /// The service's own endpoints (the identity and notification ones are
    /// added by the assembly), described by their annotations.
    fn routes() -> OpenApiRouter<AppState<Self>>;
}
