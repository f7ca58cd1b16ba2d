//! Dead-lettering: a message the handlers refused goes to its topic's
//! `.dlq`, with the reason in headers.

use rdkafka::message::{BorrowedMessage, Headers, Message};
use tokio_util::sync::CancellationToken;

use super::producer::KafkaPublisher;
use crate::{backoff::Backoff, messaging::dead_letter_headers};

/// Publishes `message` to its topic's `.dlq` with the reason in headers,
/// retrying until it is delivered; false if `stop` came first.
pub(super) async fn dead_letter(
    publisher: &KafkaPublisher,
    message: &BorrowedMessage<'_>,
    topic: &str,
    code: &str,
    reason: &str,
    stop: &CancellationToken,
) -> bool {
    tracing::warn!(%topic, offset = message.offset(), code, %reason, "dead-lettering message");
    let mut headers: Vec<(String, Vec<u8>)> = message
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        })
        .unwrap_or_default();
    headers.extend(
        dead_letter_headers(code, reason, topic, message.partition(), message.offset())
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes())),
    );
    let dlq = events::topics::dead_letter(topic);
    let value = message.payload().unwrap_or_default();
    let mut retry = Backoff::default();
    loop {
        match publisher
            .send_raw(&dlq, message.key(), value, &headers)
            .await
        {
            Ok(()) => return true,
            Err(e) => {
                tracing::warn!(error = %e, %dlq, "cannot dead-letter; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(retry.next_delay()) => {}
                    _ = stop.cancelled() => return false,
                }
            }
        }
    }
}
