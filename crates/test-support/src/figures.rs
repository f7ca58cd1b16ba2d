//! The figures each fault test reports for `docs/reliability.md`.

use std::path::PathBuf;

use chrono::Utc;
use serde_json::json;

/// One row of the reliability table, produced by a fault test from its own
/// independent record of what clients were told.
#[derive(Debug, Clone)]
pub struct Figures {
    /// File name of the row (`target/reliability/<id>.json`).
    pub id: &'static str,
    /// Position in the table (the fault's number in the issue).
    pub order: u32,
    pub fault: &'static str,
    pub injection: String,
    /// Operations started while the fault was injected (requests sent,
    /// events in transit).
    pub in_flight: usize,
    /// Of those, the ones a client got a success answer for (2xx), or for
    /// messages written straight to a topic, the ones the broker accepted.
    pub acknowledged: usize,
    /// Acknowledged operations whose effect is missing at the end.
    pub lost: usize,
    /// Effects applied more than once (listed twice, extra notifications,
    /// extra status events, extra dead letters).
    pub duplicated: usize,
    /// Anything else worth reading next to the numbers.
    pub notes: String,
}

/// Where the rows go: `<target dir>/reliability`.
pub fn reliability_dir() -> PathBuf {
    crate::target_dir().join("reliability")
}

impl Figures {
    /// Prints the row and writes it as one JSON line. Call it before the
    /// assertions so a failing run still reports what it saw.
    pub fn record(&self) {
        let row = json!({
            "id": self.id,
            "order": self.order,
            "fault": self.fault,
            "injection": self.injection,
            "in_flight": self.in_flight,
            "acknowledged": self.acknowledged,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "notes": self.notes,
            "recorded_at": Utc::now().to_rfc3339(),
        });
        println!("RELIABILITY {row}");
        let dir = reliability_dir();
        std::fs::create_dir_all(&dir).expect("create target/reliability");
        std::fs::write(dir.join(format!("{}.json", self.id)), format!("{row}\n"))
            .expect("write the figures");
    }
}
