//! Database operations per booking, from the server's own counters
//! (`serverStatus.opcounters`), where the server reports them. The counters
//! are server-wide: run against servers nothing else uses.

use bson::{doc, Document};

/// Operation counts by kind at one moment.
#[derive(Debug, Clone, Default)]
pub struct OpCounters(Vec<(String, i64)>);

/// Reads the counters; `None` if the server does not report them.
pub async fn read(client: &mongodb::Client) -> Option<OpCounters> {
    let status: Document = client
        .database("admin")
        .run_command(doc! {"serverStatus": 1})
        .await
        .ok()?;
    let counters = status.get_document("opcounters").ok()?;
    Some(OpCounters(
        counters
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_i64()
                        .or_else(|| v.as_i32().map(i64::from))
                        .unwrap_or(0),
                )
            })
            .collect(),
    ))
}

/// `after - before` per kind, divided by `per` (bookings), as one line.
pub fn per_booking(before: &OpCounters, after: &OpCounters, per: usize) -> String {
    let mut total = 0.0;
    let mut parts = Vec::new();
    for (kind, end) in &after.0 {
        let start = before
            .0
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, v)| *v);
        let each = (end - start) as f64 / per.max(1) as f64;
        total += each;
        if each > 0.0 {
            parts.push(format!("{kind} {each:.2}"));
        }
    }
    format!("{total:.2} per booking ({})", parts.join(", "))
}
