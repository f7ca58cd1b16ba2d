//! Owners' decisions and travelers' cancellations, and the notifications they cause.

use crate::helpers::*;

#[tokio::test]
async fn owners_approve_reject_and_cancel_by_the_state_rules_and_travelers_are_told() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let b1 = str_of(&sys.book(&traveler, &pid, 10, 3).await["id"]); // nights 10, 11, 12
    let b2 = str_of(&sys.book(&traveler, &pid, 30, 2).await["id"]);
    let b3 = str_of(&sys.book(&traveler, &pid, 40, 2).await["id"]);
    let b4 = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]); // overlaps b1
    let b5 = str_of(&sys.book(&traveler, &pid, 13, 2).await["id"]); // starts the day b1 ends
    for id in [&b1, &b2, &b3, &b4, &b5] {
        let seen = sys.wait_owner_sees(&owner, id).await;
        assert_eq!(seen["status"], "PENDING");
        assert_eq!(seen["owner_id"], owner.id.as_str());
    }

    // Approve: 200 ACCEPTED; not twice, and an accepted booking cannot be rejected.
    let approved = sys.decide(&owner, &b1, "approve", None).await.expect(200);
    assert_eq!(approved.as_object().unwrap().len(), 1);
    assert_booking_shape(&approved["booking"]);
    assert_eq!(approved["booking"]["id"], b1.as_str());
    assert_eq!(approved["booking"]["status"], "ACCEPTED");
    sys.decide(&owner, &b1, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(
        &owner,
        &b1,
        "reject",
        Some(json!({"reason": "changed my mind"})),
    )
    .await
    .expect_problem(409, "invalid_transition");

    // Reject with a reason (trimmed), and without a body at all.
    let rejected = sys
        .decide(
            &owner,
            &b2,
            "reject",
            Some(json!({"reason": "  Owner is away  "})),
        )
        .await
        .expect(200);
    assert_eq!(rejected["booking"]["status"], "REJECTED");
    assert_eq!(rejected["booking"]["status_reason"], "Owner is away");
    expect_invalid(
        sys.decide(&owner, &b3, "reject", too_long_reason()).await,
        &["reason"],
    );
    let rejected = sys.decide(&owner, &b3, "reject", None).await.expect(200);
    assert_eq!(rejected["booking"]["status"], "REJECTED");
    assert!(rejected["booking"]["status_reason"].is_null());
    // A rejected booking is final.
    sys.decide(&owner, &b2, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(&owner, &b2, "cancel", Some(json!({"reason": "x"})))
        .await
        .expect_problem(409, "invalid_transition");
    sys.decide(&owner, &b2, "reject", None)
        .await
        .expect_problem(409, "invalid_transition");

    // Overlapping an accepted booking: 409 and the booking stays PENDING; adjacent is fine.
    sys.decide(&owner, &b4, "approve", None)
        .await
        .expect_problem(409, "dates_unavailable");
    let still = sys
        .owner_get(&owner, &format!("bookings/{b4}"))
        .await
        .expect(200);
    assert_eq!(still["booking"]["status"], "PENDING");
    assert_eq!(
        sys.decide(&owner, &b5, "approve", None).await.expect(200)["booking"]["status"],
        "ACCEPTED"
    );

    // Owner cancel: a reason is required (400) and nothing changes without one.
    for body in [json!({}), json!({"reason": "   "}), json!({"reason": null})] {
        expect_invalid(
            sys.decide(&owner, &b1, "cancel", Some(body)).await,
            &["reason"],
        );
    }
    // No body at all is "without a reason" too: 400, not 415.
    expect_invalid(sys.decide(&owner, &b1, "cancel", None).await, &["reason"]);
    expect_invalid(
        sys.decide(&owner, &b1, "cancel", too_long_reason()).await,
        &["reason"],
    );
    let still = sys
        .owner_get(&owner, &format!("bookings/{b1}"))
        .await
        .expect(200);
    assert_eq!(still["booking"]["status"], "ACCEPTED");
    let cancelled = sys
        .decide(&owner, &b1, "cancel", Some(json!({"reason": "Pipe burst"})))
        .await
        .expect(200);
    assert_eq!(cancelled["booking"]["status"], "CANCELLED");
    assert_eq!(cancelled["booking"]["status_reason"], "Pipe burst");
    sys.decide(&owner, &b1, "cancel", Some(json!({"reason": "again"})))
        .await
        .expect_problem(409, "invalid_transition");

    // With b1 cancelled its nights are free again.
    assert_eq!(
        sys.decide(&owner, &b4, "approve", None).await.expect(200)["booking"]["status"],
        "ACCEPTED"
    );

    // Owner-side filters reflect the decisions.
    let by_status = |s: &str| {
        let (sys, owner, path) = (&sys, &owner, format!("bookings?status={s}"));
        async move { ids(&sys.owner_get(owner, &path).await.expect(200)["bookings"]) }
    };
    assert_eq!(by_status("ACCEPTED").await, set(&[&b4, &b5]));
    assert_eq!(by_status("REJECTED").await, set(&[&b2, &b3]));
    assert_eq!(by_status("CANCELLED").await, set(&[&b1]));
    assert_eq!(by_status("PENDING").await, set(&[]));

    // The traveler sees every outcome, with reasons, and one notification per change.
    let t1 = sys.wait_traveler_status(&traveler, &b1, "CANCELLED").await;
    assert_eq!(t1["status_reason"], "Pipe burst");
    let t2 = sys.wait_traveler_status(&traveler, &b2, "REJECTED").await;
    assert_eq!(t2["status_reason"], "Owner is away");
    sys.wait_traveler_status(&traveler, &b3, "REJECTED").await;
    sys.wait_traveler_status(&traveler, &b4, "ACCEPTED").await;
    sys.wait_traveler_status(&traveler, &b5, "ACCEPTED").await;
    let notes = wait_traveler_notifications(&sys, &traveler, 6).await;
    assert_eq!(notes.len(), 6, "{notes:?}");
    assert_notifications_shape(&notes);
    let summary: BTreeSet<(String, String, String)> = notification_summaries(&notes)
        .into_iter()
        .map(|(b, s, r)| (b, s, r.to_string()))
        .collect();
    let expected: BTreeSet<(String, String, String)> = [
        (&b1, "ACCEPTED", Value::Null),
        (&b1, "CANCELLED", json!("Pipe burst")),
        (&b2, "REJECTED", json!("Owner is away")),
        (&b3, "REJECTED", Value::Null),
        (&b4, "ACCEPTED", Value::Null),
        (&b5, "ACCEPTED", Value::Null),
    ]
    .into_iter()
    .map(|(b, s, r)| (b.clone(), s.to_string(), r.to_string()))
    .collect();
    assert_eq!(summary, expected);
    assert_eq!(
        notes[0]["booking_id"],
        b4.as_str(),
        "the newest (last decision) comes first"
    );

    // The owner is notified of the five requests only, not of their own decisions.
    let owner_notes = wait_owner_notifications(&sys, &owner, 5).await;
    assert_eq!(owner_notes.len(), 5, "{owner_notes:?}");
    assert_notifications_shape(&owner_notes);
    assert!(
        owner_notes.iter().all(|n| n["status"] == "PENDING"),
        "{owner_notes:?}"
    );
    let requested: BTreeSet<String> = owner_notes
        .iter()
        .map(|n| str_of(&n["booking_id"]))
        .collect();
    assert_eq!(requested, set(&[&b1, &b2, &b3, &b4, &b5]));
}

#[tokio::test]
async fn travelers_cancel_pending_and_accepted_bookings_through_owner_service() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;

    // A PENDING booking, cancelled with a reason.
    let b1 = str_of(&sys.book(&traveler, &pid, 10, 2).await["id"]);
    sys.wait_owner_sees(&owner, &b1).await;
    expect_invalid(
        traveler_cancel(&sys, &traveler, &b1, too_long_reason()).await,
        &["reason"],
    );
    let accepted = traveler_cancel(
        &sys,
        &traveler,
        &b1,
        Some(json!({"reason": "Plans changed"})),
    )
    .await;
    assert!(accepted.content_type.starts_with("application/json"));
    let accepted = accepted.expect(202);
    assert_booking_shape(&accepted["booking"]);
    assert_eq!(accepted["booking"]["id"], b1.as_str());
    assert!(
        ["PENDING", "CANCELLED"].contains(&accepted["booking"]["status"].as_str().unwrap()),
        "{accepted}"
    );
    let done = sys.wait_traveler_status(&traveler, &b1, "CANCELLED").await;
    assert_eq!(done["status_reason"], "Plans changed");
    let owner_side = sys.wait_owner_status(&owner, &b1, "CANCELLED").await;
    assert_eq!(owner_side["status_reason"], "Plans changed");
    let notes = wait_traveler_notifications(&sys, &traveler, 1).await;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert_eq!(notes[0]["booking_id"], b1.as_str());
    assert_eq!(notes[0]["status"], "CANCELLED");
    assert_eq!(notes[0]["reason"], "Plans changed");
    assert_notifications_shape(&notes);

    // A cancelled booking stays cancelled.
    traveler_cancel(&sys, &traveler, &b1, None)
        .await
        .expect_problem(409, "booking_final");
    sys.decide(&owner, &b1, "approve", None)
        .await
        .expect_problem(409, "invalid_transition");

    // An ACCEPTED booking, cancelled without a body.
    let b2 = str_of(&sys.book(&traveler, &pid, 20, 3).await["id"]);
    sys.wait_owner_sees(&owner, &b2).await;
    sys.decide(&owner, &b2, "approve", None).await.expect(200);
    sys.wait_traveler_status(&traveler, &b2, "ACCEPTED").await;
    let accepted = traveler_cancel(&sys, &traveler, &b2, None)
        .await
        .expect(202);
    assert_eq!(accepted["booking"]["id"], b2.as_str());
    let done = sys.wait_traveler_status(&traveler, &b2, "CANCELLED").await;
    assert!(done["status_reason"].is_null(), "{done}");
    sys.wait_owner_status(&owner, &b2, "CANCELLED").await;

    // The traveler: one notification per change, newest first.
    let notes = wait_traveler_notifications(&sys, &traveler, 3).await;
    assert_eq!(notes.len(), 3, "{notes:?}");
    assert_notifications_shape(&notes);
    let order: Vec<(String, String)> = notification_summaries(&notes)
        .into_iter()
        .map(|(b, s, _)| (b, s))
        .collect();
    assert_eq!(
        order,
        vec![
            (b2.clone(), "CANCELLED".to_string()),
            (b2.clone(), "ACCEPTED".to_string()),
            (b1.clone(), "CANCELLED".to_string()),
        ]
    );

    // The owner: one notification per request and per traveler cancellation, newest first.
    let owner_notes = wait_owner_notifications(&sys, &owner, 4).await;
    assert_eq!(owner_notes.len(), 4, "{owner_notes:?}");
    assert_notifications_shape(&owner_notes);
    assert_eq!(
        notification_summaries(&owner_notes),
        vec![
            (b2.clone(), "CANCELLED".to_string(), Value::Null),
            (b2.clone(), "PENDING".to_string(), Value::Null),
            (b1.clone(), "CANCELLED".to_string(), json!("Plans changed")),
            (b1.clone(), "PENDING".to_string(), Value::Null),
        ]
    );

    // Unknown bookings: 404.
    traveler_cancel(&sys, &traveler, "no-such-id", None)
        .await
        .expect_problem(404, "not_found");
    sys.traveler_get(&traveler, "bookings/no-such-id")
        .await
        .expect_problem(404, "not_found");
}
