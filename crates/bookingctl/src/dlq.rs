//! Dead letters: listing what a consumer could not apply, and sending it
//! back to its topic once the cause is fixed.
//!
//! A replay publishes the letter's key, value and headers (less the `dlq.*`
//! headers of its failure) to the original topic with `dlq.replayed_from`
//! and `dlq.replayed_at` added. Consumers are idempotent, so what can now be
//! applied is applied once, and what still fails is dead-lettered again as
//! a new letter. Each replayed letter is recorded in the database of the
//! service that consumes the topic (collection `dlq_replays`; a pod of that
//! service has the credentials for it), after its delivery, so `--all`
//! never sends it twice; if bookingctl dies between the two, the next
//! `--all` sends it again and the consumers absorb the duplicate.

use std::collections::{HashMap, HashSet};

use bson::doc;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::{Collection, Database};
use serde::Serialize;
use service_runtime::{config::KafkaConfig, messaging::kafka::KafkaPublisher};
use tokio_util::sync::CancellationToken;

use crate::{
    config::Connection,
    error::{CtlError, CtlResult},
    output::Report,
    topic_reader::{Record, Start, TopicReader},
};

/// The collection replayed letters are recorded in.
const REPLAYS: &str = "dlq_replays";

/// Header naming the dead letter a message is a replay of.
pub const REPLAYED_FROM: &str = "dlq.replayed_from";
/// Header with the time of the replay.
pub const REPLAYED_AT: &str = "dlq.replayed_at";

/// One dead letter, as an operator needs to judge it.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// `<dlq topic>/<partition>/<offset>`: this letter, exactly.
    pub id: String,
    pub dlq_topic: String,
    pub partition: i32,
    pub offset: i64,
    pub original_topic: String,
    pub original_partition: Option<i32>,
    pub original_offset: Option<i64>,
    pub key: Option<String>,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    /// The consumer's stable reason code (`unknown_property`, `invalid_data`...).
    pub reason: Option<String>,
    pub error: Option<String>,
    pub failed_at: Option<String>,
    /// When bookingctl replayed this letter, if it did.
    pub replayed_at: Option<DateTime<Utc>>,
    /// The letter this one is a replay of, when a replay failed again.
    pub replay_of: Option<String>,
    #[serde(skip)]
    record: Record,
}

impl DeadLetter {
    fn from_record(record: Record) -> Self {
        let value: Option<serde_json::Value> = serde_json::from_slice(&record.value).ok();
        let from_value = |field: &str| {
            value
                .as_ref()
                .and_then(|v| v.get(field))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let original_topic = record.header("dlq.original.topic").unwrap_or_else(|| {
            record
                .topic
                .strip_suffix(".dlq")
                .unwrap_or(&record.topic)
                .to_string()
        });
        Self {
            id: letter_id(&record.topic, record.partition, record.offset),
            dlq_topic: record.topic.clone(),
            partition: record.partition,
            offset: record.offset,
            original_topic,
            original_partition: record
                .header("dlq.original.partition")
                .and_then(|p| p.parse().ok()),
            original_offset: record
                .header("dlq.original.offset")
                .and_then(|o| o.parse().ok()),
            key: record.key_text(),
            event_type: record
                .header("ce_type")
                .or_else(|| from_value("event_type")),
            event_id: record.header("ce_id").or_else(|| from_value("event_id")),
            reason: record.header("dlq.reason"),
            error: record.header("dlq.error"),
            failed_at: record.header("dlq.failed_at"),
            replayed_at: None,
            replay_of: record.header(REPLAYED_FROM),
            record,
        }
    }

    /// The message a replay sends: the original key, value and headers,
    /// without this failure's `dlq.*` headers, plus where it came from.
    fn replay_headers(&self, at: DateTime<Utc>) -> Vec<(String, Vec<u8>)> {
        let mut headers: Vec<(String, Vec<u8>)> = self
            .record
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with("dlq."))
            .cloned()
            .collect();
        headers.push((REPLAYED_FROM.into(), self.id.clone().into_bytes()));
        headers.push((
            REPLAYED_AT.into(),
            events::timestamp::format(&at).into_bytes(),
        ));
        headers
    }
}

/// `<dlq topic>/<partition>/<offset>`.
fn letter_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// The dead-letter topic of `topic` (which may name the `.dlq` itself).
pub fn dlq_topic(topic: &str) -> String {
    if topic.ends_with(".dlq") {
        topic.to_string()
    } else {
        events::topics::dead_letter(topic)
    }
}

