//! traveler-service: creating, pricing, listing and reading bookings; idempotency keys.

use crate::helpers::*;

#[tokio::test]
async fn a_booking_is_created_priced_listed_and_read_with_the_contract_shape() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let t = format!("{}/api/travelers", sys.traveler);

    let reply = create_booking(&sys, &traveler, stay(&pid, 7, 4, 3)).await;
    assert!(reply.content_type.starts_with("application/json"));
    let created = reply.expect(201);
    assert_eq!(created.as_object().unwrap().len(), 1, "{created}");
    let b = created["booking"].clone();
    assert_booking_shape(&b);
    let bid = str_of(&b["id"]);
    assert_eq!(b["property_id"], pid.as_str());
    assert_eq!(b["owner_id"], owner.id.as_str());
    assert_eq!(b["traveler_id"], traveler.id.as_str());
    assert_eq!(b["check_in"], day(7));
    assert_eq!(b["check_out"], day(11));
    assert_eq!(b["nights"], 4);
    assert_eq!(b["guests"], 3);
    assert_eq!(b["total_price_cents"], 4 * 10000 + 2000 + 500);
    assert_eq!(b["currency"], "USD");
    assert_eq!(b["status"], "PENDING");

    // Read it back, list it, filter by status (any case).
    assert_eq!(
        sys.http
            .get(&format!("{t}/bookings/{bid}"), Some(&traveler.token))
            .await
            .expect(200)["booking"],
        b
    );
    let second = sys.book(&traveler, &pid, 30, 1).await;
    let sid = str_of(&second["id"]);
    assert_eq!(second["total_price_cents"], 10000 + 2000 + 500);
    for (q, expected) in [
        ("", vec![bid.as_str(), sid.as_str()]),
        ("?status=PENDING", vec![bid.as_str(), sid.as_str()]),
        ("?status=pending", vec![bid.as_str(), sid.as_str()]),
        ("?status=ACCEPTED", vec![]),
        ("?status=", vec![bid.as_str(), sid.as_str()]),
    ] {
        let list = sys
            .http
            .get(&format!("{t}/bookings{q}"), Some(&traveler.token))
            .await
            .expect(200);
        assert_eq!(list.as_object().unwrap().len(), 2, "{list}");
        assert!(list["next_cursor"].is_null(), "one page: {list}");
        assert_eq!(ids(&list["bookings"]), set(&expected), "bookings{q}");
        for item in list["bookings"].as_array().unwrap() {
            assert_booking_shape(item);
        }
    }

    // The owner sees the same booking.
    let mine = sys.wait_owner_sees(&owner, &bid).await;
    assert_booking_shape(&mine);
    for k in [
        "id",
        "property_id",
        "owner_id",
        "traveler_id",
        "check_in",
        "check_out",
        "nights",
        "guests",
        "total_price_cents",
        "currency",
        "status",
    ] {
        assert_eq!(mine[k], b[k], "owner's booking.{k}");
    }
    sys.wait_owner_sees(&owner, &sid).await;
    let list = sys.owner_get(&owner, "bookings").await.expect(200);
    assert_eq!(ids(&list["bookings"]), set(&[&bid, &sid]));
    for (q, expected) in [
        (
            format!("?property_id={pid}"),
            vec![bid.as_str(), sid.as_str()],
        ),
        ("?property_id=other".to_string(), vec![]),
        (
            "?status=PENDING".to_string(),
            vec![bid.as_str(), sid.as_str()],
        ),
        ("?status=REJECTED".to_string(), vec![]),
        (
            format!("?status=pending&property_id={pid}"),
            vec![bid.as_str(), sid.as_str()],
        ),
    ] {
        let list = sys
            .owner_get(&owner, &format!("bookings{q}"))
            .await
            .expect(200);
        assert_eq!(ids(&list["bookings"]), set(&expected), "owner bookings{q}");
    }
}

#[tokio::test]
async fn invalid_booking_requests_are_refused_with_the_offending_fields() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let property = sys.create_property(&owner, "Lisbon").await; // hosts 4
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler, &pid, 1).await;

    let cases: Vec<(Value, &[&str])> = vec![
        (stay(&pid, -1, 3, 2), &["check_in"]),
        (stay(&pid, -30, 3, 2), &["check_in"]),
        (stay(&pid, 5, 0, 2), &["check_out"]),
        (stay(&pid, 5, -2, 2), &["check_out"]),
        (stay(&pid, 5, 366, 2), &["check_out"]),
        (stay(&pid, 5, 3, 0), &["guests"]),
        (stay(&pid, 5, 3, 5), &["guests"]),
        (stay(&pid, 5, 3, -1), &["guests"]),
        (stay(&pid, -1, 0, 0), &["check_in", "check_out", "guests"]),
        (stay("", 5, 3, 2), &["property_id"]),
        (
            json!({"property_id": pid, "check_in": "2030-02-30", "check_out": day(9), "guests": 2}),
            &["check_in"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": "next week", "guests": 2}),
            &["check_out"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8), "guests": "2"}),
            &["guests"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8), "guests": 2.5}),
            &["guests"],
        ),
        (
            json!({"property_id": 42, "check_in": day(5), "check_out": day(8), "guests": 2}),
            &["property_id"],
        ),
        (
            json!({"check_in": day(5), "check_out": day(8), "guests": 2}),
            &["property_id"],
        ),
        (
            json!({"property_id": pid, "check_out": day(8), "guests": 2}),
            &["check_in"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "guests": 2}),
            &["check_out"],
        ),
        (
            json!({"property_id": pid, "check_in": day(5), "check_out": day(8)}),
            &["guests"],
        ),
        (
            json!({"property_id": pid, "check_in": null, "check_out": day(8), "guests": 2}),
            &["check_in"],
        ),
    ];
    for (body, expected) in cases {
        let r = create_booking(&sys, &traveler, body.clone()).await;
        let problem = r.expect_problem(400, "validation_failed");
        assert_eq!(
            error_fields(&problem),
            fields(expected),
            "{body} → {problem}"
        );
    }
    create_booking(&sys, &traveler, stay("no-such-property", 5, 3, 2))
        .await
        .expect_problem(404, "not_found");
    let trips = sys.traveler_get(&traveler, "bookings").await.expect(200);
    assert_eq!(
        trips,
        json!({"bookings": [], "next_cursor": null}),
        "a refused request was saved"
    );

    // The limits themselves are allowed: today, 365 nights, max_guests.
    let today = create_booking(&sys, &traveler, stay(&pid, 0, 1, 1))
        .await
        .expect(201);
    assert_eq!(today["booking"]["nights"], 1);
    let year = create_booking(&sys, &traveler, stay(&pid, 400, 365, 4))
        .await
        .expect(201);
    assert_eq!(year["booking"]["nights"], 365);
    assert_eq!(
        year["booking"]["total_price_cents"],
        365 * 10000 + 2000 + 500
    );
    let (a, b) = (
        str_of(&today["booking"]["id"]),
        str_of(&year["booking"]["id"]),
    );
    wait_requested_published(&sys, &a).await;
    wait_requested_published(&sys, &b).await;
    assert_eq!(
        request_events(&sys).len(),
        2,
        "only the accepted requests are published"
    );
}

