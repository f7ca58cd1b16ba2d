//! `bookingctl`, the operators' tool, against both services running as
//! processes on the real broker and database: dead letters listed and
//! replayed once, the catalog rebuilt while the service answers, the outbox
//! backlog while Kafka is down, the bookings' status mirror repaired, and a
//! booking's events tailed.

mod support;

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use bson::doc;
use serde_json::Value;
use support::{bin_dir, ProcessEnv, System, User, PROPAGATION};
use test_support::eventually;
use test_support::kafka::{booking_requested, produce_event};
use test_support::private::private_broker_for;

/// What one `bookingctl` run printed and how it exited.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The JSON document of an `--output json` run that exited `code`.
    fn json(&self, code: i32) -> Value {
        assert_eq!(
            self.code, code,
            "bookingctl exited {}; stderr: {}; stdout: {}",
            self.code, self.stderr, self.stdout
        );
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `bookingctl args` with the services' environment of this test.
async fn bookingctl(env: &ProcessEnv, args: &[&str]) -> Ran {
    let path = bin_dir().join("bookingctl");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test.sh does)",
        path.display()
    );
    let out = tokio::process::Command::new(&path)
        .args(args)
        .env("MONGODB_URI", &env.servers.mongodb_uri)
        .env("KAFKA_BROKERS", &env.servers.kafka_brokers)
        .env("KAFKA_REQUEST_TOPIC", env.topic("booking-requests"))
        .env("KAFKA_RESPONSE_TOPIC", env.topic("booking-updates"))
        .env("KAFKA_PROPERTY_TOPIC", env.topic("property-listings"))
        .env("TRAVELER_MONGODB_DATABASE", &env.traveler_db)
        .env("OWNER_MONGODB_DATABASE", &env.owner_db)
        .output()
        .await
        .expect("run bookingctl");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

async fn database(env: &ProcessEnv, name: &str) -> mongodb::Database {
    mongodb::Client::with_uri_str(&env.servers.mongodb_uri)
        .await
        .expect("connect to MongoDB")
        .database(name)
}

/// Publishes a `booking.requested` for `property_id` as traveler-service
/// would; returns its event id.
async fn publish_request(
    env: &ProcessEnv,
    booking_id: &str,
    property_id: &str,
    owner: &User,
) -> String {
    let traveler_id = uuid::Uuid::new_v4().to_string();
    let envelope = booking_requested(booking_id, property_id, &owner.id, &traveler_id, 30, "EUR");
    produce_event(
        &env.servers.kafka_brokers,
        &env.topic("booking-requests"),
        booking_id.as_bytes(),
        &envelope,
    )
    .await;
    envelope.event_id.into_string()
}

/// `bookingctl dlq replay --topic <topic> <selection> --output json`.
async fn dlq_replay(env: &ProcessEnv, topic: &str, selection: &[&str]) -> Ran {
    let mut args = vec!["dlq", "replay", "--topic", topic];
    args.extend_from_slice(selection);
    args.extend(["--output", "json"]);
    bookingctl(env, &args).await
}

/// `bookingctl outbox status --service <service> --output json`, which must
/// exit 0.
async fn outbox_status(env: &ProcessEnv, service: &str) -> Value {
    bookingctl(
        env,
        &["outbox", "status", "--service", service, "--output", "json"],
    )
    .await
    .json(0)
}

/// `bookingctl events tail` of `key`'s events on `topic`, from the
/// beginning, without following, with `output` (`--output json`, say) after.
async fn tail_key(env: &ProcessEnv, topic: &str, key: &str, output: &[&str]) -> Ran {
    let mut args = vec![
        "events",
        "tail",
        "--topic",
        topic,
        "--from-beginning",
        "--no-follow",
        "--key",
        key,
    ];
    args.extend_from_slice(output);
    bookingctl(env, &args).await
}

