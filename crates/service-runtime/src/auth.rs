//! Access tokens and passwords.
//!
//! Tokens are HS256 JWTs carrying the user id and role. Each service accepts
//! only its own role, so a traveler's token is refused (403) on owner-service
//! and the reverse, even when both share a secret. Passwords are stored only
//! as argon2id hashes, computed off the async runtime.

use std::sync::OnceLock;

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Algorithm as Argon2Algorithm, Argon2, Params, Version,
};
use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts, HeaderValue},
};
use chrono::Utc;
use jsonwebtoken::{
    crypto::CryptoProvider, decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::{http::ApiError, identity::IdentityState, session};

/// Which kind of user a token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Traveler,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Traveler => "traveler",
            Role::Owner => "owner",
        }
    }
}

/// The claims inside an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iat: i64,
    pub exp: i64,
}

/// How long an access token stays valid.
pub const TOKEN_TTL_SECS: i64 = 24 * 3600;

/// Signs and verifies access tokens with one HMAC secret.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(<secret>)")
    }
}

impl JwtKeys {
    /// Keys for `secret` (the configuration refuses secrets under
    /// [`crate::config::MIN_JWT_SECRET_LEN`] bytes).
    ///
    /// # Panics
    ///
    /// If `secret` is empty, or if jsonwebtoken was built without exactly
    /// one crypto backend: it would otherwise start and panic at the first
    /// token, so a service fails here, while it is being assembled.
    pub fn new(secret: &[u8]) -> Self {
        assert!(
            CryptoProvider::try_get_default().is_some(),
            "jsonwebtoken has no crypto backend: enable exactly one of its \
             `rust_crypto` and `aws_lc_rs` features"
        );
        Self {
            encoding: EncodingKey::from_secret(secret).expect("a non-empty HMAC secret"),
            decoding: DecodingKey::from_secret(secret).expect("a non-empty HMAC secret"),
        }
    }

    pub fn issue(&self, user_id: &str, role: Role) -> String {
        self.issue_with_expiry(user_id, role, Utc::now().timestamp() + TOKEN_TTL_SECS)
    }

    /// Issues a token expiring at `exp` (seconds since the epoch); tests use
    /// it to build expired tokens.
    pub fn issue_with_expiry(&self, user_id: &str, role: Role, exp: i64) -> String {
        let claims = Claims {
            sub: user_id.to_string(),
            role,
            iat: Utc::now().timestamp(),
            exp,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing cannot fail")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        decode::<Claims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                    ApiError::unauthorized("token_expired", "the access token has expired")
                }
                _ => ApiError::unauthorized("invalid_token", "the access token is invalid"),
            })
    }
}

/// The authenticated caller, extracted from `Authorization: Bearer <token>`
/// or, for the web apps, from the session cookie (see [`crate::session`]).
///
/// 401 when the token is missing, malformed, forged or expired; 403 when it
/// is valid but for the other role, and 403 `origin_mismatch` when a
/// cookie-authenticated request that changes state does not come from this
/// host's own pages. A bearer token wins over a cookie, so API clients are
/// never subject to the `Origin` check.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: String,
    pub role: Role,
}

impl<S> FromRequestParts<S> for AuthUser
where
    IdentityState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let identity = IdentityState::from_ref(state);
        let claims = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => identity.jwt.verify(bearer_token(value)?)?,
            None => {
                let token = session::token(&parts.headers, identity.role).ok_or_else(|| {
                    ApiError::unauthorized(
                        "missing_token",
                        "an Authorization: Bearer token or a session cookie is required",
                    )
                })?;
                let claims = identity.jwt.verify(token)?;
                if session::changes_state(&parts.method) {
                    session::require_same_origin(&parts.headers)?;
                }
                claims
            }
        };
        if claims.role != identity.role {
            return Err(ApiError::forbidden(
                "wrong_role",
                format!("this endpoint is for {}s", identity.role.as_str()),
            ));
        }
        Ok(AuthUser {
            id: claims.sub,
            role: claims.role,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header.
fn bearer_token(value: &HeaderValue) -> Result<&str, ApiError> {
    let value = value
        .to_str()
        .map_err(|_| ApiError::unauthorized("invalid_token", "the access token is invalid"))?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "expected Authorization: Bearer <token>")
        })
}

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

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    /// Signs arbitrary claims with `secret`, the way a forger holding (or
    /// guessing) a key would.
    fn sign(alg: Algorithm, claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn a_crypto_backend_is_compiled_in() {
        // From jsonwebtoken 10 on, the backend is a feature; without one the
        // first encode panics at run time, not at compile time.
        assert!(CryptoProvider::try_get_default().is_some());
    }

    #[test]
    fn tokens_round_trip_and_reject_forgery_and_expiry() {
        let keys = JwtKeys::new(SECRET);
        let token = keys.issue("u1", Role::Owner);
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub.as_str(), claims.role), ("u1", Role::Owner));
        assert!(claims.exp > Utc::now().timestamp());

        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert_eq!(other.verify(&token).unwrap_err().code, "invalid_token");

        let expired = keys.issue_with_expiry("u1", Role::Owner, Utc::now().timestamp() - 10);
        assert_eq!(keys.verify(&expired).unwrap_err().code, "token_expired");
        assert_eq!(keys.verify("garbage").unwrap_err().code, "invalid_token");
    }

    #[test]
    fn tokens_with_a_missing_or_malformed_exp_or_another_algorithm_are_refused() {
        let keys = JwtKeys::new(SECRET);
        let later = Utc::now().timestamp() + 3600;
        let now = Utc::now().timestamp();
        let refused = |token: String| {
            let err = keys.verify(&token).unwrap_err();
            assert_eq!(err.code, "invalid_token", "{token}");
        };
        // The shape of CVE-2026-25537: an `exp` of the wrong type must not
        // count as "no exp", and no exp at all is refused.
        for exp in [
            serde_json::json!(later.to_string()),
            serde_json::json!(null),
            serde_json::json!([later]),
        ] {
            refused(sign(
                Algorithm::HS256,
                serde_json::json!({"sub": "u1", "role": "owner", "iat": now, "exp": exp}),
                SECRET,
            ));
        }
        refused(sign(
            Algorithm::HS256,
            serde_json::json!({"sub": "u1", "role": "owner", "iat": now}),
            SECRET,
        ));
        // Right key and claims, but not HS256.
        refused(sign(
            Algorithm::HS512,
            serde_json::json!({"sub": "u1", "role": "owner", "iat": now, "exp": later}),
            SECRET,
        ));
        // Unsigned (`alg: none`), with well-formed claims.
        // {"alg":"none","typ":"JWT"}.{"sub":"u1","role":"owner","iat":1,"exp":4102444800}.
        refused("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsInJvbGUiOiJvd25lciIsImlhdCI6MSwiZXhwIjo0MTAyNDQ0ODAwfQ.".into());
        // A role that is not one of ours.
        refused(sign(
            Algorithm::HS256,
            serde_json::json!({"sub": "u1", "role": "admin", "iat": now, "exp": later}),
            SECRET,
        ));
    }

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
