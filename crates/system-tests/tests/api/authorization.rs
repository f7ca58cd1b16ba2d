//! Who may call what: bad tokens on every protected endpoint, other users' data.

use crate::helpers::*;

#[tokio::test]
async fn every_protected_endpoint_refuses_missing_bad_expired_forged_and_wrong_role_tokens() {
    let scene = Scene::new("Lisbon").await;
    let sys = &scene.sys;
    let (owner, traveler) = (&scene.owner, &scene.traveler);
    let (pid, bid) = (&scene.pid, &scene.bid);

    let traveler_cases = bad_credentials(traveler, Role::Traveler, owner);
    let owner_cases = bad_credentials(owner, Role::Owner, traveler);
    for e in endpoints().iter().filter(|e| e.is_protected()) {
        let cases = if e.role == Some(Role::Traveler) {
            &traveler_cases
        } else {
            &owner_cases
        };
        let (method, url) = (&e.method, scene.url(e));
        for (what, auth, status, code) in cases {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(a) = auth {
                headers.push(("authorization", a.as_str()));
            }
            let r = scene
                .send(e, &headers, scene.sample_body(e).map(String::into_bytes))
                .await;
            assert_eq!(r.status, *status, "{method} {url} with {what}: {}", r.text);
            r.problem(*status, code);
            if *status == 401 {
                assert_eq!(
                    r.headers
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{method} {url} with {what}"
                );
            }
        }
    }

    // None of those requests changed anything.
    let seen = sys
        .owner_get(owner, &format!("bookings/{bid}"))
        .await
        .expect(200);
    assert_eq!(seen["booking"]["status"], "PENDING");
    let mine = sys.owner_get(owner, "properties").await.expect(200);
    assert_eq!(ids(&mine["properties"]), set(&[pid]));
    assert_eq!(mine["properties"][0]["name"], "Flat in Lisbon");
    assert_eq!(mine["properties"][0]["active"], true);
    assert_eq!(mine["properties"][0]["version"], 1);
    let trips = sys.traveler_get(traveler, "bookings").await.expect(200);
    assert_eq!(ids(&trips["bookings"]), set(&[bid]));
    assert!(
        trips["bookings"][0]["cancellation_requested_at"].is_null(),
        "{trips}"
    );
    assert_eq!(
        request_events(sys).len(),
        1,
        "a refused request published an event"
    );
}

#[tokio::test]
async fn other_users_bookings_and_properties_are_404_and_never_listed() {
    let sys = System::embedded().await;
    let (owner_a, owner_b) = (sys.owner_signup("Ann").await, sys.owner_signup("Ben").await);
    let (traveler_a, traveler_b) = (
        sys.traveler_signup("Tia").await,
        sys.traveler_signup("Tim").await,
    );
    let property = sys.create_property(&owner_a, "Faro").await;
    let pid = str_of(&property["id"]);
    sys.wait_catalog(&traveler_a, &pid, 1).await;
    let booking = sys.book(&traveler_a, &pid, 10, 2).await;
    let bid = str_of(&booking["id"]);
    sys.wait_owner_sees(&owner_a, &bid).await;
    wait_owner_notifications(&sys, &owner_a, 1).await;

    let reason = || Some(json!({"reason": "not yours"}));

    // Owner B: another owner's property and booking do not exist for them, exactly like unknown ids.
    for (property_id, booking_id) in [(pid.as_str(), bid.as_str()), ("no-such-id", "no-such-id")] {
        let property = format!("properties/{property_id}");
        let mut answers = Vec::new();
        for r in [
            sys.owner_get(&owner_b, &property).await,
            sys.owner_put(&owner_b, &property, Some(json!({"name": "Mine now"})))
                .await,
            sys.owner_delete(&owner_b, &property).await,
            sys.owner_get(&owner_b, &format!("bookings/{booking_id}"))
                .await,
            sys.decide(&owner_b, booking_id, "approve", None).await,
            sys.decide(&owner_b, booking_id, "reject", reason()).await,
            sys.decide(&owner_b, booking_id, "cancel", reason()).await,
            // Traveler B: another traveler's booking does not exist for them.
            sys.traveler_get(&traveler_b, &format!("bookings/{booking_id}"))
                .await,
            traveler_cancel(&sys, &traveler_b, booking_id, reason()).await,
        ] {
            answers.push(r.expect_problem(404, "not_found"));
        }
        for a in &answers {
            assert!(
                !a.to_string().contains(&owner_a.id),
                "owner id revealed: {a}"
            );
            assert!(
                !a.to_string().contains(&traveler_a.id),
                "traveler id revealed: {a}"
            );
        }
    }
    // The detail of "yours does not exist" equals the detail of "nobody's exists".
    let others = format!("bookings/{bid}");
    assert_eq!(
        sys.owner_get(&owner_b, &others).await.body,
        sys.owner_get(&owner_b, "bookings/nope").await.body
    );
    assert_eq!(
        sys.traveler_get(&traveler_b, &others).await.body,
        sys.traveler_get(&traveler_b, "bookings/nope").await.body
    );

    // Lists never include them.
    let b_props = sys.owner_get(&owner_b, "properties").await.expect(200);
    assert_eq!(b_props, json!({"properties": [], "next_cursor": null}));
    for q in ["", "?status=PENDING", &format!("?property_id={pid}")] {
        let b_bookings = sys
            .owner_get(&owner_b, &format!("bookings{q}"))
            .await
            .expect(200);
        assert_eq!(
            b_bookings,
            json!({"bookings": [], "next_cursor": null}),
            "owner B bookings{q}"
        );
    }
    assert_eq!(
        sys.traveler_get(&traveler_b, "bookings").await.expect(200),
        json!({"bookings": [], "next_cursor": null})
    );
    assert_eq!(sys.owner_notifications(&owner_b).await, Vec::<Value>::new());
    assert_eq!(
        sys.traveler_notifications(&traveler_b).await,
        Vec::<Value>::new()
    );

    // And the owners' own view is untouched.
    let mine = sys
        .owner_get(&owner_a, &format!("properties/{pid}"))
        .await
        .expect(200);
    assert_eq!(mine["property"]["name"], "Flat in Faro");
    assert_eq!(mine["property"]["active"], true);
    assert_eq!(mine["property"]["version"], 1);
    let b = sys.owner_get(&owner_a, &others).await.expect(200);
    assert_eq!(b["booking"]["status"], "PENDING");
    let b = sys.traveler_get(&traveler_a, &others).await.expect(200);
    assert!(b["booking"]["cancellation_requested_at"].is_null(), "{b}");
    let a_bookings = sys
        .owner_get(&owner_a, &format!("bookings?property_id={pid}"))
        .await
        .expect(200);
    assert_eq!(ids(&a_bookings["bookings"]), set(&[&bid]));
}
