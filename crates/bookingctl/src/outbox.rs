//! `outbox status`: how many events wait to be published, since when, and
//! which replica holds the relay lease.

use chrono::{DateTime, Utc};
use clap::ValueEnum;
use serde::Serialize;
use service_runtime::outbox::outbox_report;

use crate::{
    config::Connection,
    error::{CtlError, CtlResult},
    output::{duration, Report},
};

/// `--service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ServiceName {
    Owner,
    Traveler,
}

impl ServiceName {
    /// The service's name (its relay lease is named after it), its
    /// database and the collections whose documents carry an outbox: the
    /// same constants the service itself uses.
    fn parts(self, conn: &Connection) -> (&'static str, &str, &'static [&'static str]) {
        match self {
            ServiceName::Owner => (
                owner_service::DEFAULTS.name,
                &conn.owner_database,
                &owner_service::store::OUTBOX_COLLECTIONS,
            ),
            ServiceName::Traveler => (
                traveler_service::DEFAULTS.name,
                &conn.traveler_database,
                &traveler_service::store::OUTBOX_COLLECTIONS,
            ),
        }
    }
}

/// The state of one service's outbox.
#[derive(Debug, Serialize)]
pub struct Status {
    pub service: &'static str,
    pub database: String,
    pub pending: u64,
    pub pending_by_collection: Vec<CollectionCount>,
    pub oldest_pending_at: Option<DateTime<Utc>>,
    pub oldest_pending_age_seconds: Option<f64>,
    pub lease: Option<Lease>,
}

#[derive(Debug, Serialize)]
pub struct CollectionCount {
    pub collection: String,
    pub pending: u64,
}

/// The relay lease, judged by the database server's clock.
#[derive(Debug, Serialize)]
pub struct Lease {
    pub holder: String,
    pub expires_at: DateTime<Utc>,
    pub expired: bool,
    /// Seconds until it expires (negative: since it expired).
    pub expires_in_seconds: f64,
}

/// Reads the outbox of `service`.
pub async fn status(conn: &Connection, service: ServiceName) -> CtlResult<Status> {
    let (name, database, collections) = service.parts(conn);
    let db = conn.database(database).await?;
    let report = outbox_report(&db, collections, name)
        .await
        .map_err(|e| CtlError::unavailable(format!("reading the outbox of {name}"), e))?;
    let now = report.server_time.unwrap_or_else(Utc::now);
    let seconds = |d: chrono::TimeDelta| d.num_milliseconds() as f64 / 1000.0;
    Ok(Status {
        service: name,
        database: database.to_string(),
        pending: report.pending(),
        pending_by_collection: report
            .collections
            .iter()
            .map(|(collection, pending)| CollectionCount {
                collection: collection.clone(),
                pending: *pending,
            })
            .collect(),
        oldest_pending_at: report.oldest,
        oldest_pending_age_seconds: report.oldest.map(|t| seconds(now - t).max(0.0)),
        lease: report.lease.map(|l| Lease {
            expired: l.expires_at <= now,
            expires_in_seconds: seconds(l.expires_at - now),
            holder: l.holder,
            expires_at: l.expires_at,
        }),
    })
}

impl Report for Status {
    fn text(&self) -> String {
        let by: Vec<String> = self
            .pending_by_collection
            .iter()
            .map(|c| format!("{}: {}", c.collection, c.pending))
            .collect();
        let mut out = format!(
            "outbox of {} (database {})\n  pending events: {} ({})\n",
            self.service,
            self.database,
            self.pending,
            by.join(", ")
        );
        out += &match (self.oldest_pending_at, self.oldest_pending_age_seconds) {
            (Some(at), Some(age)) => format!(
                "  oldest pending: {} ({} ago)\n",
                events::timestamp::format(&at),
                duration(age)
            ),
            _ => "  oldest pending: none\n".to_string(),
        };
        out += &match &self.lease {
            Some(l) if !l.expired => format!(
                "  relay lease:    held by {} until {} (for {} more)\n",
                l.holder,
                events::timestamp::format(&l.expires_at),
                duration(l.expires_in_seconds)
            ),
            Some(l) => format!(
                "  relay lease:    free (last held by {}, expired {} ago)\n",
                l.holder,
                duration(-l.expires_in_seconds)
            ),
            None => "  relay lease:    never taken\n".to_string(),
        };
        out
    }
}
