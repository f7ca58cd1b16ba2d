//! What every handler of a service can reach: the parts both services have
//! (accounts, notifications, topics, metrics), and the service's own part.

use std::{ops::Deref, sync::Arc};

use axum::extract::FromRef;
use events::topics::Topics;

use crate::{identity::IdentityState, metrics::Metrics, notifications::Notifications};

/// The state of a service's router. `S` is the service's own part (its store
/// and caches); `Deref` reaches it, so a handler writes `state.store` as if
/// it were a field here. The shared identity and notification endpoints
/// take what they need through the [`FromRef`] impls below, whatever `S` is.
pub struct AppState<S> {
    /// Accounts, tokens and the login limits (the identity endpoints).
    pub identity: IdentityState,
    /// The inbox and its live streams (the notification endpoints).
    pub notifications: Notifications,
    /// Where the service's events go (its outbox messages name a topic).
    pub topics: Topics,
    /// Where handlers count what they decide (`booking_transitions_total`).
    pub metrics: Arc<Metrics>,
    /// The service's own part, shared by every clone of the state.
    pub service: Arc<S>,
}

/// By hand: cloning shares `S`, so `S` itself need not be `Clone`.
impl<S> Clone for AppState<S> {
    fn clone(&self) -> Self {
        Self {
            identity: self.identity.clone(),
            notifications: self.notifications.clone(),
            topics: self.topics.clone(),
            metrics: self.metrics.clone(),
            service: self.service.clone(),
        }
    }
}

/// Handlers reach the service's own part as if its fields were the state's.
impl<S> Deref for AppState<S> {
    type Target = S;

    fn deref(&self) -> &S {
        &self.service
    }
}

/// For the identity endpoints and the `AuthUser` extractor.
impl<S> FromRef<AppState<S>> for IdentityState {
    fn from_ref(s: &AppState<S>) -> Self {
        s.identity.clone()
    }
}

/// For the notification endpoints.
impl<S> FromRef<AppState<S>> for Notifications {
    fn from_ref(s: &AppState<S>) -> Self {
        s.notifications.clone()
    }
}
