//! The two web apps in a real headless Chromium (over WebDriver), against
//! both service binaries on the real broker and database: a traveler books,
//! the owner's page shows the request without a reload, the owner approves,
//! the traveler's page shows ACCEPTED and a new notification without a
//! reload; the traveler cancels and both pages follow; the owner edits and
//! delists the property; a property named `<img src=x onerror=alert(1)>`
//! shows as those characters and opens no dialog; a logged-out user gets
//! the login form.
//!
//! Screenshots of both apps go to `$SCREENSHOT_DIR` (default
//! `target/web-app-screenshots`); `SCREENSHOT_DIR=docs/images` refreshes the
//! README's.

mod browser;
mod support;

use std::path::PathBuf;

use browser::{Browser, Driver, UI_TIMEOUT};
use serde_json::{json, Value};
use support::System;
use test_support::{eventually, real_servers, unique};

const XSS_NAME: &str = "<img src=x onerror=alert(1)>";
const PASSWORD: &str = "correct-horse-1";

/// Where screenshots go.
fn screenshot_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = std::env::var_os("SCREENSHOT_DIR")
        .map(|d| root.join(d))
        .unwrap_or_else(|| root.join("target/web-app-screenshots"));
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

async fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Opens `base` logged out and checks it shows the login form, then signs up.
async fn sign_up(browser: &Browser, base: &str, landing: &str, name: &str) -> String {
    browser.goto(&format!("{base}/{landing}")).await;
    browser.find("#login-form").await;
    assert_eq!(
        browser.eval("return location.hash;").await,
        "#login",
        "a logged-out user is sent to the login form"
    );
    assert!(!browser.exists("#logout").await);
    browser.click_on("a[href='#signup']").await;
    let email = format!("{}@example.com", unique("web"));
    browser
        .type_into("#signup-form input[name=name]", name)
        .await;
    browser
        .type_into("#signup-form input[name=email]", &email)
        .await;
    browser
        .type_into("#signup-form input[name=password]", PASSWORD)
        .await;
    browser.click_on("#signup-form button[type=submit]").await;
    browser.find("#logout").await;
    email
}

/// Marks the loaded page, so a later check can tell it was not reloaded.
async fn mark_page(browser: &Browser) {
    browser
        .eval("window.__notReloaded = true; return null;")
        .await;
}

async fn assert_not_reloaded(browser: &Browser, who: &str) {
    assert_eq!(
        browser.eval("return window.__notReloaded === true;").await,
        true,
        "the {who} page was reloaded"
    );
}

/// `data-status` of the booking's row in list `list`, once the row exists.
async fn row_status(browser: &Browser, list: &str, booking_id: &str, status: &str) {
    browser
        .wait_value(
            &format!("{list} shows {booking_id} {status}"),
            "const r = document.querySelector(`${arguments[0]} li[data-booking-id='${arguments[1]}']`);
             return r ? r.dataset.status : null;",
            json!([list, booking_id]),
            |v| (v == status).then_some(()),
        )
        .await;
}

/// Whether `base` serves the notification stream of `prefix` (anything but
/// 404 for a signed-up user's token); only the status is read.
async fn stream_served(sys: &System, base: &str, prefix: &str) -> bool {
    let user = if prefix == "owners" {
        sys.owner_signup("Probe").await
    } else {
        sys.traveler_signup("Probe").await
    };
    let response = reqwest::Client::new()
        .get(format!("{base}/api/{prefix}/notifications/stream"))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("stream request");
    response.status() != 404
}