/// Every letter in the dead-letter topic of `topic`, oldest first per
/// partition, each marked with its replay if it was replayed.
async fn read_letters(
    conn: &Connection,
    topic: &str,
    replays: Option<&Collection<bson::Document>>,
) -> CtlResult<Vec<DeadLetter>> {
    let dlq = dlq_topic(topic);
    let mut reader = TopicReader::open(conn.brokers()?, &dlq, Start::Beginning).await?;
    let mut letters = Vec::new();
    while let Some(record) = reader.next_until_end().await? {
        letters.push(DeadLetter::from_record(record));
    }
    letters.sort_by_key(|l| (l.partition, l.offset));
    if let Some(replays) = replays {
        let done = replayed(replays, &dlq).await?;
        for letter in &mut letters {
            letter.replayed_at = done.get(&letter.id).copied();
        }
    }
    Ok(letters)
}

/// When each replayed letter of `dlq` was replayed.
async fn replayed(
    replays: &Collection<bson::Document>,
    dlq: &str,
) -> CtlResult<HashMap<String, DateTime<Utc>>> {
    let docs: Vec<bson::Document> = replays
        .find(doc! {"dlq_topic": dlq})
        .await
        .map_err(|e| CtlError::unavailable("reading replay records", e))?
        .try_collect()
        .await
        .map_err(|e| CtlError::unavailable("reading replay records", e))?;
    Ok(docs
        .into_iter()
        .filter_map(|d| {
            Some((
                d.get_str("_id").ok()?.to_string(),
                d.get_datetime("replayed_at").ok()?.to_chrono(),
            ))
        })
        .collect())
}

fn replays_collection(db: &Database) -> Collection<bson::Document> {
    db.collection(REPLAYS)
}

/// `dlq list`.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub dlq_topic: String,
    /// Letters in the topic, shown or not.
    pub total: usize,
    /// False without `MONGODB_URI`: `replayed_at` is then unknown, not "never".
    pub replays_known: bool,
    pub dead_letters: Vec<DeadLetter>,
}

/// Lists up to `limit` dead letters of `topic`, oldest first. Without
/// `MONGODB_URI`, whether each was replayed is left unknown (shown as such).
pub async fn list(conn: &Connection, topic: &str, limit: usize) -> CtlResult<Listing> {
    let replays = match conn.mongodb_uri {
        Some(_) => Some(replays_collection(
            &conn.database(conn.replay_database(topic)?).await?,
        )),
        None => {
            eprintln!("bookingctl: MONGODB_URI not set; replay state not shown");
            None
        }
    };
    let mut letters = read_letters(conn, topic, replays.as_ref()).await?;
    let total = letters.len();
    letters.truncate(limit);
    Ok(Listing {
        dlq_topic: dlq_topic(topic),
        total,
        replays_known: replays.is_some(),
        dead_letters: letters,
    })
}

impl Report for Listing {
    fn text(&self) -> String {
        if self.total == 0 {
            return format!("{}: no dead letters\n", self.dlq_topic);
        }
        let mut out = format!("{}: {} dead letter(s)\n", self.dlq_topic, self.total);
        for l in &self.dead_letters {
            let original = match (l.original_partition, l.original_offset) {
                (Some(p), Some(o)) => format!("{} partition {p} offset {o}", l.original_topic),
                _ => l.original_topic.clone(),
            };
            out += &format!(
                "\n{}\n  original:   {original}\n  key:        {}\n  event:      {} {}\n  reason:     {}\n  error:      {}\n  failed at:  {}\n  replayed:   {}\n",
                l.id,
                l.key.as_deref().unwrap_or("-"),
                l.event_type.as_deref().unwrap_or("?"),
                l.event_id.as_deref().unwrap_or("?"),
                l.reason.as_deref().unwrap_or("-"),
                l.error.as_deref().unwrap_or("-"),
                l.failed_at.as_deref().unwrap_or("-"),
                match (l.replayed_at, self.replays_known) {
                    (Some(t), _) => events::timestamp::format(&t),
                    (None, true) => "no".into(),
                    (None, false) => "unknown (MONGODB_URI not set)".into(),
                },
            );
            if let Some(of) = &l.replay_of {
                out += &format!("  replay of:  {of}\n");
            }
        }
        if self.dead_letters.len() < self.total {
            out += &format!(
                "\n{} more not shown (raise --limit)\n",
                self.total - self.dead_letters.len()
            );
        }
        out
    }
}

/// Which letters a replay takes.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every letter not replayed yet.
    All,
    /// The not-yet-replayed letters of these events.
    EventIds(Vec<String>),
}

/// `dlq replay`.
#[derive(Debug, Serialize)]
pub struct Replay {
    pub dlq_topic: String,
    pub dry_run: bool,
    /// Letters sent back (or that would be, in a dry run).
    pub replayed: Vec<DeadLetter>,
    /// Letters selected but replayed before, left alone.
    pub already_replayed: Vec<String>,
    /// Event ids asked for that no letter carries.
    pub not_found: Vec<String>,
}