fn ids(list: &Value, member: &str) -> Vec<String> {
    list[member]
        .as_array()
        .unwrap_or_else(|| panic!("no {member} in {list}"))
        .iter()
        .map(|v| v["id"].as_str().or(v.as_str()).unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_then_replayed_once_after_the_fix() {
    let Some(sys) = System::processes_for("bookingctl dead letters").await else {
        return;
    };
    let env = sys.env.as_ref().unwrap();
    let topic = env.topic("booking-requests");
    let owner = sys.owner_signup("Olga").await;
    // Requests for a property owner-service does not know: dead-lettered.
    let property_id = uuid::Uuid::new_v4().to_string();
    let bookings = [
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    ];
    let mut event_ids = Vec::new();
    for b in &bookings {
        event_ids.push(publish_request(env, b, &property_id, &owner).await);
    }

    let listing = eventually("both requests dead-lettered", PROPAGATION, || async {
        let list = bookingctl(env, &["dlq", "list", "--topic", &topic, "--output", "json"])
            .await
            .json(0);
        (list["total"] == 2).then_some(list)
    })
    .await;
    for letter in listing["dead_letters"].as_array().unwrap() {
        assert_eq!(letter["original_topic"], topic.as_str(), "{letter}");
        assert_eq!(letter["reason"], "unknown_property", "{letter}");
        assert_eq!(letter["event_type"], "booking.requested", "{letter}");
        assert!(letter["original_offset"].is_i64(), "{letter}");
        assert!(
            letter["error"].as_str().unwrap().contains(&property_id),
            "{letter}"
        );
        assert!(letter["replayed_at"].is_null(), "{letter}");
    }
    let mut listed: Vec<String> = listing["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["event_id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut expected = event_ids.clone();
    expected.sort();
    assert_eq!(listed, expected);
    let text = bookingctl(env, &["dlq", "list", "--topic", &topic, "--limit", "1"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(text.stdout.contains("2 dead letter(s)"), "{}", text.stdout);
    assert!(text.stdout.contains("1 more not shown"), "{}", text.stdout);

    // A dry run sends nothing and records nothing.
    let dry = dlq_replay(env, &topic, &["--all", "--dry-run"])
        .await
        .json(0);
    assert_eq!(ids(&dry, "replayed").len(), 2, "{dry}");
    // An event id no letter carries is exit code 3.
    let missing = dlq_replay(env, &topic, &["--event-id", "no-such-event"])
        .await
        .json(3);
    assert_eq!(missing["not_found"][0], "no-such-event", "{missing}");

    // The fix: the property now exists (a copy of a real one under the id
    // the requests name).
    let real = sys.create_property(&owner, "Faro").await;
    let properties = database(env, &env.owner_db)
        .await
        .collection::<bson::Document>("properties");
    let mut copy = properties
        .find_one(doc! {"_id": real["id"].as_str().unwrap()})
        .await
        .unwrap()
        .expect("the owner's property document");
    copy.insert("_id", &property_id);
    copy.insert("id", &property_id);
    copy.remove("outbox");
    properties.insert_one(copy).await.unwrap();

    let first = dlq_replay(env, &topic, &["--event-id", &event_ids[0]])
        .await
        .json(0);
    assert_eq!(ids(&first, "replayed").len(), 1, "{first}");
    let rest = dlq_replay(env, &topic, &["--all"]).await.json(0);
    assert_eq!(ids(&rest, "replayed").len(), 1, "{rest}");
    assert_eq!(
        rest["replayed"][0]["event_id"],
        event_ids[1].as_str(),
        "{rest}"
    );
    let again = dlq_replay(env, &topic, &["--all"]).await.json(0);
    assert_eq!(ids(&again, "replayed").len(), 0, "{again}");
    assert_eq!(
        again["already_replayed"].as_array().unwrap().len(),
        2,
        "{again}"
    );

    for b in &bookings {
        assert_eq!(sys.wait_owner_sees(&owner, b).await["status"], "PENDING");
    }
    // Applied once: one notification per request, nothing dead-lettered anew.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notes = sys.owner_notifications(&owner).await;
    for b in &bookings {
        let n = notes
            .iter()
            .filter(|n| n["booking_id"] == b.as_str())
            .count();
        assert_eq!(n, 1, "notifications for {b}: {notes:?}");
    }
    let after = bookingctl(env, &["dlq", "list", "--topic", &topic, "--output", "json"])
        .await
        .json(0);
    assert_eq!(after["total"], 2, "no new dead letters: {after}");
    assert!(
        after["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l["replayed_at"].is_string()),
        "{after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_rebuild_restores_a_dropped_catalog_while_the_service_answers() {
    let Some(sys) = System::processes_for("bookingctl rebuild catalog").await else {
        return;
    };
    let env = sys.env.as_ref().unwrap();
    let owner = sys.owner_signup("Olga").await;
    let traveler = sys.traveler_signup("Tom").await;
    let mut active = Vec::new();
    for city in ["Lagos", "Porto", "Braga"] {
        active.push(sys.create_property_id(&owner, city).await);
    }
    let delisted = active.pop().unwrap();
    sys.owner_delete(&owner, &format!("properties/{delisted}"))
        .await
        .expect(200);
    let list_url = format!("{}/api/travelers/properties", sys.traveler);
    let listed = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    active.sort();
    eventually(
        "the catalog shows the two active properties",
        PROPAGATION,
        || async {
            let r = sys.http.get(&list_url, Some(&traveler.token)).await;
            (r.status == 200 && listed(&r.body) == active).then_some(())
        },
    )
    .await;
    // Wait until the delisting reached the catalog too.
    eventually("the delisting reached the catalog", PROPAGATION, || async {
        let r = sys
            .http
            .get(&format!("{list_url}/{delisted}"), Some(&traveler.token))
            .await;
        (r.status == 404).then_some(())
    })
    .await;

    database(env, &env.traveler_db)
        .await
        .collection::<bson::Document>("catalog")
        .drop()
        .await
        .unwrap();
    let r = sys.http.get(&list_url, Some(&traveler.token)).await;
    assert_eq!(listed(&r.expect(200)), Vec::<String>::new());

    // A client keeps browsing during the rebuild.
    let done = Arc::new(AtomicBool::new(false));
    let poller = {
        let (http, url, token, done) = (
            sys.http.clone(),
            list_url.clone(),
            traveler.token.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !done.load(Ordering::Relaxed) {
                statuses.push(http.get(&url, Some(&token)).await.status.as_u16());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };
    let rebuilt = bookingctl(env, &["rebuild", "catalog", "--output", "json"])
        .await
        .json(0);
    done.store(true, Ordering::Relaxed);
    let statuses = poller.await.unwrap();
    assert!(!statuses.is_empty());
    assert!(
        statuses.iter().all(|s| *s == 200),
        "answers during the rebuild: {statuses:?}"
    );
    assert_eq!(rebuilt["before"]["documents"], 0, "{rebuilt}");
    assert_eq!(
        rebuilt["after"]["by_state"][0],
        serde_json::json!(["active", 2]),
        "{rebuilt}"
    );
    assert_eq!(
        rebuilt["after"]["by_state"][1],
        serde_json::json!(["inactive", 1]),
        "{rebuilt}"
    );
    assert!(
        rebuilt["events_replayed"].as_u64().unwrap() >= 4,
        "{rebuilt}"
    );

    let r = sys.http.get(&list_url, Some(&traveler.token)).await;
    assert_eq!(listed(&r.expect(200)), active);
    sys.http
        .get(&format!("{list_url}/{delisted}"), Some(&traveler.token))
        .await
        .expect_problem(404, "not_found");
    // The rebuilt catalog keeps the service's search index (no fresh
    // collection is left behind either).
    let names = database(env, &env.traveler_db)
        .await
        .list_collection_names()
        .await
        .unwrap();
    assert!(
        !names.iter().any(|n| n.contains("_rebuild_")),
        "leftover collections: {names:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_status_shows_the_backlog_while_kafka_is_down_and_none_after() {
    let Some((mut broker, servers)) = private_broker_for("bookingctl outbox status") else {
        return;
    };
    let sys = System::processes(&servers).await;
    let env = sys.env.as_ref().unwrap();
    let (owner, traveler, pid) = sys.listed_property("Tavira").await;

    broker.kill();
    let booking = sys.book(&traveler, &pid, 12, 2).await;
    let status = outbox_status(env, "traveler").await;
    assert_eq!(status["service"], "traveler-service", "{status}");
    assert_eq!(status["pending"], 1, "{status}");
    assert_eq!(
        status["pending_by_collection"][0]["collection"], "bookings",
        "{status}"
    );
    assert!(
        status["oldest_pending_age_seconds"].as_f64().unwrap() >= 0.0,
        "{status}"
    );
    assert!(status["lease"]["holder"].is_string(), "{status}");
    let text = bookingctl(env, &["outbox", "status", "--service", "traveler"]).await;
    assert!(text.stdout.contains("pending events: 1"), "{}", text.stdout);

    broker.restart();
    sys.wait_owner_sees(&owner, booking["id"].as_str().unwrap())
        .await;
    eventually("the traveler outbox is empty", PROPAGATION, || async {
        let status = outbox_status(env, "traveler").await;
        (status["pending"] == 0 && status["oldest_pending_at"].is_null()).then_some(())
    })
    .await;
    let owner_status = outbox_status(env, "owner").await;
    assert_eq!(owner_status["service"], "owner-service", "{owner_status}");
    assert_eq!(
        owner_status["pending_by_collection"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_rebuild_repairs_the_status_mirror_and_tail_shows_the_events() {
    let Some(sys) = System::processes_for("bookingctl rebuild bookings").await else {
        return;
    };
    let env = sys.env.as_ref().unwrap();
    let (owner, traveler, pid) = sys.listed_property("Tavira").await;
    let accepted = sys.book_id(&traveler, &pid, 12, 2).await;
    let pending = sys.book_id(&traveler, &pid, 40, 2).await;
    sys.wait_owner_sees(&owner, &accepted).await;
    sys.wait_owner_sees(&owner, &pending).await;
    sys.decide(&owner, &accepted, "approve", None)
        .await
        .expect(200);
    sys.wait_traveler_status(&traveler, &accepted, "ACCEPTED")
        .await;

    // Corrupt the mirror: the accepted booking back to PENDING, version 0.
    let bookings = database(env, &env.traveler_db)
        .await
        .collection::<bson::Document>("bookings");
    bookings
        .update_one(
            doc! {"_id": &accepted},
            doc! {"$set": {"status": "PENDING", "version": 0}},
        )
        .await
        .unwrap();
    sys.wait_traveler_status(&traveler, &accepted, "PENDING")
        .await;

    let rebuilt = bookingctl(env, &["rebuild", "bookings", "--output", "json"])
        .await
        .json(0);
    assert_eq!(rebuilt["documents_corrected"], 1, "{rebuilt}");
    assert_eq!(rebuilt["before"]["documents"], 2, "{rebuilt}");
    assert_eq!(
        rebuilt["after"]["by_state"],
        serde_json::json!([
            ["PENDING", 1],
            ["ACCEPTED", 1],
            ["REJECTED", 0],
            ["CANCELLED", 0]
        ]),
        "{rebuilt}"
    );
    let repaired = sys
        .wait_traveler_status(&traveler, &accepted, "ACCEPTED")
        .await;
    assert_eq!(repaired["version"], 1, "{repaired}");
    let untouched = sys
        .traveler_get(&traveler, &format!("bookings/{pending}"))
        .await
        .expect(200);
    assert_eq!(untouched["booking"]["status"], "PENDING");
    // The traveler can still cancel: the write side was left alone.
    sys.traveler_put(&traveler, &format!("bookings/{pending}/cancel"), None)
        .await
        .expect(202);

    // The accepted booking's events, decoded, one per line.
    let tail = tail_key(
        env,
        &env.topic("booking-updates"),
        &accepted,
        &["--output", "json"],
    )
    .await;
    assert_eq!(tail.code, 0, "{}", tail.stderr);
    let lines: Vec<Value> = tail
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len(), 1, "{}", tail.stdout);
    assert_eq!(lines[0]["key"], accepted.as_str());
    assert_eq!(lines[0]["envelope"]["event_type"], "booking.status_changed");
    assert_eq!(lines[0]["envelope"]["data"]["status"], "ACCEPTED");
    let text = tail_key(env, &env.topic("booking-requests"), &pending, &[]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", text.stdout);
    assert!(lines[0].contains("booking.requested"), "{}", text.stdout);
    assert!(
        lines[1].contains("booking.cancellation_requested"),
        "{}",
        text.stdout
    );
}