/// How many notifications the page lists.
async fn notification_count(browser: &Browser) -> u64 {
    browser
        .eval("return document.querySelectorAll('#notifications li').length;")
        .await
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_booking_travels_live_between_the_two_apps() {
    let Some(servers) = real_servers("web_app") else {
        return;
    };
    let Some(driver) = Driver::start("web_app").await else {
        return;
    };
    let sys = System::processes(&servers).await;
    let city = unique("Evora");

    // The owner signs up (from a deep link, logged out) and lists a property
    // whose name is markup.
    let owner = driver.browser(1280, 900).await;
    sign_up(&owner, &sys.owner, "#requests", "Olga Owner").await;
    owner.click_on("nav a[href='#properties']").await;
    for (field, value) in [
        ("name", XSS_NAME),
        ("city", city.as_str()),
        ("country", "PT"),
        ("price", "100"),
        ("cleaning", "20"),
        ("service", "5"),
        ("currency", "EUR"),
        ("max_guests", "4"),
    ] {
        owner
            .type_into(&format!("#property-form [name={field}]"), value)
            .await;
    }
    owner.click_on("#property-form button[type=submit]").await;
    let listed = owner
        .text("#properties li[data-property-id] .property-name")
        .await;
    assert_eq!(listed, XSS_NAME, "the owner app shows the name as text");
    owner.click_on("nav a[href='#requests']").await;
    owner.find("#requests").await;
    mark_page(&owner).await;

    // The traveler signs up, finds it, and sees the API's price of a stay.
    let traveler = driver.browser(1280, 900).await;
    let traveler_email = sign_up(&traveler, &sys.traveler, "", "Tom Traveler").await;
    mark_page(&traveler).await;
    traveler
        .type_into("#search-form input[name=city]", &city)
        .await;
    eventually("the catalog lists the property", UI_TIMEOUT, || async {
        traveler.click_on("#search-form button[type=submit]").await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        traveler
            .exists("#results .property-name")
            .await
            .then_some(())
    })
    .await;
    assert_eq!(traveler.text("#results .property-name").await, XSS_NAME);
    traveler.click_on("#results a.property-name").await;
    assert_eq!(traveler.text("h2.property-name").await, XSS_NAME);
    // Default stay: 2 nights × 100.00 + 20.00 + 5.00.
    let total = traveler.text("#total").await;
    assert!(total.contains("225.00"), "total shown: {total}");
    traveler.click_on("#booking-form button[type=submit]").await;
    let booking_id = traveler
        .wait_value(
            "the new booking in my bookings",
            "const r = document.querySelector('#bookings li[data-booking-id]');
             return r ? r.dataset.bookingId : null;",
            json!([]),
            |v| v.as_str().map(str::to_string),
        )
        .await;
    row_status(&traveler, "#bookings", &booking_id, "PENDING").await;

    // The owner's open page shows the request, without a reload.
    row_status(&owner, "#requests", &booking_id, "PENDING").await;
    assert_not_reloaded(&owner, "owner").await;
    let row = format!("#requests li[data-booking-id='{booking_id}']");
    assert_eq!(owner.text(&format!("{row} h3")).await, XSS_NAME);
    owner
        .wait_value(
            "the owner's notification of the request",
            "return document.querySelectorAll('#notifications li').length;",
            json!([]),
            |v| (v.as_u64() >= Some(1)).then_some(()),
        )
        .await;

    // The owner approves; the traveler's page shows ACCEPTED and one more
    // notification, without a reload.
    let before = notification_count(&traveler).await;
    owner
        .click_on(&format!("{row} .decision-approve button"))
        .await;
    row_status(&owner, "#requests", &booking_id, "ACCEPTED").await;
    row_status(&traveler, "#bookings", &booking_id, "ACCEPTED").await;
    traveler
        .wait_value(
            "a new notification for the traveler",
            "const items = document.querySelectorAll('#notifications li');
             return items.length > arguments[0] ? items[0].querySelector('.badge').textContent : null;",
            json!([before]),
            |v| (v == "ACCEPTED").then_some(()),
        )
        .await;
    assert_not_reloaded(&traveler, "traveler").await;

    // Markup in a name stayed text: no element made from it, no dialog.
    // Updates came through the notification stream wherever the service
    // serves one; polling is only the fallback for a service without it.
    for (who, browser, base, prefix) in [
        ("owner", &owner, &sys.owner, "owners"),
        ("traveler", &traveler, &sys.traveler, "travelers"),
    ] {
        assert_eq!(
            browser
                .eval("return document.querySelectorAll('img').length;")
                .await,
            0,
            "{who}"
        );
        assert_eq!(
            browser.open_dialog().await,
            None,
            "{who} page opened a dialog"
        );
        let live: Value = browser
            .eval("return document.documentElement.dataset.live || null;")
            .await;
        let expected = if stream_served(&sys, base, prefix).await {
            "stream"
        } else {
            "polling"
        };
        assert_eq!(live, expected, "how the {who} page follows updates");
        eprintln!("web_app: the {who} page followed updates by {live}");
    }
    save_screenshot(&owner, "owner-app.png").await;
    save_screenshot(&traveler, "traveler-app.png").await;

    // On a phone-sized screen, with the keyboard: log in (Enter submits),
    // and the bookings fit the width.
    let phone = driver.browser(390, 844).await;
    phone.goto(&format!("{}/#bookings", sys.traveler)).await;
    phone.find("#login-form").await;
    phone
        .type_into("#login-form input[name=email]", &traveler_email)
        .await;
    phone
        .type_into(
            "#login-form input[name=password]",
            &format!("{PASSWORD}\u{E007}"),
        )
        .await;
    phone.click_on("nav a[href='#bookings']").await;
    row_status(&phone, "#bookings", &booking_id, "ACCEPTED").await;
    let overflow = phone
        .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        .await;
    assert_eq!(overflow, 0, "the page is wider than a phone screen");
    save_screenshot(&phone, "traveler-app-phone.png").await;

    // The traveler cancels from the phone; both open pages follow.
    phone
        .click_on(&format!(
            "#bookings li[data-booking-id='{booking_id}'] button.danger"
        ))
        .await;
    row_status(&phone, "#bookings", &booking_id, "CANCELLED").await;
    row_status(&owner, "#requests", &booking_id, "CANCELLED").await;
    row_status(&traveler, "#bookings", &booking_id, "CANCELLED").await;
    assert_not_reloaded(&owner, "owner").await;

    // The owner edits the property, then delists it.
    owner.click_on("nav a[href='#properties']").await;
    owner.click_on("#properties li[data-property-id] a").await;
    // The list view has a `#property-form` too (the one that lists a new
    // property): wait until the edit view, with its delist button, has
    // replaced it, or the price typed may go to the form being removed.
    owner.find("#delist").await;
    owner.type_into("#property-form [name=price]", "120").await;
    owner.click_on("#property-form button[type=submit]").await;
    owner
        .wait_value(
            "the edit saved",
            "const s = document.querySelector('#property-form [role=status]'); return s ? s.textContent : null;",
            json!([]),
            |v| (v == "Saved.").then_some(()),
        )
        .await;
    owner.click_on("#delist").await;
    assert_eq!(
        owner.text("#properties li[data-property-id] .badge").await,
        "DELISTED"
    );
    assert!(
        owner
            .text("#properties li[data-property-id] p")
            .await
            .contains("120.00"),
        "the new price is listed"
    );

    // Logging out ends the session: the page and a reload show the login form.
    traveler.click_on("#logout").await;
    traveler.find("#login-form").await;
    traveler.goto(&format!("{}/#bookings", sys.traveler)).await;
    traveler.find("#login-form").await;
    let me = traveler
        .eval("return fetch('/api/travelers/me').then(r => r.status);")
        .await;
    assert_eq!(me, 401, "the session cookie is gone");

    for b in [owner, traveler, phone] {
        b.quit().await;
    }
}