/// Replays the selected letters of `topic` (see the module comment).
/// Stops between two letters when `stop` fires, never inside one.
pub async fn replay(
    conn: &Connection,
    topic: &str,
    selection: Selection,
    dry_run: bool,
    stop: &CancellationToken,
) -> CtlResult<Replay> {
    let db = conn.database(conn.replay_database(topic)?).await?;
    let replays = replays_collection(&db);
    let letters = read_letters(conn, topic, Some(&replays)).await?;
    let mut report = Replay {
        dlq_topic: dlq_topic(topic),
        dry_run,
        replayed: Vec::new(),
        already_replayed: Vec::new(),
        not_found: Vec::new(),
    };
    let selected: Vec<DeadLetter> = match &selection {
        Selection::All => letters
            .into_iter()
            .filter(|l| {
                if l.replayed_at.is_some() {
                    report.already_replayed.push(l.id.clone());
                    false
                } else {
                    true
                }
            })
            .collect(),
        Selection::EventIds(ids) => {
            let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
            let mut seen = HashSet::new();
            let mut chosen = Vec::new();
            for l in letters {
                let Some(id) = l.event_id.as_deref().filter(|id| wanted.contains(id)) else {
                    continue;
                };
                seen.insert(id.to_string());
                if l.replayed_at.is_some() {
                    report.already_replayed.push(l.id.clone());
                } else {
                    chosen.push(l);
                }
            }
            report.not_found = ids
                .iter()
                .filter(|id| !seen.contains(*id))
                .cloned()
                .collect();
            chosen
        }
    };
    if dry_run || selected.is_empty() {
        report.replayed = selected;
        return Ok(report);
    }
    let publisher = KafkaPublisher::new(&producer_config(conn.brokers()?))
        .map_err(|e| CtlError::unavailable("creating a Kafka producer", e))?;
    for mut letter in selected {
        if stop.is_cancelled() {
            return Err(CtlError::Interrupted(format!(
                "{} letter(s) replayed before the stop; the rest were not touched",
                report.replayed.len()
            )));
        }
        let at = events::timestamp::now();
        publisher
            .send_raw(
                &letter.original_topic,
                letter.record.key.as_deref(),
                &letter.record.value,
                &letter.replay_headers(at),
            )
            .await
            .map_err(|e| CtlError::unavailable(format!("replaying {}", letter.id), e))?;
        replays
            .update_one(
                doc! {"_id": &letter.id},
                doc! {"$set": {
                    "dlq_topic": &letter.dlq_topic,
                    "event_id": &letter.event_id,
                    "original_topic": &letter.original_topic,
                    "replayed_at": bson::DateTime::from_chrono(at),
                }},
            )
            .upsert(true)
            .await
            .map_err(|e| {
                CtlError::unavailable(
                    format!(
                        "recording the replay of {} (it was sent; a second --all sends it again)",
                        letter.id
                    ),
                    e,
                )
            })?;
        letter.replayed_at = Some(at);
        report.replayed.push(letter);
    }
    Ok(report)
}

/// The producer settings: the services' idempotent producer; only the
/// brokers matter here.
fn producer_config(brokers: &str) -> KafkaConfig {
    KafkaConfig {
        brokers: brokers.to_string(),
        group_id: "bookingctl".into(),
        request_topic: String::new(),
        response_topic: String::new(),
        property_topic: String::new(),
        topic_partitions: 1,
        topic_replication_factor: 1,
        session_timeout_ms: 10_000,
        delivery_timeout_ms: 60_000,
    }
}

impl Report for Replay {
    fn text(&self) -> String {
        let verb = if self.dry_run {
            "would replay"
        } else {
            "replayed"
        };
        let mut out = format!(
            "{}: {verb} {} letter(s)\n",
            self.dlq_topic,
            self.replayed.len()
        );
        for l in &self.replayed {
            out += &format!(
                "  {} → {} ({} {}, key {})\n",
                l.id,
                l.original_topic,
                l.event_type.as_deref().unwrap_or("?"),
                l.event_id.as_deref().unwrap_or("?"),
                l.key.as_deref().unwrap_or("-"),
            );
        }
        if !self.already_replayed.is_empty() {
            out += &format!(
                "{} letter(s) replayed before, left alone: {}\n",
                self.already_replayed.len(),
                self.already_replayed.join(", ")
            );
        }
        if !self.not_found.is_empty() {
            out += &format!("no letter for event id(s): {}\n", self.not_found.join(", "));
        }
        out
    }
}
