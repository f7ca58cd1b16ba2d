//! Sign-up, login and `me`, the same on both services.
//!
//! Each service keeps its own users (travelers in the traveler database,
//! owners in the owner database); the routes and rules are shared so the two
//! cannot drift apart. Mount [`routes`] under `/api/travelers` or `/api/owners`.

mod caller;
mod memory;
mod mongo;
mod routes;
pub mod throttle;

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use async_trait::async_trait;
use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::request::Parts,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    auth::{JwtKeys, Role},
    config::env::{ConfigError, EnvVar},
    http::{client_address::TrustedProxies, ApiError},
    store::StoreError,
};

pub use caller::AuthUser;
pub use memory::InMemoryUserStore;
pub use mongo::MongoUserStore;
pub use routes::routes;
pub use throttle::{
    AttemptCounter, InMemoryAttemptCounter, MongoAttemptCounter, Throttle, ThrottleLimits,
};

/// A stored account. The password exists only as an argon2 hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: events::UserId,
    pub name: String,
    /// Lower-cased, so uniqueness ignores case.
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

/// The public view of a user: never the password hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct UserView {
    #[schema(value_type = String)]
    pub id: events::UserId,
    pub name: String,
    pub email: String,
    pub role: Role,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            email: u.email.clone(),
            role: u.role,
            created_at: u.created_at,
        }
    }
}

/// Where accounts live. Adapters: [`MongoUserStore`], [`InMemoryUserStore`].
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Duplicate`] when the email is taken.
    async fn insert(&self, user: &UserRecord) -> Result<(), StoreError>;
    async fn find_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn find_by_id(&self, id: &events::UserId) -> Result<Option<UserRecord>, StoreError>;
}

/// What the identity routes and the [`AuthUser`] extractor need:
/// the users, the token keys, which role this service serves, the limits on
/// attempts, and whose `X-Forwarded-For` to believe.
#[derive(Clone)]
pub struct IdentityState {
    pub users: Arc<dyn UserStore>,
    pub jwt: Arc<JwtKeys>,
    pub role: Role,
    pub throttle: Arc<Throttle>,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// `COOKIE_SECURE`: whether the session cookie is marked `Secure`.
    pub cookie_secure: bool,
}

impl IdentityState {
    /// The identity of a service of `role`: its users and attempt counter,
    /// tokens signed with `jwt_secret`, limits as `config` says.
    pub fn new(
        users: Arc<dyn UserStore>,
        attempts: Arc<dyn AttemptCounter>,
        jwt_secret: &str,
        role: Role,
        config: &IdentityConfig,
    ) -> Self {
        Self {
            users,
            jwt: Arc::new(JwtKeys::new(jwt_secret.as_bytes())),
            role,
            throttle: Arc::new(Throttle::new(attempts, config.limits)),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            cookie_secure: config.cookie_secure,
        }
    }
}

/// How the identity endpoints limit attempts, as configured: the same for
/// both services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityConfig {
    pub limits: ThrottleLimits,
    /// `TRUSTED_PROXIES`.
    pub trusted_proxies: TrustedProxies,
    /// `COOKIE_SECURE`: mark the browser session cookie `Secure`, so it only
    /// travels over HTTPS. Off by default so `cargo run` works over plain
    /// http; the production manifests turn it on.
    pub cookie_secure: bool,
}

impl IdentityConfig {
    /// The variables [`IdentityConfig::from_lookup`] reads, with their
    /// defaults, in documentation order (part of
    /// [`env_spec`](crate::config::env_spec)).
    pub fn env_spec() -> Vec<EnvVar> {
        vec![
            EnvVar {
                name: "TRUSTED_PROXIES",
                default: Some(String::new()),
                description: "comma-separated CIDR ranges of proxies whose X-Forwarded-For names the client; empty: the socket peer is the client",
            },
            EnvVar {
                name: "SIGNUP_LIMIT_PER_ADDRESS",
                default: Some(throttle::DEFAULT_SIGNUPS_PER_ADDRESS.to_string()),
                description: "sign-ups per client address in 15 minutes",
            },
            EnvVar {
                name: "COOKIE_SECURE",
                default: Some("false".into()),
                description: "mark the web apps' session cookie Secure (sent over HTTPS only); true in production",
            },
        ]
    }

    /// Reads `TRUSTED_PROXIES`, `SIGNUP_LIMIT_PER_ADDRESS` and
    /// `COOKIE_SECURE` through `lookup` (unset or empty: no trusted proxy,
    /// the default limit, no `Secure` attribute).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let trusted_proxies = match value("TRUSTED_PROXIES") {
            None => TrustedProxies::default(),
            Some(raw) => raw.parse().map_err(|reason| ConfigError::Invalid {
                name: "TRUSTED_PROXIES",
                value: raw.clone(),
                reason: format!("{reason}; expected comma-separated addresses or CIDR ranges"),
            })?,
        };
        let mut limits = ThrottleLimits::default();
        if let Some(raw) = value("SIGNUP_LIMIT_PER_ADDRESS") {
            limits.signups_per_address = raw
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "SIGNUP_LIMIT_PER_ADDRESS",
                    value: raw.clone(),
                    reason: "expected a whole number from 1 to 1000000".into(),
                })?;
        }
        let cookie_secure = match value("COOKIE_SECURE") {
            None => false,
            Some(raw) => match raw.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "COOKIE_SECURE",
                        value: raw.clone(),
                        reason: "expected true or false".into(),
                    })
                }
            },
        };
        Ok(Self {
            limits,
            trusted_proxies,
            cookie_secure,
        })
    }
}

/// The address a request comes from: the socket peer, or what a trusted
/// proxy forwarded for (see [`crate::http::client_address`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl<S> FromRequestParts<S> for ClientAddress
where
    IdentityState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
            return Err(ApiError::internal(
                "no peer address: the router must be served by http::serve",
            ));
        };
        let forwarded_for = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|v| v.to_str().unwrap_or("?"));
        let identity = IdentityState::from_ref(state);
        Ok(ClientAddress(
            identity
                .trusted_proxies
                .client_address(peer.ip(), forwarded_for),
        ))
    }
}
