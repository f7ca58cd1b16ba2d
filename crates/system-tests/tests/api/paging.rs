//! Every list is paged the same way.

use crate::helpers::*;

/// Reads a paged list from its first page, `limit` at a time (`None`: the
/// default), checking each page's shape; returns the pages' items.
async fn pages(
    sys: &System,
    url: &str,
    token: &str,
    member: &str,
    limit: Option<usize>,
) -> Vec<Vec<Value>> {
    pages_from(sys, url, token, member, limit, None).await
}

/// Like [`pages`], from the page after `cursor`.
async fn pages_from(
    sys: &System,
    url: &str,
    token: &str,
    member: &str,
    limit: Option<usize>,
    mut cursor: Option<String>,
) -> Vec<Vec<Value>> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut pages = Vec::new();
    loop {
        let mut query = Vec::new();
        if let Some(l) = limit {
            query.push(format!("limit={l}"));
        }
        if let Some(c) = &cursor {
            query.push(format!("cursor={c}"));
        }
        let page_url = if query.is_empty() {
            url.to_string()
        } else {
            format!("{url}{separator}{}", query.join("&"))
        };
        let page = sys.http.get(&page_url, Some(token)).await.expect(200);
        let members: BTreeSet<&str> = page
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            members,
            BTreeSet::from([member, "next_cursor"]),
            "{page_url}: {page}"
        );
        let items = page[member].as_array().unwrap().clone();
        assert!(
            items.len() <= limit.unwrap_or(50),
            "{page_url}: {} items",
            items.len()
        );
        pages.push(items);
        match &page["next_cursor"] {
            Value::Null => return pages,
            Value::String(next) => {
                assert!(
                    next.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                    "a cursor needs no URL encoding: {next}"
                );
                cursor = Some(next.clone());
            }
            other => panic!("{page_url}: next_cursor is {other}"),
        }
    }
}

fn item_ids(items: &[Value]) -> Vec<String> {
    items.iter().map(|x| str_of(&x["id"])).collect()
}

