//! Weird input on any endpoint never causes a server error.

use crate::helpers::*;

#[tokio::test]
async fn weird_input_on_any_endpoint_never_causes_a_server_error() {
    let scene = Scene::new("Lisbon").await;
    let (sys, raw) = (&scene.sys, &scene.raw);
    let traveler = &scene.traveler;
    let (pid, bid) = (&scene.pid, &scene.bid);
    let (t, o) = (&scene.t, &scene.o);

    let nested = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let nested_obj = format!("{}1{}", r#"{"a":"#.repeat(200), "}".repeat(200));
    let weird: Vec<Vec<u8>> = vec![
        b"{}".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"true".to_vec(),
        b"0".to_vec(),
        b"1e40".to_vec(),
        b"-1".to_vec(),
        b"\"text\"".to_vec(),
        json!({"name": "名前 🏠 \u{202e}abc", "email": "ü@ü.ü", "password": "pässwörd🔑🔑", "city": "Zürich",
               "country": "🇵🇹", "reason": "🙂".repeat(10), "property_id": "🏠"})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": 1e40, "max_guests": 1e40,
               "guests": 1e40, "check_in": day(5), "check_out": day(7), "property_id": pid})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": -1,
               "cleaning_fee_cents": i64::MIN, "max_guests": -5, "guests": -1, "bedrooms": -1,
               "property_id": pid, "check_in": day(5), "check_out": day(7)})
        .to_string()
        .into_bytes(),
        json!({"name": "A", "city": "B", "country": "C", "price_per_night_cents": u64::MAX,
               "service_fee_cents": i64::MAX, "max_guests": 4_294_967_296u64, "guests": 4_294_967_296u64,
               "property_id": pid, "check_in": day(5), "check_out": day(7)})
        .to_string()
        .into_bytes(),
        br#"{"price_per_night_cents": 1e400, "guests": 123456789012345678901234567890}"#.to_vec(),
        json!({"name": null, "email": null, "password": null, "city": null, "property_id": null, "reason": null,
               "check_in": null, "guests": null, "amenities": null, "price_per_night_cents": null})
        .to_string()
        .into_bytes(),
        json!({"name": [], "email": ["a@b.co"], "city": ["Lisbon"], "property_id": [pid], "reason": ["late"],
               "amenities": "wifi", "guests": [2]})
        .to_string()
        .into_bytes(),
        json!({"name": {"first": {"deep": {}}}, "email": {"a": 1}, "reason": {"text": "x"},
               "amenities": [{"a": 1}, 2, null], "property_id": {"id": pid}, "check_in": {"y": 2030}})
        .to_string()
        .into_bytes(),
        json!({"price_per_night_cents": "10000", "max_guests": "4", "guests": "2", "bedrooms": "two",
               "active": "yes", "reason": 42, "password": 12345678, "email": true})
        .to_string()
        .into_bytes(),
        json!({"property_id": pid, "check_in": "2030-02-30", "check_out": "tomorrow", "guests": 2})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "+262143-12-30", "check_out": "+262143-12-31", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "-262144-01-01", "check_out": "+262143-12-31", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": pid, "check_in": "+262143-12-31", "check_out": "-262144-01-01", "guests": 1})
            .to_string()
            .into_bytes(),
        json!({"property_id": "\u{0}", "name": "\u{0}", "email": "a\u{0}@b.co", "password": "\u{0}".repeat(8),
               "city": "\u{0}", "country": "\u{0}", "reason": "\u{0}"})
        .to_string()
        .into_bytes(),
        json!({"name": "x".repeat(30_000), "password": "p".repeat(1000), "email": format!("{}@b.co", "a".repeat(300)),
               "reason": "r".repeat(1000), "amenities": vec!["a"; 5000]})
        .to_string()
        .into_bytes(),
        nested.into_bytes(),
        nested_obj.into_bytes(),
        br#"{"name": "\ud800", "reason": "\udfff", "property_id": "\ud83d"}"#.to_vec(),
        br#"{"reason": "a", "reason": "b", "name": "x", "name": "y"}"#.to_vec(),
        b"\xff\xfe\x00{".to_vec(),
        b"{\"reason\": \"\xff\xfe\"}".to_vec(),
        r#"{"active": false, "currency": "€€€", "max_guests": 0.0, "guests": 1.0}"#.as_bytes().to_vec(),
    ];

    let mut failures = Vec::new();
    let mut check = |what: String, r: Raw| {
        let json_type = r.content_type.starts_with("application/json")
            || r.content_type.starts_with("application/problem+json");
        if r.status >= 500 || !json_type || !r.is_json {
            failures.push(format!(
                "{what} → {} {:?} {}",
                r.status,
                r.content_type,
                r.text.chars().take(300).collect::<String>()
            ));
        } else if r.status >= 400
            && !(r.content_type.starts_with("application/problem+json")
                && r.body["status"] == r.status
                && r.body["code"].is_string()
                && r.body["detail"].is_string()
                && r.body["title"].is_string()
                && r.body["type"].is_string())
        {
            failures.push(format!(
                "{what} → {} is not a problem document: {}",
                r.status, r.text
            ));
        }
    };
    // Every endpoint in the table's order: the property is delisted last.
    for e in &endpoints() {
        let (method, url) = (&e.method, scene.url(e));
        for body in &weird {
            let r = scene.send_json(e, body).await;
            check(
                format!(
                    "{method} {url} {}",
                    String::from_utf8_lossy(&body[..body.len().min(120)])
                ),
                r,
            );
        }
    }

    // Weird query strings, paths and headers.
    let (t_auth, o_auth) = (scene.t_auth.as_str(), scene.o_auth.as_str());
    let long = "a".repeat(4000);
    let (as_traveler, as_owner) = ((t.as_str(), t_auth), (o.as_str(), o_auth));
    let gets: &[((&str, &str), &str)] = &[
        (as_traveler, "properties?city=%F0%9F%8F%A0&guests=%00"),
        (as_traveler, "properties?guests=1e40"),
        (as_traveler, "properties?guests=18446744073709551616"),
        (as_traveler, "properties?city=%ZZ&guests=%FF"),
        (as_traveler, "properties?city[]=a&city[]=b"),
        (as_traveler, "bookings?status=%00"),
        (as_traveler, "bookings?status=%FF%FE"),
        (as_owner, "bookings?property_id=%00&status=pending"),
        (as_owner, &format!("bookings?property_id={long}")),
        (as_traveler, "bookings/%FF"),
        (as_traveler, "bookings/%00"),
        (as_traveler, &format!("bookings/{long}")),
        (as_traveler, "properties/..%2F..%2Fhealth"),
        (as_owner, "properties/%E2%80%AE"),
        (as_owner, "bookings/%2F/approve"),
    ];
    for ((api, auth), path) in gets {
        let url = format!("{api}/{path}");
        let r = raw
            .send(Method::GET, &url, &[("authorization", auth)], None)
            .await;
        check(format!("GET {url}"), r);
    }
    let puts = [
        format!("{o}/bookings/%FF/approve"),
        format!("{o}/properties/%FF"),
        format!("{t}/bookings/%FF/cancel"),
    ];
    for url in &puts {
        let auth = if url.starts_with(o.as_str()) {
            o_auth
        } else {
            t_auth
        };
        let r = raw
            .send(
                Method::PUT,
                url,
                &[
                    ("authorization", auth),
                    ("content-type", "application/json"),
                ],
                Some(b"{}".to_vec()),
            )
            .await;
        check(format!("PUT {url}"), r);
    }
    for auth in [
        "Bearer ".to_string(),
        "Bearer a.b.c".to_string(),
        "Bearer ....".to_string(),
        format!("Bearer {}", "x".repeat(8000)),
        format!(
            "Bearer {}.{}.{}",
            b64url_encode(b"{}"),
            b64url_encode(b"{}"),
            "sig"
        ),
        format!(
            "Bearer {}.{}.",
            b64url_encode(b"\"x\""),
            b64url_encode(b"[1]")
        ),
        "bearer".to_string(),
    ] {
        for url in [format!("{t}/me"), format!("{o}/bookings")] {
            let r = raw
                .send(Method::GET, &url, &[("authorization", auth.as_str())], None)
                .await;
            check(
                format!(
                    "GET {url} with Authorization {:?}",
                    &auth[..auth.len().min(40)]
                ),
                r,
            );
        }
    }
    for ct in [
        "application/json; charset=latin1",
        "application/+json",
        "application/json;;;",
        "*/*",
    ] {
        let body = stay(pid, 60, 1, 1);
        let r = raw
            .post_labelled(&format!("{t}/bookings"), ct, t_auth, &body)
            .await;
        check(format!("POST bookings with content type {ct}"), r);
    }

    assert!(
        failures.is_empty(),
        "{} bad answers:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Both services still answer normally afterwards.
    for base in [&sys.traveler, &sys.owner] {
        assert_eq!(
            raw.send(Method::GET, &format!("{base}/health"), &[], None)
                .await
                .status,
            200
        );
    }
    sys.traveler_get(traveler, &format!("bookings/{bid}"))
        .await
        .expect(200);
}
