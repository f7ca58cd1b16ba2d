//! The booking flow over HTTP with both services embedded in memory.

mod support;

use support::System;

#[tokio::test]
async fn booking_flow_reaches_accepted_in_memory() {
    let sys = System::embedded().await;
    let (owner, traveler, pid) = sys.listed_property("Lisbon").await;
    let booking = sys.book(&traveler, &pid, 10, 3).await;
    assert_eq!(booking["status"], "PENDING");
    assert_eq!(booking["total_price_cents"], 3 * 10000 + 2000 + 500);
    let id = booking["id"].as_str().unwrap();
    sys.wait_owner_sees(&owner, id).await;
    let approved = sys.decide(&owner, id, "approve", None).await.expect(200);
    assert_eq!(approved["booking"]["status"], "ACCEPTED");
    sys.wait_traveler_status(&traveler, id, "ACCEPTED").await;
    let notes = sys.traveler_notifications(&traveler).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["booking_id"], id);
    assert_eq!(notes[0]["status"], "ACCEPTED");
}
