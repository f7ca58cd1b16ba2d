//! Limits on password guessing and mass sign-up.
//!
//! Failed logins are counted per account and per client address; once
//! either count reaches [`ThrottleLimits::login_failures`] within a window
//! ([`ThrottleLimits::window`], from the first counted failure), login
//! answers 429 for that account or address — even with the right password —
//! until the window ends. A successful login clears its account's count.
//! Sign-ups are counted per client address the same way.
//!
//! The counts live in the database ([`MongoAttemptCounter`]), so every
//! replica enforces one limit, and each attempt is counted before the
//! password is checked, in one atomic update that also tells whether the
//! limit is reached: concurrent requests cannot all slip in under it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use async_trait::async_trait;
use bson::{doc, Document};
use mongodb::{
    options::{IndexOptions, ReturnDocument},
    Collection, Database, IndexModel,
};

use crate::{http::client_address::address_key, mongo, store::StoreError};

/// How many attempts are allowed, and over how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleLimits {
    /// Failed logins per account and per client address in a window.
    pub login_failures: u32,
    /// Sign-ups per client address in a window (`SIGNUP_LIMIT_PER_ADDRESS`).
    pub signups_per_address: u32,
    /// How long a window lasts from its first counted attempt.
    pub window: Duration,
}

impl Default for ThrottleLimits {
    /// The production limits: 10 failed logins per account and per address,
    /// and 10 sign-ups per address, in 15 minutes.
    fn default() -> Self {
        Self {
            login_failures: 10,
            signups_per_address: DEFAULT_SIGNUPS_PER_ADDRESS,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Sign-ups per client address in a window unless configured otherwise.
pub const DEFAULT_SIGNUPS_PER_ADDRESS: u32 = 10;

/// An attempt counted against a key, as the counter saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// Attempts in the current window, this one included, at most `limit + 1`.
    pub count: u32,
    /// How long the window still lasts.
    pub remaining: Duration,
}

/// Where attempts are counted. Adapters: [`MongoAttemptCounter`] (shared by
/// every replica), [`InMemoryAttemptCounter`].
#[async_trait]
pub trait AttemptCounter: Send + Sync {
    /// Counts one attempt against `key`, atomically: opens a window of
    /// `window` if none is open, and increments the count up to `limit + 1`
    /// (beyond, refused attempts would only grow it).
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Count, StoreError>;
    /// Takes back one attempt counted against `key` that did not count
    /// after all (it was not tried, or it succeeded where only failures count).
    async fn unhit(&self, key: &str) -> Result<(), StoreError>;
    /// Forgets `key`'s window.
    async fn reset(&self, key: &str) -> Result<(), StoreError>;
}

/// Why an attempt was not let through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThrottleError {
    /// A limit is reached; it lifts after `retry_after`.
    #[error("too many attempts; retry after {retry_after:?}")]
    Throttled { retry_after: Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The limits of one service's identity endpoints over its counter.
pub struct Throttle {
    counter: std::sync::Arc<dyn AttemptCounter>,
    limits: ThrottleLimits,
}

/// A login let through: say how it went.
#[must_use = "a login attempt must be reported as succeeded or failed"]
pub struct LoginAttempt<'a> {
    throttle: &'a Throttle,
    account: String,
    address: String,
}

impl Throttle {
    /// Limits of `limits` over the counts of `counter` (the service's own
    /// database, shared by its replicas).
    pub fn new(counter: std::sync::Arc<dyn AttemptCounter>, limits: ThrottleLimits) -> Self {
        Self { counter, limits }
    }

    /// Counts a login attempt for `email` from `client` as failed until
    /// told otherwise; refused when the account or the address has used up
    /// its failures. A refused attempt leaves both counts as they were.
    pub async fn login(
        &self,
        email: &str,
        client: IpAddr,
    ) -> Result<LoginAttempt<'_>, ThrottleError> {
        let (account, address) = (
            format!("login:account:{email}"),
            format!("login:address:{}", address_key(client)),
        );
        let limit = self.limits.login_failures;
        let (by_account, by_address) = futures::future::join(
            self.counter.hit(&account, limit, self.limits.window),
            self.counter.hit(&address, limit, self.limits.window),
        )
        .await;
        let counts = [(&account, by_account?), (&address, by_address?)];
        let retry_after = counts
            .iter()
            .filter(|(_, c)| c.count > limit)
            .map(|(_, c)| c.remaining)
            .max();
        if let Some(retry_after) = retry_after {
            // Not tried: it must not use up the other key's failures.
            for (key, c) in &counts {
                if c.count <= limit {
                    self.counter.unhit(key).await?;
                }
            }
            return Err(ThrottleError::Throttled { retry_after });
        }
        Ok(LoginAttempt {
            throttle: self,
            account,
            address,
        })
    }

    /// Counts a sign-up from `client`; refused once the address has used up
    /// its sign-ups for the window.
    pub async fn signup(&self, client: IpAddr) -> Result<(), ThrottleError> {
        let key = format!("signup:address:{}", address_key(client));
        let limit = self.limits.signups_per_address;
        let c = self.counter.hit(&key, limit, self.limits.window).await?;
        if c.count > limit {
            return Err(ThrottleError::Throttled {
                retry_after: c.remaining,
            });
        }
        Ok(())
    }
}

impl LoginAttempt<'_> {
    /// The password was right: the account's failures are forgotten, and
    /// this attempt is not a failure of the address.
    pub async fn succeeded(self) -> Result<(), StoreError> {
        let counter = &self.throttle.counter;
        let (reset, unhit) =
            futures::future::join(counter.reset(&self.account), counter.unhit(&self.address)).await;
        reset.and(unhit)
    }

