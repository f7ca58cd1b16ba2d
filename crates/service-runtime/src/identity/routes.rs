use axum::{
    extract::{FromRef, State},
    http::{header, HeaderMap, StatusCode},
    response::{AppendHeaders, IntoResponse},
    Json,
};
use events::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    throttle::ThrottleError, AuthUser, ClientAddress, IdentityState, UserRecord, UserView,
};
use crate::{
    auth::{hash_password, verify_password},
    http::{ApiError, ApiJson, Validator},
    session,
    store::StoreError,
};

/// `POST /signup`, `POST /login`, `POST /logout`, `GET /me`, for a router
/// whose state provides an [`IdentityState`].
pub fn routes<S>() -> OpenApiRouter<S>
where
    IdentityState: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    OpenApiRouter::new()
        .routes(routes!(signup))
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
}

/// Longest email accepted (RFC 5321's limit on a forward path).
const MAX_EMAIL_LEN: usize = 254;

/// Shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted: bounds the hashing work one request can cause.
pub const MAX_PASSWORD_LEN: usize = 256;

/// A new account.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"name": "Ada Lovelace", "email": "ada@example.org", "password": "correct horse battery"}))]
struct SignupBody {
    /// 1 to 100 characters (trimmed).
    name: String,
    /// An address with a dotted domain, at most 254 characters; stored in lower case.
    email: String,
    /// 8 to 256 characters.
    #[schema(min_length = 8, max_length = 256)]
    password: String,
}

/// The credentials of an account.
#[derive(Deserialize, ToSchema)]
#[schema(example = json!({"email": "ada@example.org", "password": "correct horse battery"}))]
struct LoginBody {
    email: String,
    password: String,
}

/// What sign-up and login answer: the bearer token for API clients (the
/// browser gets the same token in the session cookie) and the account.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIwMTkzIn0.c2lnbmF0dXJl", "user": {"id": "0193a5e0-7a1c-7cc2-9d7e-2f1d3c4b5a69", "name": "Ada Lovelace", "email": "ada@example.org", "role": "traveler", "created_at": "2026-11-25T02:04:41.123Z"}}))]
pub struct SessionBody {
    /// A JWT (HS256) to send as `Authorization: Bearer <token>`.
    pub token: String,
    pub user: UserView,
}

/// `{"user": …}`: the caller's account.
#[derive(Serialize, ToSchema)]
pub struct UserBody {
    pub user: UserView,
}

/// A deliberately simple email check: one `@`, something before it, a dotted
/// domain after it, no spaces. Deliverability is not knowable here anyway.
fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(char::is_whitespace)
        && email.len() <= MAX_EMAIL_LEN
}

/// 429 for a limit reached, 503 when the counts cannot be read.
impl From<ThrottleError> for ApiError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Throttled { retry_after } => ApiError::too_many_attempts(
                retry_after,
                "too many attempts from this client or for this account; retry later",
            ),
            ThrottleError::Store(e) => e.into(),
        }
    }
}

/// Creates an account and starts a session.
///
/// Validates, then counts the sign-up against the client's
/// address (429 once it has used up its sign-ups) before any hashing.
#[utoipa::path(
    post,
    path = "/signup",
    tag = "identity",
    request_body = SignupBody,
    responses(
        (status = 201, description = "the account was created; the body has its token, and `Set-Cookie` starts the browser session", body = SessionBody),
        (status = 409, description = "an account with this email already exists (`email_taken`)"),
        (status = 429, description = "this client has used up its sign-ups (`too_many_attempts`); retry after `Retry-After` seconds"),
    )
)]
async fn signup(
    State(state): State<IdentityState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<SignupBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = body.email.trim().to_lowercase();
    let password_len = body.password.chars().count();
    Validator::new()
        .text(&body.name, "name", 1, 100)
        .check(
            is_plausible_email(&email),
            "email",
            "must be a valid email address",
        )
        .check(
            password_len >= MIN_PASSWORD_LEN,
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        )
        .check(
            password_len <= MAX_PASSWORD_LEN,
            "password",
            format!("must be at most {MAX_PASSWORD_LEN} characters"),
        )
        .finish()?;
    state.throttle.signup(client).await?;

    let user = UserRecord {
        id: UserId::generate(),
        name: body.name.trim().to_string(),
        email,
        role: state.role,
        password_hash: hash_password(body.password).await?,
        created_at: events::timestamp::now(),
    };
    state.users.insert(&user).await.map_err(|e| match e {
        StoreError::Duplicate(_) => {
            ApiError::conflict("email_taken", "an account with this email already exists")
        }
        other => other.into(),
    })?;
    Ok((StatusCode::CREATED, session_for(&state, &user)))
}