#[tokio::test]
async fn every_list_is_paged_in_a_stable_order_with_a_bounded_limit_and_an_opaque_cursor() {
    let sys = System::embedded().await;
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let (t, o) = (
        format!("{}/api/travelers", sys.traveler),
        format!("{}/api/owners", sys.owner),
    );

    // Seven properties, two pairs sharing a name.
    let mut pids = Vec::new();
    for (i, name) in [
        "Casa",
        "Apartamento",
        "Casa",
        "Quinta",
        "Barco",
        "Quinta",
        "Moinho",
    ]
    .iter()
    .enumerate()
    {
        let mut body = property_body("Lisbon", 2 + i as u32);
        body["name"] = json!(name);
        let p = create_property_with(&sys, &owner, body).await.expect(201);
        pids.push((name.to_string(), str_of(&p["property"]["id"])));
    }
    pids.sort();
    let by_name: Vec<String> = pids.iter().map(|(_, id)| id.clone()).collect();
    for (_, id) in &pids {
        sys.wait_catalog(&traveler, id, 1).await;
    }
    // The owner's properties and the catalog: by name, then id.
    for (url, token) in [
        (format!("{o}/properties"), &owner.token),
        (format!("{t}/properties"), &traveler.token),
    ] {
        for limit in [Some(1), Some(3), Some(7), None] {
            let pages = pages(&sys, &url, token, "properties", limit).await;
            let expected_pages = limit.map_or(1, |l| by_name.len().div_ceil(l));
            assert_eq!(pages.len(), expected_pages, "{url} limit {limit:?}");
            assert_eq!(item_ids(&pages.concat()), by_name, "{url} limit {limit:?}");
        }
    }
    // Filters page the same way: the three for six guests or more.
    let filtered = pages(
        &sys,
        &format!("{t}/properties?city=LISBON&guests=6"),
        &traveler.token,
        "properties",
        Some(2),
    )
    .await;
    let filtered: Vec<Value> = filtered.concat();
    assert_eq!(filtered.len(), 3, "{filtered:?}");
    let filtered_ids = item_ids(&filtered);
    let expected: Vec<String> = by_name
        .iter()
        .filter(|id| filtered_ids.contains(id))
        .cloned()
        .collect();
    assert_eq!(filtered_ids, expected);

    // 53 bookings: more than a default page.
    const BOOKINGS: usize = 53;
    let mut booked = Vec::new();
    for i in 0..BOOKINGS {
        let pid = &by_name[i % by_name.len()];
        let b = create_booking(&sys, &traveler, stay(pid, 10 + i as i64, 1, 2))
            .await
            .expect(201);
        booked.push((
            str_of(&b["booking"]["created_at"]),
            str_of(&b["booking"]["id"]),
        ));
    }
    booked.sort();
    booked.reverse();
    let newest_first: Vec<String> = booked.into_iter().map(|(_, id)| id).collect();
    for id in &newest_first {
        sys.wait_owner_sees(&owner, id).await;
    }
    // The owner is told of each request: as many notifications.
    wait_owner_notifications(&sys, &owner, BOOKINGS).await;

    for (url, token, member) in [
        (format!("{t}/bookings"), &traveler.token, "bookings"),
        (format!("{o}/bookings"), &owner.token, "bookings"),
        (format!("{o}/notifications"), &owner.token, "notifications"),
    ] {
        // The default page holds 50; the rest follows.
        let default = pages(&sys, &url, token, member, None).await;
        assert_eq!(
            default.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![50, 3],
            "{url}"
        );
        for limit in [Some(7), Some(53), Some(200)] {
            let pages = pages(&sys, &url, token, member, limit).await;
            let all = pages.concat();
            if member == "notifications" {
                // Newest first, ties by id; one per booking request.
                assert_notifications_shape(&all);
                let keys: Vec<(String, String)> = all
                    .iter()
                    .map(|n| (str_of(&n["created_at"]), str_of(&n["id"])))
                    .collect();
                let mut sorted = keys.clone();
                sorted.sort();
                sorted.reverse();
                assert_eq!(keys, sorted, "{url} limit {limit:?}");
                let about: BTreeSet<String> =
                    all.iter().map(|n| str_of(&n["booking_id"])).collect();
                assert_eq!(about, newest_first.iter().cloned().collect::<BTreeSet<_>>());
                assert_eq!(all.len(), BOOKINGS);
            } else {
                assert_eq!(item_ids(&all), newest_first, "{url} limit {limit:?}");
            }
        }
    }
    // Filters page the same way.
    let p0 = &by_name[0];
    let of_p0 = pages(
        &sys,
        &format!("{o}/bookings?property_id={p0}&status=PENDING"),
        &owner.token,
        "bookings",
        Some(2),
    )
    .await
    .concat();
    let expected: Vec<String> = newest_first
        .iter()
        .filter(|id| of_p0.iter().any(|b| &str_of(&b["id"]) == *id))
        .cloned()
        .collect();
    assert_eq!(item_ids(&of_p0), expected);
    assert_eq!(of_p0.len(), BOOKINGS.div_ceil(by_name.len()));

    // A booking made while the pages are read does not disturb them: it
    // sorts before the first page, so the rest is exactly the unread part.
    let first = sys
        .http
        .get(&format!("{t}/bookings?limit=10"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(
        item_ids(first["bookings"].as_array().unwrap()),
        newest_first[..10]
    );
    let newcomer = create_booking(&sys, &traveler, stay(p0, 200, 1, 2))
        .await
        .expect(201);
    let cursor = str_of(&first["next_cursor"]);
    let rest = pages_from(
        &sys,
        &format!("{t}/bookings"),
        &traveler.token,
        "bookings",
        Some(10),
        Some(cursor),
    )
    .await;
    assert_eq!(item_ids(&rest.concat()), newest_first[10..]);
    let top = sys
        .http
        .get(&format!("{t}/bookings?limit=1"), Some(&traveler.token))
        .await
        .expect(200);
    assert_eq!(top["bookings"][0]["id"], newcomer["booking"]["id"]);

    // Bad limits and cursors: 400 naming the parameter, on every list.
    let cursor_of_properties = str_of(
        &sys.http
            .get(&format!("{o}/properties?limit=1"), Some(&owner.token))
            .await
            .expect(200)["next_cursor"],
    );
    for (list, token) in [
        (format!("{t}/bookings"), &traveler.token),
        (format!("{t}/properties"), &traveler.token),
        (format!("{t}/notifications"), &traveler.token),
        (format!("{o}/bookings"), &owner.token),
        (format!("{o}/properties"), &owner.token),
        (format!("{o}/notifications"), &owner.token),
    ] {
        for q in [
            "limit=0",
            "limit=201",
            "limit=-1",
            "limit=ten",
            "limit=1.5",
            "limit=99999999999999999999999",
        ] {
            let problem = sys
                .http
                .get(&format!("{list}?{q}"), Some(token))
                .await
                .expect_problem(400, "validation_failed");
            assert_eq!(problem["errors"][0]["field"], "limit", "{list}?{q}");
        }
        let foreign = if list.ends_with("/properties") && list.contains("/owners") {
            // A notifications cursor is not a properties cursor.
            let n = sys
                .http
                .get(&format!("{o}/notifications?limit=1"), Some(&owner.token))
                .await
                .expect(200);
            str_of(&n["next_cursor"])
        } else {
            cursor_of_properties.clone()
        };
        for cursor in [
            "garbage",
            "%%",
            "e30",
            "eyJsIjoiYm9va2luZ3MifQ",
            foreign.as_str(),
        ] {
            let problem = sys
                .http
                .get(&format!("{list}?cursor={cursor}"), Some(token))
                .await
                .expect_problem(400, "validation_failed");
            assert_eq!(
                problem["errors"][0]["field"], "cursor",
                "{list}?cursor={cursor}"
            );
        }
        sys.http
            .get(&format!("{list}?limit=200"), Some(token))
            .await
            .expect(200);
    }
}
