//! owner-service: owners create, read, update and delist their properties.

use crate::helpers::*;

#[tokio::test]
async fn owners_create_read_update_and_delist_their_properties() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let other = sys.owner_signup("Oscar").await;

    // Create with every field.
    let full = create_property_with(
        &sys,
        &owner,
        json!({
            "name": " Sunny flat ", "city": "Lisbon", "country": "PT", "address": "Rua A 1",
            "description": "Bright and quiet", "price_per_night_cents": 12345, "cleaning_fee_cents": 1000,
            "service_fee_cents": 250, "currency": "eur", "max_guests": 4, "bedrooms": 2, "bathrooms": 1,
            "amenities": ["wifi", " kitchen "],
        }),
    )
    .await;
    assert!(full.content_type.starts_with("application/json"));
    let full = full.expect(201);
    assert_eq!(full.as_object().unwrap().len(), 1, "{full}");
    let p = &full["property"];
    let pid = str_of(&p["id"]);
    assert_eq!(p["owner_id"], owner.id.as_str());
    assert_eq!(p["active"], true);
    assert_eq!(p["name"], "Sunny flat");
    assert_eq!(p["city"], "Lisbon");
    assert_eq!(p["country"], "PT");
    assert_eq!(p["address"], "Rua A 1");
    assert_eq!(p["description"], "Bright and quiet");
    assert_eq!(p["price_per_night_cents"], 12345);
    assert_eq!(p["cleaning_fee_cents"], 1000);
    assert_eq!(p["service_fee_cents"], 250);
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["max_guests"], 4);
    assert_eq!(p["bedrooms"], 2);
    assert_eq!(p["bathrooms"], 1);
    assert_eq!(p["amenities"], json!(["wifi", "kitchen"]));
    assert_utc_timestamp(&p["created_at"], "property.created_at");
    assert_utc_timestamp(&p["updated_at"], "property.updated_at");

    // Create with only the required fields: defaults.
    let min = create_property_with(
        &sys,
        &owner,
        json!({"name": "Cabin", "city": "Sintra", "country": "PT", "price_per_night_cents": 5000, "max_guests": 2}),
    )
    .await
    .expect(201)["property"]
        .clone();
    let min_id = str_of(&min["id"]);
    assert_eq!(min["currency"], "USD");
    assert_eq!(min["cleaning_fee_cents"], 0);
    assert_eq!(min["service_fee_cents"], 0);
    assert_eq!(min["amenities"], json!([]));
    assert_eq!(min["active"], true);
    assert!(
        min["address"].is_null() && min["bedrooms"].is_null(),
        "{min}"
    );
    assert_ne!(min_id, pid);

    // Another owner's property never shows in my list.
    let theirs = sys.create_property(&other, "Porto").await;
    let list = sys.owner_get(&owner, "properties").await.expect(200);
    assert_eq!(ids(&list["properties"]), set(&[&pid, &min_id]));
    let their_list = sys.owner_get(&other, "properties").await.expect(200);
    assert_eq!(
        ids(&their_list["properties"]),
        set(&[theirs["id"].as_str().unwrap()])
    );

    // Read one.
    let shown = sys
        .owner_get(&owner, &format!("properties/{pid}"))
        .await
        .expect(200);
    assert_eq!(shown["property"], *p);

    // Update a subset: the rest stays.
    let updated = sys
        .update_property(
            &owner,
            &pid,
            json!({"name": "Sunnier flat", "max_guests": 6, "price_per_night_cents": 15000}),
        )
        .await
        .expect(200)["property"]
        .clone();
    assert_eq!(updated["id"], pid.as_str());
    assert_eq!(updated["name"], "Sunnier flat");
    assert_eq!(updated["max_guests"], 6);
    assert_eq!(updated["price_per_night_cents"], 15000);
    assert_eq!(updated["city"], "Lisbon");
    assert_eq!(updated["currency"], "EUR");
    assert_eq!(updated["amenities"], json!(["wifi", "kitchen"]));
    assert_eq!(updated["created_at"], p["created_at"]);
    assert!(updated["updated_at"].as_str() >= p["updated_at"].as_str());
    assert_eq!(updated["version"], 2);

    // An invalid update is refused whole and changes nothing.
    expect_invalid(
        sys.update_property(
            &owner,
            &pid,
            json!({"name": "Changed", "price_per_night_cents": 0}),
        )
        .await,
        &["price_per_night_cents"],
    );
    let after = sys
        .owner_get(&owner, &format!("properties/{pid}"))
        .await
        .expect(200);
    assert_eq!(after["property"], updated);

    // Validation: every missing required field at once, then every bad value at once.
    expect_invalid(
        create_property_with(&sys, &owner, json!({})).await,
        &[
            "name",
            "city",
            "country",
            "price_per_night_cents",
            "max_guests",
        ],
    );
    expect_invalid(
        create_property_with(
            &sys,
            &owner,
            json!({
                "name": "   ", "city": "Lisbon", "country": "PT", "price_per_night_cents": 0,
                "cleaning_fee_cents": -1, "service_fee_cents": 100_000_001, "currency": "US",
                "max_guests": 0, "bedrooms": 101, "bathrooms": 101, "amenities": [""],
            }),
        )
        .await,
        &[
            "name",
            "price_per_night_cents",
            "cleaning_fee_cents",
            "service_fee_cents",
            "currency",
            "max_guests",
            "bedrooms",
            "bathrooms",
            "amenities",
        ],
    );
    let mut too_many = property_body("Lisbon", 101);
    expect_invalid(
        create_property_with(&sys, &owner, too_many.clone()).await,
        &["max_guests"],
    );
    too_many["max_guests"] = json!(4);
    too_many["price_per_night_cents"] = json!("10000");
    expect_invalid(
        create_property_with(&sys, &owner, too_many).await,
        &["price_per_night_cents"],
    );
    let list = sys.owner_get(&owner, "properties").await.expect(200);
    assert_eq!(
        list["properties"].as_array().unwrap().len(),
        2,
        "a refused create was saved"
    );

    // Unknown ids: 404.
    sys.owner_get(&owner, "properties/no-such-id")
        .await
        .expect_problem(404, "not_found");
    sys.owner_put(&owner, "properties/no-such-id", Some(json!({"name": "x"})))
        .await
        .expect_problem(404, "not_found");
    sys.owner_delete(&owner, "properties/no-such-id")
        .await
        .expect_problem(404, "not_found");

    // Delist: 200 with active false; still the owner's, and delisting again changes nothing.
    let delisted = sys
        .owner_delete(&owner, &format!("properties/{min_id}"))
        .await
        .expect(200);
    assert_eq!(delisted["property"]["id"], min_id.as_str());
    assert_eq!(delisted["property"]["active"], false);
    assert_eq!(delisted["property"]["name"], "Cabin");
    let again = sys
        .owner_delete(&owner, &format!("properties/{min_id}"))
        .await
        .expect(200);
    assert_eq!(again["property"]["active"], false);
    let shown = sys
        .owner_get(&owner, &format!("properties/{min_id}"))
        .await
        .expect(200);
    assert_eq!(shown["property"]["active"], false);
    let list = sys.owner_get(&owner, "properties").await.expect(200);
    assert_eq!(ids(&list["properties"]), set(&[&pid, &min_id]));
}
