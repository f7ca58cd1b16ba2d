//! Browser sessions and the web apps over HTTP: the session cookie set by
//! sign-up and login and cleared by logout, the `Origin` check on
//! cookie-authenticated changes (bearer clients unaffected), the security
//! headers of the app pages, and the price quote the traveler app shows.
//!
//! Both services embedded in memory, like the `api` test (`tests/api/`); the same apps
//! in a real browser against the binaries are in `web_app.rs`.

mod support;

use reqwest::{header::HeaderMap, Method};
use serde_json::{json, Value};
use service_runtime::identity::IdentityConfig;
use support::{stay_dates, System};
use test_support::unique;

/// A response: status, headers, body as JSON (Null when not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The one `Set-Cookie` of the response.
    fn set_cookie(&self) -> &str {
        let all: Vec<_> = self.headers.get_all("set-cookie").iter().collect();
        assert_eq!(all.len(), 1, "expected one Set-Cookie: {all:?}");
        all[0].to_str().unwrap()
    }

    fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert!(
            self.header("content-type")
                .starts_with("application/problem+json"),
            "{}",
            self.header("content-type")
        );
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert!(self.body["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
}

/// Sends a request with exactly these headers (and a JSON body if given);
/// never follows redirects nor keeps cookies.
async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

/// [`send`] with the session `cookie`, and `Origin: origin` if given.
async fn send_with_cookie(
    method: Method,
    url: &str,
    cookie: &str,
    origin: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut headers = vec![("cookie", cookie)];
    headers.extend(origin.map(|o| ("origin", o)));
    send(method, url, &headers, body).await
}

/// `name=value` of a `Set-Cookie`, to send back as `Cookie`.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().trim().to_string()
}

/// The attributes of a `Set-Cookie` after `name=value`, as written.
fn attributes(set_cookie: &str) -> Vec<String> {
    set_cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_string())
        .collect()
}

/// Signs up on `base` (`travelers` or `owners`); returns the body and the
/// session cookie to send back.
async fn signup(base: &str, prefix: &str) -> (Value, String, Answer) {
    let email = format!("{}@example.com", unique("web"));
    let answer = send(
        Method::POST,
        &format!("{base}/api/{prefix}/signup"),
        &[],
        Some(json!({"name": "Wendy", "email": email, "password": "correct-horse-1"})),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let cookie = cookie_pair(answer.set_cookie());
    (answer.body.clone(), cookie, answer)
}

fn property() -> Value {
    json!({"name": "Loft", "city": "Lisbon", "country": "PT",
           "price_per_night_cents": 10000, "cleaning_fee_cents": 2000,
           "service_fee_cents": 500, "max_guests": 4})
}

#[tokio::test]
async fn signup_and_login_set_an_http_only_strict_session_cookie_and_keep_their_body() {
    let sys = System::embedded().await;
    for (base, prefix, name) in [
        (&sys.traveler, "travelers", "traveler_session"),
        (&sys.owner, "owners", "owner_session"),
    ] {
        let (body, cookie, answer) = signup(base, prefix).await;
        let set = answer.set_cookie();
        assert!(cookie.starts_with(&format!("{name}=")), "{set}");
        assert_eq!(
            cookie,
            format!("{name}={}", body["token"].as_str().unwrap()),
            "the session holds the same token the body carries"
        );
        let attrs = attributes(set);
        for wanted in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
            assert!(attrs.iter().any(|a| a == wanted), "{wanted} missing: {set}");
        }
        assert!(
            !attrs.iter().any(|a| a == "Secure"),
            "not Secure unless COOKIE_SECURE: {set}"
        );
        assert_eq!(
            body.as_object().unwrap().len(),
            2,
            "signup still answers only token and user: {body}"
        );

        let login = send(
            Method::POST,
            &format!("{base}/api/{prefix}/login"),
            &[],
            Some(json!({"email": body["user"]["email"], "password": "correct-horse-1"})),
        )
        .await;
        assert_eq!(login.status, 200, "{}", login.body);
        assert_eq!(login.body.as_object().unwrap().len(), 2, "{}", login.body);
        let set = login.set_cookie();
        assert_eq!(
            cookie_pair(set),
            format!("{name}={}", login.body["token"].as_str().unwrap())
        );
        assert!(attributes(set).iter().any(|a| a == "HttpOnly"), "{set}");

        // The cookie alone authenticates a read, with no Origin needed.
        let me = send_with_cookie(
            Method::GET,
            &format!("{base}/api/{prefix}/me"),
            &cookie,
            None,
            None,
        )
        .await;
        assert_eq!(me.status, 200, "{}", me.body);
        assert_eq!(me.body["user"]["id"], body["user"]["id"]);
    }
}