/// A new session of `user`, as signing up and logging in both answer it: a
/// token in the body, and the cookie that starts the browser session.
fn session_for(
    state: &IdentityState,
    user: &UserRecord,
) -> (
    AppendHeaders<[(header::HeaderName, header::HeaderValue); 1]>,
    Json<SessionBody>,
) {
    let token = state.jwt.issue(user.id.as_str(), user.role);
    (
        session_started(state, &token),
        Json(SessionBody {
            token,
            user: UserView::from(user),
        }),
    )
}

/// The `Set-Cookie` that gives a browser the session holding `token`; API
/// clients ignore it and use the token from the body.
fn session_started(
    state: &IdentityState,
    token: &str,
) -> AppendHeaders<[(header::HeaderName, header::HeaderValue); 1]> {
    AppendHeaders([(
        header::SET_COOKIE,
        session::start(state.role, token, state.cookie_secure),
    )])
}

/// Logs in and starts a session.
///
/// Counted as a failure of the account and of the client's
/// address before the password is checked, so a client that has used up
/// either gets 429 even with the right password; a success clears the
/// account's failures.
#[utoipa::path(
    post,
    path = "/login",
    tag = "identity",
    request_body = LoginBody,
    responses(
        (status = 200, description = "the credentials are right; the body has a token, and `Set-Cookie` starts the browser session", body = SessionBody),
        (status = 401, description = "the email or the password is wrong (`invalid_credentials`)"),
        (status = 429, description = "too many failed attempts for this account or from this client (`too_many_attempts`); retry after `Retry-After` seconds"),
    )
)]
async fn login(
    State(state): State<IdentityState>,
    ClientAddress(client): ClientAddress,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<impl IntoResponse, ApiError> {
    let email = body.email.trim().to_lowercase();
    // No account has a longer email, and it would be a counter's key.
    Validator::new()
        .check(
            email.len() <= MAX_EMAIL_LEN,
            "email",
            format!("must be at most {MAX_EMAIL_LEN} characters"),
        )
        .finish()?;
    let attempt = state.throttle.login(&email, client).await?;
    let user = state.users.find_by_email(&email).await?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (verify_password(body.password, hash).await, user) {
        (true, Some(user)) => user,
        _ => {
            attempt.failed();
            return Err(ApiError::unauthorized(
                "invalid_credentials",
                "email or password is incorrect",
            ));
        }
    };
    if let Err(e) = attempt.succeeded().await {
        // The login stands; only the bookkeeping of earlier failures is left.
        tracing::warn!(error = %e, "cannot clear an account's failed logins");
    }
    Ok(session_for(&state, &user))
}

/// Ends the browser session.
///
/// Answers 204, clearing the session cookie. Tokens are stateless,
/// so this ends the browser's session, not a bearer token a client kept.
/// With the cookie, it must come from this host's pages like any other
/// change made with it; without one there is nothing to end, and it still
/// answers 204 (logging out twice is not an error).
#[utoipa::path(
    post,
    path = "/logout",
    tag = "identity",
    responses(
        (status = 204, description = "the session cookie is cleared (also when there was none)"),
        (status = 403, description = "the session cookie was sent from another site's page (`origin_mismatch`)"),
    )
)]
async fn logout(
    State(state): State<IdentityState>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    if session::token(&headers, state.role).is_some() {
        session::require_same_origin(&headers)?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(
            header::SET_COOKIE,
            session::end(state.role, state.cookie_secure),
        )]),
    ))
}

/// The caller's account.
#[utoipa::path(
    get,
    path = "/me",
    tag = "identity",
    security(("bearer" = [])),
    responses((status = 200, description = "the account the credentials belong to", body = UserBody))
)]
async fn me(
    State(state): State<IdentityState>,
    caller: AuthUser,
) -> Result<Json<UserBody>, ApiError> {
    let user =
        state.users.find_by_id(&caller.id).await?.ok_or_else(|| {
            ApiError::unauthorized("invalid_token", "the account no longer exists")
        })?;
    Ok(Json(UserBody {
        user: UserView::from(&user),
    }))
}

#[cfg(test)]
mod tests {
    use super::is_plausible_email;

    #[test]
    fn email_check_accepts_ordinary_addresses_only() {
        for ok in ["a@b.co", "first.last+tag@example.org"] {
            assert!(is_plausible_email(ok), "{ok}");
        }
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a@b.", "a b@c.de", "a@b@c.de",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }
}
