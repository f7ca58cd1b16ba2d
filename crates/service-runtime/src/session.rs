//! Browser sessions: the access token carried in an `HttpOnly` cookie.
//!
//! The web apps cannot keep a bearer token away from scripts, so sign-up and
//! login also put the same token in a cookie that scripts cannot read
//! (`HttpOnly`), that no other site's page can make the browser send
//! (`SameSite=Strict`), and that travels only over HTTPS when
//! `COOKIE_SECURE=true`. The session is the token itself: nothing is stored
//! server-side, so every replica accepts it.
//!
//! Each role has its own cookie name: browsers do not separate cookies by
//! port, so the traveler app on :5005 and the owner app on :5002 of one host
//! would otherwise overwrite each other's session.
//!
//! A request authenticated by the cookie that changes state must also carry
//! an `Origin` naming this very host ([`require_same_origin`]): defence in
//! depth behind `SameSite`, for browsers or proxies that do not honour it.

use axum::http::{header, HeaderMap, HeaderValue, Method};

use crate::{
    auth::{Role, TOKEN_TTL_SECS},
    http::ApiError,
};

/// The session cookie's name for a service of `role`.
pub fn cookie_name(role: Role) -> &'static str {
    match role {
        Role::Traveler => "traveler_session",
        Role::Owner => "owner_session",
    }
}

/// The `Set-Cookie` value that starts a session holding `token`; it lasts
/// as long as the token does.
pub fn start(role: Role, token: &str, secure: bool) -> HeaderValue {
    cookie(role, token, TOKEN_TTL_SECS, secure)
}

/// The `Set-Cookie` value that ends the session (an empty, expired cookie).
pub fn end(role: Role, secure: bool) -> HeaderValue {
    cookie(role, "", 0, secure)
}

fn cookie(role: Role, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}",
        cookie_name(role)
    );
    // A JWT is base64url and dots: always a valid header value.
    HeaderValue::from_str(&text).expect("a cookie of token characters is a valid header")
}

/// The token in the request's session cookie for `role`, if there is one.
pub fn token(headers: &HeaderMap, role: Role) -> Option<&str> {
    let name = cookie_name(role);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// Whether `method` can change state (anything but GET, HEAD, OPTIONS, TRACE).
pub fn changes_state(method: &Method) -> bool {
    !method.is_safe()
}

/// 403 `origin_mismatch` unless the request's `Origin` names the host it was
/// sent to (`Host`), in any scheme: a page of another origin — or a client
/// that sends no `Origin` — cannot act with the browser's session.
pub fn require_same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refuse = |detail: &str| Err(ApiError::forbidden("origin_mismatch", detail));
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return refuse("a request made with the session cookie must carry an Origin header");
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    if host.is_empty() || !origin_host.eq_ignore_ascii_case(host) {
        return refuse(
            "a request made with the session cookie must come from this site's own pages",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn cookies_carry_the_protective_attributes() {
        let set = start(Role::Owner, "a.b.c", false);
        assert_eq!(
            set,
            "owner_session=a.b.c; Path=/; Max-Age=86400; HttpOnly; SameSite=Strict"
        );
        let set = start(Role::Traveler, "a.b.c", true);
        assert!(set.to_str().unwrap().ends_with("; Secure"), "{set:?}");
        let gone = end(Role::Traveler, false);
        assert!(gone
            .to_str()
            .unwrap()
            .starts_with("traveler_session=; Path=/; Max-Age=0"));
    }

    #[test]
    fn the_token_is_read_from_this_roles_cookie_only() {
        let h = headers(&[("cookie", "owner_session=o.o.o; traveler_session=t.t.t")]);
        assert_eq!(token(&h, Role::Traveler), Some("t.t.t"));
        assert_eq!(token(&h, Role::Owner), Some("o.o.o"));
        let h = headers(&[("cookie", "other=x"), ("cookie", "traveler_session=")]);
        assert_eq!(token(&h, Role::Traveler), None);
    }

    #[test]
    fn only_an_origin_naming_this_host_passes() {
        let ok = headers(&[
            ("host", "localhost:5005"),
            ("origin", "http://localhost:5005"),
        ]);
        assert!(require_same_origin(&ok).is_ok());
        let tls = headers(&[("host", "book.example"), ("origin", "https://book.example")]);
        assert!(require_same_origin(&tls).is_ok());
        for bad in [
            headers(&[("host", "localhost:5005")]),
            headers(&[("host", "localhost:5005"), ("origin", "null")]),
            headers(&[
                ("host", "localhost:5005"),
                ("origin", "http://localhost:5002"),
            ]),
            headers(&[
                ("host", "localhost:5005"),
                ("origin", "http://evil.example"),
            ]),
            headers(&[("origin", "http://localhost:5005")]),
        ] {
            assert_eq!(
                require_same_origin(&bad).unwrap_err().code,
                "origin_mismatch"
            );
        }
    }
}