#[tokio::test]
async fn with_cookie_secure_the_session_cookie_is_secure() {
    let sys = System::embedded_with(IdentityConfig {
        cookie_secure: true,
        ..IdentityConfig::default()
    })
    .await;
    let (_, _, answer) = signup(&sys.owner, "owners").await;
    assert!(
        attributes(answer.set_cookie())
            .iter()
            .any(|a| a == "Secure"),
        "{}",
        answer.set_cookie()
    );
}

#[tokio::test]
async fn logout_clears_the_cookie() {
    let sys = System::embedded().await;
    let (_, cookie, _) = signup(&sys.traveler, "travelers").await;
    let origin = sys.traveler.clone();
    let logout = format!("{}/api/travelers/logout", sys.traveler);

    // With the cookie, logging out is a change like any other: same origin only.
    send_with_cookie(Method::POST, &logout, &cookie, None, None)
        .await
        .problem(403, "origin_mismatch");

    let out = send_with_cookie(Method::POST, &logout, &cookie, Some(&origin), None).await;
    assert_eq!(out.status, 204);
    let set = out.set_cookie();
    assert_eq!(cookie_pair(set), "traveler_session=", "{set}");
    let attrs = attributes(set);
    for wanted in ["Max-Age=0", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.iter().any(|a| a == wanted), "{wanted} missing: {set}");
    }

    // A browser that applied it sends no cookie: signed out.
    send(
        Method::GET,
        &format!("{}/api/travelers/me", sys.traveler),
        &[],
        None,
    )
    .await
    .problem(401, "missing_token");
    // Without a session there is nothing to end: still 204.
    let again = send(Method::POST, &logout, &[], None).await;
    assert_eq!(again.status, 204);
}

