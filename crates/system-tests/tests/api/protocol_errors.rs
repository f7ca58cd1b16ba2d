//! Protocol-level errors (unknown routes, methods, content types, malformed
//! JSON, bodies too large, bad queries and headers) are problem documents.

use crate::helpers::*;

#[tokio::test]
async fn protocol_errors_are_problem_documents_with_the_right_status() {
    let scene = Scene::new("Braga").await;
    let (sys, raw) = (&scene.sys, &scene.raw);
    let (owner, traveler) = (&scene.owner, &scene.traveler);
    let (pid, bid) = (&scene.pid, &scene.bid);
    let (t, o) = (&scene.t, &scene.o);
    let (t_auth, o_auth) = (scene.t_auth.as_str(), scene.o_auth.as_str());
    let json_ct = ("content-type", "application/json");

    // Unknown routes: 404 on both services, with or without a token.
    for url in [
        format!("{t}/nope"),
        format!("{o}/nope"),
        format!("{}/nope", sys.traveler),
        // `/` is the owner app (tests/web_sessions.rs); other root paths are not routes.
        format!("{}/nope.html", sys.owner),
        format!("{t}/bookings/{bid}/approve"),
        format!("{o}/bookings/{bid}/cancel/now"),
        format!("{t}/bookings/"),
    ] {
        raw.send(Method::GET, &url, &[], None)
            .await
            .problem(404, "route_not_found");
        raw.send(Method::GET, &url, &[("authorization", t_auth)], None)
            .await
            .problem(404, "route_not_found");
    }

    // Wrong methods: 405 with Allow.
    for (method, url) in [
        (Method::DELETE, format!("{t}/bookings")),
        (Method::PATCH, format!("{o}/properties")),
        (Method::GET, format!("{t}/signup")),
        (Method::PUT, format!("{o}/login")),
        (Method::POST, format!("{o}/me")),
        (Method::GET, format!("{o}/bookings/{bid}/approve")),
        (Method::POST, format!("{t}/bookings/{bid}")),
        (Method::DELETE, format!("{t}/notifications")),
        (Method::OPTIONS, format!("{o}/properties")),
    ] {
        let r = raw
            .send(method.clone(), &url, &[("authorization", t_auth)], None)
            .await;
        r.problem(405, "method_not_allowed");
        assert!(
            r.headers.contains_key("allow"),
            "{method} {url} lacks Allow"
        );
    }

    // Wrong or missing content type: 415, on every endpoint that reads a
    // body (an optional one too, when there is one).
    let signup_body =
        br#"{"name":"Eve","email":"eve@example.com","password":"long-enough-1"}"#.to_vec();
    for e in endpoints().iter().filter(|e| e.takes_body()) {
        let bearer = scene.authorization(e);
        for ct in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/xml"),
            None,
        ] {
            let mut headers = Vec::new();
            if let Some(ct) = ct {
                headers.push(("content-type", ct));
            }
            if let Some(a) = bearer {
                headers.push(("authorization", a));
            }
            let body = scene.sample_body(e).map(String::into_bytes);
            scene
                .send(e, &headers, body)
                .await
                .problem(415, "unsupported_media_type");
        }
    }
    // JSON with parameters or a +json suffix is JSON.
    for ct in [
        "application/json; charset=utf-8",
        "application/vnd.booking+json",
    ] {
        let body = property_body("Evora", 2);
        let r = raw
            .post_labelled(&format!("{o}/properties"), ct, o_auth, &body)
            .await;
        assert_eq!(r.status, 201, "{ct}: {}", r.text);
    }

    // Malformed JSON and empty bodies: 400 malformed_json.
    for body in [
        &b"{"[..],
        b"{\"name\": ",
        b"not json",
        b"",
        b"   ",
        b"{'a':1}",
        b"{\"name\":\"x\",}",
    ] {
        for e in endpoints().iter().filter(|e| e.body == Body::Required) {
            scene
                .send_json(e, body)
                .await
                .problem(400, "malformed_json");
        }
        let auth = [json_ct, ("authorization", o_auth)];
        // Cancel's body is optional: an empty one means "no reason" (400
        // validation_failed); a broken non-empty one is malformed.
        let expected = if body.iter().all(u8::is_ascii_whitespace) {
            "validation_failed"
        } else {
            "malformed_json"
        };
        raw.send(
            Method::PUT,
            &format!("{o}/bookings/{bid}/cancel"),
            &auth,
            Some(body.to_vec()),
        )
        .await
        .problem(400, expected);
    }
    // A complete, valid object followed by anything else is not JSON either;
    // the optional-body endpoints take "no body" as "no reason", but not a broken one.
    let mut trailing = signup_body.clone();
    trailing.extend_from_slice(b" trailing");
    let broken_reason = b"{\"reason\":".to_vec();
    for (method, url, auth, body) in [
        (Method::POST, format!("{t}/signup"), None, trailing),
        (
            Method::PUT,
            format!("{t}/bookings/{bid}/cancel"),
            Some(t_auth),
            broken_reason.clone(),
        ),
        (
            Method::PUT,
            format!("{o}/bookings/{bid}/reject"),
            Some(o_auth),
            broken_reason,
        ),
    ] {
        let mut headers = vec![json_ct];
        headers.extend(auth.map(|a| ("authorization", a)));
        raw.send(method, &url, &headers, Some(body))
            .await
            .problem(400, "malformed_json");
    }

    // JSON that is not an object: 400 validation_failed on the body.
    for body in [&b"[]"[..], b"\"text\"", b"42", b"null", b"true"] {
        let r = raw
            .json(Method::POST, &format!("{o}/signup"), None, body)
            .await;
        r.problem(400, "validation_failed");
        assert!(!error_fields(&r.body).is_empty());
        raw.json(
            Method::POST,
            &format!("{t}/bookings"),
            Some(&traveler.token),
            body,
        )
        .await
        .problem(400, "validation_failed");
    }
    // Unknown property fields are refused, naming the field.
    let r = raw
        .json(
            Method::PUT,
            &format!("{o}/properties/{pid}"),
            Some(&owner.token),
            br#"{"colour":"red"}"#,
        )
        .await;
    r.problem(400, "validation_failed");
    assert!(
        r.body["errors"].to_string().contains("colour"),
        "{}",
        r.text
    );

    // Bodies over 64 KiB: 413, whatever the endpoint.
    let big_name = "x".repeat(70 * 1024);
    let big = json!({"name": big_name, "email": "big@example.com", "password": "long-enough-1", "reason": big_name})
        .to_string()
        .into_bytes();
    for e in endpoints().iter().filter(|e| e.takes_body()) {
        scene
            .send_json(e, &big)
            .await
            .problem(413, "payload_too_large");
    }
    // Just under the limit is read (and then judged on its content).
    let near = json!({"name": "n".repeat(60 * 1024), "email": "near@example.com", "password": "long-enough-1"});
    expect_invalid(
        sys.http.post(&format!("{t}/signup"), None, near).await,
        &["name"],
    );

    // Bad query parameters: 400 naming the parameter.
    let bad_statuses = [
        (format!("{t}/bookings?status=LOST"), t_auth, "status"),
        (format!("{o}/bookings?status=DONE"), o_auth, "status"),
    ];
    let bad_guests = [
        "guests=abc",
        "guests=0",
        "guests=-2",
        "guests=1.5",
        "guests=99999999999999999999",
    ]
    .map(|q| (format!("{t}/properties?{q}"), t_auth, "guests"));
    for (url, auth, field) in bad_statuses.into_iter().chain(bad_guests) {
        let r = raw
            .send(Method::GET, &url, &[("authorization", auth)], None)
            .await;
        r.problem(400, "validation_failed");
        assert_eq!(error_fields(&r.body), fields(&[field]), "{url}");
    }
    raw.send(
        Method::GET,
        &format!("{t}/bookings?status=PENDING&status=ACCEPTED"),
        &[("authorization", t_auth)],
        None,
    )
    .await
    .problem(400, "invalid_query");

    // A bad Idempotency-Key: 400 naming the header; nothing is created.
    let r = create_booking_with_key(sys, traveler, stay(pid, 50, 2, 2), &"k".repeat(256)).await;
    expect_invalid(r, &["Idempotency-Key"]);
    let r = RawClient::read(
        raw.0
            .post(format!("{t}/bookings"))
            .header("authorization", t_auth)
            .header("content-type", "application/json")
            .header(
                "idempotency-key",
                reqwest::header::HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
            )
            .body(stay(pid, 50, 2, 2).to_string()),
        "bookings with a non-ASCII key",
    )
    .await;
    r.problem(400, "validation_failed");
    let trips = sys.traveler_get(traveler, "bookings").await.expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[bid]));
}
