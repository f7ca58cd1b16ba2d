//! Limits on failed logins and on sign-ups, per account and per client address.

use crate::helpers::*;

/// Limits as in production, but believing `X-Forwarded-For` from this
/// process (the tests' loopback peer), so a test can be many clients; and
/// `signups` sign-ups per address.
fn trusting_loopback(signups: u32) -> IdentityConfig {
    IdentityConfig {
        limits: ThrottleLimits {
            signups_per_address: signups,
            ..ThrottleLimits::default()
        },
        trusted_proxies: "127.0.0.1/32, ::1".parse().unwrap(),
        ..IdentityConfig::default()
    }
}

/// `POST {api}/{action}` with a JSON body, forwarded for `client` if given.
async fn post_from(api: &str, action: &str, body: Value, client: Option<&str>) -> Raw {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(c) = client {
        headers.push(("x-forwarded-for", c));
    }
    RawClient::new()
        .send(
            Method::POST,
            &format!("{api}/{action}"),
            &headers,
            Some(body.to_string().into_bytes()),
        )
        .await
}

async fn login_from(api: &str, email: &str, password: &str, client: Option<&str>) -> Raw {
    post_from(
        api,
        "login",
        json!({"email": email, "password": password}),
        client,
    )
    .await
}

async fn signup_from(api: &str, client: Option<&str>) -> Raw {
    let email = format!("{}@example.com", unique("new"));
    post_from(
        api,
        "signup",
        json!({"name": "New", "email": email, "password": "correct-horse-1"}),
        client,
    )
    .await
}

/// A login with a wrong password, forwarded for `client` if given: 401
/// `invalid_credentials`.
async fn fail_login_from(api: &str, email: &str, client: Option<&str>) {
    login_from(api, email, "wrong-horse-1", client)
        .await
        .problem(401, "invalid_credentials");
}

/// A 429 `too_many_attempts` problem with a `Retry-After` of at most the
/// 15-minute window, also in the body.
fn assert_throttled(r: &Raw) {
    r.problem(429, "too_many_attempts");
    let retry_after: u64 = r
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("429 without Retry-After: {}", r.text))
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=900).contains(&retry_after),
        "Retry-After {retry_after}"
    );
    assert_eq!(r.body["retry_after"], retry_after, "{}", r.text);
}

#[tokio::test]
async fn ten_failed_logins_lock_the_account_even_with_the_right_password() {
    let sys = System::embedded_with(trusting_loopback(10)).await;
    for (_, api) in sys.apis() {
        let (ada, bob) = (signup_from(&api, None).await, signup_from(&api, None).await);
        let (ada, bob) = (
            str_of(&ada.body["user"]["email"]),
            str_of(&bob.body["user"]["email"]),
        );
        // Ten failures, each from another address: the account's limit.
        for i in 0..10 {
            fail_login_from(&api, &ada, Some(&format!("198.51.100.{i}"))).await;
        }
        let right = login_from(&api, &ada, "correct-horse-1", Some("198.51.100.200")).await;
        assert_throttled(&right);
        assert_throttled(&login_from(&api, &ada, "wrong-horse-1", Some("198.51.100.201")).await);
        // The email in another case is the same account.
        assert_throttled(
            &login_from(
                &api,
                &ada.to_uppercase(),
                "correct-horse-1",
                Some("198.51.100.202"),
            )
            .await,
        );
        // Other accounts, from the same addresses, are not affected.
        let ok = login_from(&api, &bob, "correct-horse-1", Some("198.51.100.0")).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
}

#[tokio::test]
async fn a_successful_login_clears_the_accounts_failures() {
    let sys = System::embedded_with(trusting_loopback(10)).await;
    let api = format!("{}/api/owners", sys.owner);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    let mut address = 0;
    let mut fail = |n: usize| {
        let from: Vec<String> = (0..n)
            .map(|_| {
                address += 1;
                format!("203.0.113.{address}")
            })
            .collect();
        let (api, ada) = (api.clone(), ada.clone());
        async move {
            for client in from {
                fail_login_from(&api, &ada, Some(&client)).await;
            }
        }
    };
    fail(9).await;
    let ok = login_from(&api, &ada, "correct-horse-1", Some("203.0.113.100")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The count starts again: nine more are still only failures.
    fail(9).await;
    let ok = login_from(&api, &ada, "correct-horse-1", Some("203.0.113.101")).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    fail(10).await;
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("203.0.113.102")).await);
}

#[tokio::test]
async fn ten_failed_logins_lock_the_client_address_across_accounts() {
    // No trusted proxy (the production default): the socket peer is the
    // client, whatever X-Forwarded-For claims.
    let sys = System::embedded().await;
    let api = format!("{}/api/travelers", sys.traveler);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    for i in 0..10 {
        let nobody = format!("{}@example.com", unique("nobody"));
        fail_login_from(&api, &nobody, Some(&format!("192.0.2.{i}"))).await;
    }
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("192.0.2.77")).await);
    // The other service keeps its own counts.
    let owner_api = format!("{}/api/owners", sys.owner);
    let olga = str_of(&signup_from(&owner_api, None).await.body["user"]["email"]);
    assert_eq!(
        login_from(&owner_api, &olga, "correct-horse-1", None)
            .await
            .status,
        200
    );

    // Behind a trusted proxy, the forwarded address is the client.
    let sys = System::embedded_with(trusting_loopback(10)).await;
    let api = format!("{}/api/travelers", sys.traveler);
    let ada = str_of(&signup_from(&api, None).await.body["user"]["email"]);
    for _ in 0..10 {
        let nobody = format!("{}@example.com", unique("nobody"));
        // The client's own claim, left of what the proxy appended, is ignored.
        fail_login_from(&api, &nobody, Some("6.6.6.6, 192.0.2.5")).await;
    }
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("192.0.2.5")).await);
    assert_throttled(&login_from(&api, &ada, "correct-horse-1", Some("7.7.7.7, 192.0.2.5")).await);
    let other = login_from(&api, &ada, "correct-horse-1", Some("192.0.2.6")).await;
    assert_eq!(other.status, 200, "{}", other.text);
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let sys = System::embedded_with(trusting_loopback(3)).await;
    for (_, api) in sys.apis() {
        for _ in 0..3 {
            assert_eq!(signup_from(&api, Some("192.0.2.1")).await.status, 201);
        }
        assert_throttled(&signup_from(&api, Some("192.0.2.1")).await);
        // An invalid body is refused as such, without counting.
        post_from(&api, "signup", json!({"name": "x"}), Some("192.0.2.9"))
            .await
            .problem(400, "validation_failed");
        assert_eq!(signup_from(&api, Some("192.0.2.2")).await.status, 201);
        // IPv6 clients count by their /64 network.
        for i in 1..=3 {
            let from = format!("2001:db8:1:2::{i}");
            assert_eq!(signup_from(&api, Some(&from)).await.status, 201);
        }
        assert_throttled(&signup_from(&api, Some("2001:db8:1:2:ffff::99")).await);
        assert_eq!(signup_from(&api, Some("2001:db8:1:3::1")).await.status, 201);
    }

    // The production limit: ten per address.
    let sys = System::embedded().await;
    let api = format!("{}/api/travelers", sys.traveler);
    for _ in 0..10 {
        assert_eq!(signup_from(&api, None).await.status, 201);
    }
    assert_throttled(&signup_from(&api, None).await);
}