#[tokio::test]
async fn cookie_authenticated_changes_need_this_origin_and_bearer_clients_need_none() {
    let sys = System::embedded().await;
    let (body, cookie, _) = signup(&sys.owner, "owners").await;
    let token = body["token"].as_str().unwrap().to_string();
    let url = format!("{}/api/owners/properties", sys.owner);
    let same = sys.owner.clone();

    // Cookie, no Origin / another origin / the other service's origin: 403.
    for origin in [
        None,
        Some("http://evil.example"),
        Some(sys.traveler.as_str()),
        Some("null"),
    ] {
        send_with_cookie(Method::POST, &url, &cookie, origin, Some(property()))
            .await
            .problem(403, "origin_mismatch");
    }
    // Cookie from this origin: created.
    let created =
        send_with_cookie(Method::POST, &url, &cookie, Some(&same), Some(property())).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["property"]["id"].as_str().unwrap().to_string();

    // PUT and DELETE are checked the same way.
    let one = format!("{url}/{id}");
    send_with_cookie(
        Method::PUT,
        &one,
        &cookie,
        Some("http://evil.example"),
        Some(json!({"name": "Renamed"})),
    )
    .await
    .problem(403, "origin_mismatch");
    send_with_cookie(Method::DELETE, &one, &cookie, None, None)
        .await
        .problem(403, "origin_mismatch");
    let renamed = send_with_cookie(
        Method::PUT,
        &one,
        &cookie,
        Some(&same),
        Some(json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);

    // A bearer client sends no Origin and is not asked for one, even with a
    // stray cookie beside its token.
    let auth = format!("Bearer {token}");
    let bearer = send(
        Method::POST,
        &url,
        &[("authorization", &auth)],
        Some(property()),
    )
    .await;
    assert_eq!(bearer.status, 201, "{}", bearer.body);
    let both = send(
        Method::POST,
        &url,
        &[("authorization", &auth), ("cookie", &cookie)],
        Some(property()),
    )
    .await;
    assert_eq!(both.status, 201, "{}", both.body);
}

#[tokio::test]
async fn one_services_session_is_not_the_others() {
    let sys = System::embedded().await;
    let (_, traveler_cookie, _) = signup(&sys.traveler, "travelers").await;
    // Browsers send cookies of a host to all its ports: the owner service
    // must not take a traveler's session for its own.
    send_with_cookie(
        Method::GET,
        &format!("{}/api/owners/me", sys.owner),
        &traveler_cookie,
        None,
        None,
    )
    .await
    .problem(401, "missing_token");
}

#[tokio::test]
async fn app_pages_carry_a_strict_content_security_policy() {
    let sys = System::embedded().await;
    for (base, script) in [(&sys.traveler, "traveler.js"), (&sys.owner, "owner.js")] {
        let page = reqwest::get(format!("{base}/")).await.unwrap();
        assert_eq!(page.status(), 200);
        let headers = page.headers().clone();
        let csp = headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.contains(directive), "{directive} missing: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert!(!csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = page.text().await.unwrap();
        assert!(html.contains(&format!("/assets/{script}")), "{html}");

        for (asset, kind) in [
            (script, "text/javascript"),
            ("api.js", "text/javascript"),
            ("app.css", "text/css"),
        ] {
            let res = reqwest::get(format!("{base}/assets/{asset}"))
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{asset}");
            assert!(
                res.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with(kind),
                "{asset}"
            );
            assert_eq!(res.headers()["x-content-type-options"], "nosniff");
        }
        send(Method::GET, &format!("{base}/assets/nope.js"), &[], None)
            .await
            .problem(404, "not_found");
    }
    // Each service serves its own app only.
    let other = send(
        Method::GET,
        &format!("{}/assets/owner.js", sys.traveler),
        &[],
        None,
    )
    .await;
    other.problem(404, "not_found");
}

#[tokio::test]
async fn the_quote_is_the_price_a_booking_gets() {
    let sys = System::embedded().await;
    let (_owner, traveler, pid) = sys.listed_property("Faro").await;
    let (check_in, check_out) = stay_dates(30, 3);
    let stay = format!("check_in={check_in}&check_out={check_out}");
    let quote = sys
        .traveler_get(
            &traveler,
            &format!("properties/{pid}/quote?{stay}&guests=2"),
        )
        .await
        .expect(200)["quote"]
        .clone();
    assert_eq!(quote["nights"], 3);
    assert_eq!(quote["nights_cents"], 3 * 10000);
    assert_eq!(quote["cleaning_fee_cents"], 2000);
    assert_eq!(quote["service_fee_cents"], 500);
    assert_eq!(quote["currency"], "USD");

    let booking = sys
        .http
        .book_stay(&sys.traveler, &traveler.token, &pid, check_in, check_out)
        .await
        .expect(201)["booking"]
        .clone();
    assert_eq!(quote["total_price_cents"], booking["total_price_cents"]);
    assert_eq!(booking["total_price_cents"], 3 * 10000 + 2000 + 500);

    // The booking's own checks, the same 400s.
    let reversed = format!("check_in={check_out}&check_out={check_in}");
    let crowded = format!("{stay}&guests=9");
    let refused: [(&str, &str, u16, &str); 4] = [
        (&pid, &reversed, 400, "validation_failed"),
        (&pid, &crowded, 400, "validation_failed"),
        (&pid, "check_in=soon", 400, "invalid_query"),
        ("nope", &stay, 404, "not_found"),
    ];
    for (property, query, status, code) in refused {
        sys.traveler_get(&traveler, &format!("properties/{property}/quote?{query}"))
            .await
            .expect_problem(status, code);
    }
}
