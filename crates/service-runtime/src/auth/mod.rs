//! Access tokens and passwords.
//!
//! Tokens are HS256 JWTs carrying the user id and role. Each service accepts
//! only its own role, so a traveler's token is refused (403) on owner-service
//! and the reverse, even when both share a secret. Passwords are stored only
//! as argon2id hashes, computed off the async runtime.
//!
//! The tokens themselves ([`Role`], [`Claims`], [`JwtKeys`]) are in
//! `token`, which sessions and identity import; this module adds password
//! hashing. The extractor of the authenticated caller, [`AuthUser`], reads
//! the identity state, so it is identity's (`identity/caller.rs`),
//! re-exported here under its old path.

mod token;

pub use token::{Claims, JwtKeys, Role, TOKEN_TTL_SECS};

/// The authenticated caller (see `identity/caller.rs`).
pub use crate::identity::AuthUser;

use std::sync::OnceLock;

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Algorithm as Argon2Algorithm, Argon2, Params, Version,
};

use crate::http::ApiError;

/// Argon2id cost: 7 MiB, 5 passes, 1 lane — one of OWASP's equivalent
/// recommended settings. It needs a third of the memory of the crate default
/// (19 MiB, 2 passes) for comparable strength, which matters because every
/// concurrent hash holds that memory.
fn argon2() -> Argon2<'static> {
    let params = Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters");
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes run one per core at most: they are CPU-bound, and each holds
/// 7 MiB while it runs, so unbounded concurrency (a burst of sign-ups) would
/// only add memory, not throughput.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    })
}

/// Runs argon2 work on the blocking pool, within the hashing slots.
async fn hashing<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _slot = hashing_slots()
        .acquire()
        .await
        .map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(ApiError::internal)
}

/// Hashes a password with argon2id and a random 16-byte salt (deliberately
/// slow; off the async runtime).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    hashing(move || {
        argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(ApiError::internal)
}

/// Checks a password against a stored hash (whose own parameters are used,
/// so hashes made with older settings keep working). With no hash (unknown
/// email) it still does the same work against a dummy hash, so response time
/// does not reveal which emails are registered.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let known = stored.is_some();
    let hash = match stored {
        Some(h) => h,
        None => DUMMY
            .get_or_init(|| {
                argon2()
                    .hash_password(b"not-a-real-password")
                    .expect("hashing a constant works")
                    .to_string()
            })
            .clone(),
    };
    let matches = hashing(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                argon2()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_against_their_hash() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("correct horse".into(), None).await);
    }

    #[tokio::test]
    async fn hashes_stored_by_argon2_0_5_still_verify() {
        // Made by the argon2 0.5 code this service used before 0.6, with the
        // same parameters: accounts created then must still log in.
        let stored = "$argon2id$v=19$m=7168,t=5,p=1$CtKuUDSisCOcdHkzWQJGiA$FDm/2OZTf2fdIM9ZYigLSBvAmC2ehaGrE2gIw3QKJx8";
        assert!(verify_password("correct horse".into(), Some(stored.into())).await);
        assert!(!verify_password("wrong horse".into(), Some(stored.into())).await);
    }
}
