//! [`AuthUser`], the authenticated caller: the extractor that checks a
//! request's access token (bearer or session cookie) against this
//! service's [`IdentityState`].

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts, HeaderValue},
};

use super::IdentityState;
use crate::{auth::Role, http::ApiError, session};

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
    pub id: events::UserId,
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
            id: claims.sub.into(),
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