/// A stay of 2 nights from day 20 for 2 guests, booked under a fresh
/// `Idempotency-Key`: the key, the body, and the 201's booking.
async fn keyed_booking(sys: &System, traveler: &User, pid: &str) -> (String, Value, Value) {
    let key = unique("retry");
    let body = stay(pid, 20, 2, 2);
    let first = create_booking_with_key(sys, traveler, body.clone(), &key)
        .await
        .expect(201)["booking"]
        .clone();
    (key, body, first)
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_booking_and_refuses_a_different_body() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let other = sys.traveler_signup("Tina").await;
    let (key, body, first) = keyed_booking(&sys, &traveler, &pid).await;
    let id = str_of(&first["id"]);
    wait_requested_published(&sys, &id).await;

    // Same key, same body: 201 with the same booking, however often.
    for _ in 0..3 {
        let again = create_booking_with_key(&sys, &traveler, body.clone(), &key)
            .await
            .expect(201);
        assert_eq!(again["booking"], first);
    }
    // Same key, different body: 422; the key stays bound to the first booking.
    for changed in [
        stay(&pid, 20, 2, 3),
        stay(&pid, 21, 2, 2),
        stay(&pid, 20, 3, 2),
    ] {
        create_booking_with_key(&sys, &traveler, changed, &key)
            .await
            .expect_problem(422, "idempotency_key_reused");
    }
    let again = create_booking_with_key(&sys, &traveler, body.clone(), &key)
        .await
        .expect(201);
    assert_eq!(again["booking"]["id"], id.as_str());

    // Keys belong to one traveler: another traveler's identical request is a new booking.
    let theirs = create_booking_with_key(&sys, &other, body.clone(), &key)
        .await
        .expect(201)["booking"]
        .clone();
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(theirs["traveler_id"], other.id.as_str());
    // A different key is a different booking.
    let fresh = create_booking_with_key(&sys, &traveler, body.clone(), &unique("other"))
        .await
        .expect(201);
    let fresh_id = str_of(&fresh["booking"]["id"]);
    assert_ne!(fresh_id, id);

    // Events are published in order: once the later bookings are out, any
    // event from the retries would be too. The first booking was published once.
    wait_requested_published(&sys, &fresh_id).await;
    wait_requested_published(&sys, theirs["id"].as_str().unwrap()).await;
    assert_eq!(
        requested_events(&sys, &id),
        1,
        "a retry published the booking again"
    );
    assert_eq!(request_events(&sys).len(), 3);

    let trips = sys.traveler_get(&traveler, "bookings").await.expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[&id, &fresh_id]));
    let notes = wait_owner_notifications(&sys, &owner, 3).await;
    assert_eq!(notes.len(), 3);
    assert_eq!(
        notes
            .iter()
            .filter(|n| n["booking_id"] == id.as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_booking_even_after_the_property_was_delisted() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let (key, body, first) = keyed_booking(&sys, &traveler, &pid).await;
    sys.wait_owner_sees(&owner, first["id"].as_str().unwrap())
        .await;

    sys.owner_delete(&owner, &format!("properties/{pid}"))
        .await
        .expect(200);
    eventually("the property leaves the catalog", PROPAGATION, || async {
        let r = sys
            .traveler_get(&traveler, &format!("properties/{pid}"))
            .await;
        (r.status == 404).then_some(())
    })
    .await;

    // The booking exists: a client retrying its request (say, after a lost
    // response) must learn about it rather than be told the property is gone.
    let retry = create_booking_with_key(&sys, &traveler, body, &key).await;
    assert_eq!(
        retry.status.as_u16(),
        201,
        "POST /api/travelers/bookings retried with the same Idempotency-Key and body after the \
         property was delisted: expected 201 with booking {}, got {} {}",
        first["id"],
        retry.status,
        retry.body
    );
    assert_eq!(retry.body["booking"]["id"], first["id"]);
}
