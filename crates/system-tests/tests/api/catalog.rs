//! traveler-service: the catalog of active properties.

use crate::helpers::*;

#[tokio::test]
async fn the_catalog_shows_active_properties_filters_them_and_forgets_delisted_ones() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let lisbon = create_property_with(
        &sys,
        &owner,
        json!({
            "name": "Sunny flat", "city": "Lisbon", "country": "PT", "price_per_night_cents": 12345,
            "cleaning_fee_cents": 1000, "service_fee_cents": 250, "currency": "EUR", "max_guests": 4,
            "amenities": ["wifi"],
        }),
    )
    .await
    .expect(201)["property"]
        .clone();
    let porto = create_property_with(&sys, &owner, property_body("Porto", 2))
        .await
        .expect(201)["property"]
        .clone();
    let (lid, poid) = (str_of(&lisbon["id"]), str_of(&porto["id"]));
    let seen = sys.wait_catalog(&traveler, &lid, 1).await;
    sys.wait_catalog(&traveler, &poid, 1).await;

    // One property: the same facts the owner listed.
    for k in [
        "id",
        "owner_id",
        "name",
        "city",
        "country",
        "price_per_night_cents",
        "cleaning_fee_cents",
        "service_fee_cents",
        "currency",
        "max_guests",
        "amenities",
    ] {
        assert_eq!(seen[k], lisbon[k], "catalog {k}");
    }
    assert_eq!(seen["active"], true);
    assert!(seen["id"].is_string() && seen["owner_id"].is_string());

    // Search: all, by city (any case), by guests, both.
    let search = |q: &str| {
        let (sys, traveler, path) = (&sys, &traveler, format!("properties{q}"));
        async move { ids(&sys.traveler_get(traveler, &path).await.expect(200)["properties"]) }
    };
    assert_eq!(search("").await, set(&[&lid, &poid]));
    assert_eq!(search("?city=lisbon").await, set(&[&lid]));
    assert_eq!(search("?city=PORTO").await, set(&[&poid]));
    assert_eq!(search("?guests=3").await, set(&[&lid]));
    assert_eq!(search("?guests=2").await, set(&[&lid, &poid]));
    assert_eq!(search("?city=Porto&guests=3").await, set(&[]));
    assert_eq!(search("?city=Nowhere").await, set(&[]));
    assert_eq!(search("?city=&guests=").await, set(&[&lid, &poid]));

    // An update reaches the catalog and the price of new bookings.
    sys.update_property(&owner, &lid, json!({"price_per_night_cents": 20000}))
        .await
        .expect(200);
    let seen = sys.wait_catalog(&traveler, &lid, 2).await;
    assert_eq!(seen["price_per_night_cents"], 20000);
    let booking = create_booking(&sys, &traveler, stay(&lid, 5, 3, 4))
        .await
        .expect(201)["booking"]
        .clone();
    assert_eq!(booking["total_price_cents"], 3 * 20000 + 1000 + 250);
    assert_eq!(booking["currency"], "EUR");
    expect_invalid(
        create_booking(&sys, &traveler, stay(&lid, 5, 3, 5)).await,
        &["guests"],
    );

    // Delisting: 404 in the catalog, gone from searches, unbookable.
    let delisted = sys
        .owner_delete(&owner, &format!("properties/{poid}"))
        .await
        .expect(200);
    assert_eq!(delisted["property"]["active"], false);
    eventually("porto leaves the catalog", PROPAGATION, || async {
        let r = sys
            .traveler_get(&traveler, &format!("properties/{poid}"))
            .await;
        (r.status == 404).then_some(r)
    })
    .await
    .expect_problem(404, "not_found");
    assert_eq!(search("").await, set(&[&lid]));
    assert_eq!(search("?city=porto").await, set(&[]));
    create_booking(&sys, &traveler, stay(&poid, 5, 2, 2))
        .await
        .expect_problem(404, "not_found");

    // Unknown ids: 404.
    sys.traveler_get(&traveler, "properties/no-such-id")
        .await
        .expect_problem(404, "not_found");
    create_booking(&sys, &traveler, stay("no-such-id", 5, 2, 2))
        .await
        .expect_problem(404, "not_found");
}
