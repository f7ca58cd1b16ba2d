//! Access tokens: the [`Role`] a token carries, its [`Claims`], and the
//! [`JwtKeys`] that sign and verify them. What identity, sessions and the
//! [`AuthUser`](super::AuthUser) extractor share, so it imports nothing of
//! them.

use chrono::Utc;
use jsonwebtoken::{
    crypto::CryptoProvider, decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation,
};
use serde::{Deserialize, Serialize};

use crate::http::ApiError;

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
}
