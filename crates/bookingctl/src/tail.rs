//! `events tail`: the events of a topic, decoded, one per line.

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{Connection, TopicKind},
    error::CtlResult,
    output::Format,
    topic_reader::{Record, Start, TopicReader},
};

/// One line of `events tail --output json`.
#[derive(Debug, Serialize)]
pub struct Line {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    /// The decoded envelope (as the consumers see it), when it decodes.
    pub envelope: Option<serde_json::Value>,
    /// Why it does not decode (the consumers dead-letter such messages).
    pub error: Option<String>,
}

/// Decodes a message with the type its topic carries; on an unknown topic
/// any JSON value is shown as it is.
fn decode(kind: Option<TopicKind>, value: &[u8]) -> Result<serde_json::Value, String> {
    fn typed<P: events::EventPayload>(value: &[u8]) -> Result<serde_json::Value, String> {
        let envelope = events::decode::<P>(value).map_err(|e| e.to_string())?;
        serde_json::to_value(envelope).map_err(|e| e.to_string())
    }
    match kind {
        Some(TopicKind::BookingRequests) => typed::<events::BookingRequestEvent>(value),
        Some(TopicKind::BookingUpdates) => typed::<events::BookingUpdateEvent>(value),
        Some(TopicKind::PropertyListings) => typed::<events::PropertyEvent>(value),
        None => serde_json::from_slice(value).map_err(|e| format!("not JSON: {e}")),
    }
}

fn line(kind: Option<TopicKind>, record: &Record) -> Line {
    let (envelope, error) = match decode(kind, &record.value) {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    Line {
        topic: record.topic.clone(),
        partition: record.partition,
        offset: record.offset,
        key: record.key_text(),
        envelope,
        error,
    }
}

fn text(l: &Line) -> String {
    let position = format!("{}/{}", l.partition, l.offset);
    let key = l.key.as_deref().unwrap_or("-");
    match (&l.envelope, &l.error) {
        (Some(e), _) => {
            let field = |name: &str| e.get(name).and_then(|v| v.as_str()).unwrap_or("?");
            format!(
                "{position} {} {} key={key} id={} data={}",
                field("occurred_at"),
                field("event_type"),
                field("event_id"),
                e.get("data").map(|d| d.to_string()).unwrap_or_default()
            )
        }
        (None, error) => format!(
            "{position} key={key} undecodable: {}",
            error.as_deref().unwrap_or("?")
        ),
    }
}

/// Prints the events of `topic` from the beginning or from now, only those
/// with `key` if given; follows new ones until `stop` unless `no_follow`,
/// which stops at the end the topic had when the command started.
pub async fn tail(
    conn: &Connection,
    topic: &str,
    from_beginning: bool,
    key: Option<&str>,
    no_follow: bool,
    format: Format,
    stop: &CancellationToken,
) -> CtlResult<u64> {
    let start = if from_beginning {
        Start::Beginning
    } else {
        Start::End
    };
    let mut reader = TopicReader::open(conn.brokers()?, topic, start).await?;
    let kind = conn.topic_kind(topic);
    let mut printed = 0;
    loop {
        let record = if no_follow {
            tokio::select! {
                r = reader.next_until_end() => match r? { Some(r) => r, None => break },
                _ = stop.cancelled() => break,
            }
        } else {
            tokio::select! {
                r = reader.next() => r?,
                _ = stop.cancelled() => break,
            }
        };
        if key.is_some_and(|k| record.key.as_deref() != Some(k.as_bytes())) {
            continue;
        }
        let l = line(kind, &record);
        match format {
            Format::Text => println!("{}", text(&l)),
            Format::Json => println!("{}", serde_json::to_string(&l).expect("lines serialise")),
        }
        printed += 1;
    }
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poison_message_is_shown_with_its_error_not_dropped() {
        let l = line(
            Some(TopicKind::BookingUpdates),
            &Record {
                topic: "booking-updates".into(),
                partition: 2,
                offset: 7,
                key: Some(b"b-1".to_vec()),
                value: b"{not json".to_vec(),
                headers: Vec::new(),
            },
        );
        assert!(l.envelope.is_none());
        assert!(text(&l).starts_with("2/7 key=b-1 undecodable: value is not a JSON event envelope"));
    }
}