    /// The credentials were wrong: the attempt stays counted.
    pub fn failed(self) {}
}

/// Attempts counted in process memory (embedded mode, fast tests).
#[derive(Default)]
pub struct InMemoryAttemptCounter {
    windows: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Windows kept in memory before the ended ones are dropped.
const MEMORY_PRUNE_AT: usize = 10_000;

#[async_trait]
impl AttemptCounter for InMemoryAttemptCounter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Count, StoreError> {
        let now = Instant::now();
        let mut windows = self.windows.lock().expect("attempts lock");
        if windows.len() >= MEMORY_PRUNE_AT {
            windows.retain(|_, (_, ends)| *ends > now);
        }
        let entry = windows.entry(key.to_string()).or_insert((0, now));
        if entry.1 <= now {
            *entry = (1, now + window);
        } else {
            entry.0 = (entry.0 + 1).min(limit + 1);
        }
        Ok(Count {
            count: entry.0,
            remaining: entry.1 - now,
        })
    }

    async fn unhit(&self, key: &str) -> Result<(), StoreError> {
        if let Some((count, _)) = self.windows.lock().expect("attempts lock").get_mut(key) {
            *count = count.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.windows.lock().expect("attempts lock").remove(key);
        Ok(())
    }
}

/// Attempts counted in the service's MongoDB database (`auth_attempts`, one
/// document per key and window), so all replicas share the counts.
///
/// The database server's clock times the windows (`$$NOW`), so replicas
/// with different clocks agree on when one ends; a TTL index removes each
/// document once its window has ended.
pub struct MongoAttemptCounter {
    attempts: Collection<Document>,
}

impl MongoAttemptCounter {
    /// Opens the collection and makes sure its TTL index exists.
    pub async fn new(db: &Database) -> Result<Self, StoreError> {
        let attempts = db.collection::<Document>("auth_attempts");
        mongo::ensure_indexes(
            &attempts,
            vec![IndexModel::builder()
                .keys(doc! {"expires_at": 1})
                .options(IndexOptions::builder().expire_after(Duration::ZERO).build())
                .build()],
        )
        .await?;
        Ok(Self { attempts })
    }
}

#[async_trait]
impl AttemptCounter for MongoAttemptCounter {
    async fn hit(&self, key: &str, limit: u32, window: Duration) -> Result<Count, StoreError> {
        // Dates are compared as milliseconds (`$toLong`): SecantusDB, the
        // test server, compares a stored date with `$$NOW` wrongly.
        let open = doc! {"$gt": [{"$toLong": "$expires_at"}, {"$toLong": "$$NOW"}]};
        let cap = i64::from(limit) + 1;
        let window_ms = window.as_millis() as i64;
        // No upsert: two first attempts at once upserting the same key race,
        // and SecantusDB (the test server) then applies both writes but
        // returns no document to one of them. Instead a key without a
        // document gets an already-expired one (a duplicate key means
        // another attempt made it), and the same counting update runs again:
        // an expired window counts as a new one.
        let mut placed = 0;
        let counted = loop {
            let result = self
                .attempts
                .find_one_and_update(
                    doc! {"_id": key},
                    vec![
                        doc! {"$set": {"open": open.clone()}},
                        doc! {"$set": {
                            "count": {"$cond": ["$open", {"$min": [{"$add": ["$count", 1]}, cap]}, 1]},
                            "expires_at": {"$cond": ["$open", "$expires_at", {"$add": ["$$NOW", window_ms]}]},
                            "counted_at": "$$NOW",
                        }},
                        doc! {"$unset": "open"},
                    ],
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(mongo::read_error)?;
            if let Some(d) = result {
                break d;
            }
            // Bounded: the TTL monitor may remove an expired placeholder
            // between the insert and the update, but not every time.
            placed += 1;
            if placed > 3 {
                return Err(StoreError::unavailable(
                    "the attempt window vanished while being counted",
                ));
            }
            let placeholder = doc! {
                "_id": key,
                "count": 0_i64,
                "expires_at": bson::DateTime::from_millis(0),
            };
            match self.attempts.insert_one(placeholder).await {
                Ok(_) => {}
                Err(e) if mongo::is_duplicate_key(&e) => {}
                Err(e) => return Err(mongo::read_error(e)),
            }
        };
        let read = |field: &str| {
            counted
                .get_datetime(field)
                .map(|d| d.timestamp_millis())
                .map_err(|e| {
                    StoreError::permanent_from(format!("attempt window without {field}"), e)
                })
        };
        let remaining_ms = (read("expires_at")? - read("counted_at")?).max(0);
        let count = match counted.get("count") {
            Some(bson::Bson::Int32(n)) => i64::from(*n),
            Some(bson::Bson::Int64(n)) => *n,
            Some(bson::Bson::Double(n)) => *n as i64,
            other => {
                return Err(StoreError::Permanent {
                    context: format!("attempt window with a count of {other:?}"),
                    source: None,
                })
            }
        };
        Ok(Count {
            count: count.clamp(0, cap) as u32,
            remaining: Duration::from_millis(remaining_ms as u64),
        })
    }

    async fn unhit(&self, key: &str) -> Result<(), StoreError> {
        self.attempts
            .update_one(
                doc! {"_id": key},
                vec![doc! {"$set": {"count": {"$max": [{"$subtract": ["$count", 1]}, 0]}}}],
            )
            .await
            .map(|_| ())
            .map_err(mongo::read_error)
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.attempts
            .delete_one(doc! {"_id": key})
            .await
            .map(|_| ())
            .map_err(mongo::read_error)
    }
}
