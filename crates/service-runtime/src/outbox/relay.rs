//! The relay: [`run_relay`] publishes what waits in an [`OutboxStore`], in
//! order per aggregate ([`publish_in_order`]), and removes it once the
//! broker confirmed delivery.

use events::EventId;
use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;
use tracing::Span;

use super::{
    message::{EventPublisher, OutboxMessage, OutboxStore},
    signal::OutboxSignal,
};
use crate::{
    backoff::Backoff,
    metrics::Metrics,
    telemetry::{self, Published},
};

/// Relay tuning.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub batch_size: usize,
    /// How often to look for work when not woken (writes by other replicas).
    pub idle_poll: Duration,
    /// How often ownership is renewed while a batch is being published
    /// ([`OutboxStore::keep_lease`]); the store decides whether a renewal
    /// is due, so this only needs to be well below its lease.
    pub lease_renewal: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_millis(200),
            lease_renewal: Duration::from_secs(1),
        }
    }
}

/// Publishes pending outbox messages until `stop` is cancelled, then drains
/// what is pending (as far as the broker allows) and returns.
///
/// A message is removed from the outbox only after its delivery report; if
/// marking fails after delivery it is published again later, which consumers
/// absorb because they deduplicate by event id. Each delivery is counted in
/// `metrics` (`events_published_total`) when its report arrives.
pub async fn run_relay(
    store: Arc<dyn OutboxStore>,
    publisher: Arc<dyn EventPublisher>,
    signal: OutboxSignal,
    config: RelayConfig,
    stop: CancellationToken,
    metrics: Arc<Metrics>,
) {
    let mut backoff = Backoff::default();
    loop {
        let stopping = stop.is_cancelled();
        let batch = match store.next_batch(config.batch_size).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "outbox relay cannot read the outbox");
                if stopping || !sleep_or_stop(backoff.next_delay(), &stop).await {
                    break;
                }
                continue;
            }
        };
        if batch.is_empty() {
            if stopping {
                break;
            }
            wait_for_work(&signal, config.idle_poll, &stop).await;
            continue;
        }
        let traced = publish_spans(&batch);
        let sent = traced.as_ref().map_or(&batch[..], |(traced, _)| traced);
        let results = publish_keeping_lease(
            &*store,
            publish_in_order(&*publisher, sent),
            batch.len(),
            config.lease_renewal,
        )
        .await;
        if let Some((_, spans)) = &traced {
            telemetry::publish_results(spans, &results);
        }
        let delivered: Vec<EventId> = batch
            .iter()
            .zip(&results)
            .filter(|(_, r)| r.is_ok())
            .map(|(m, _)| {
                metrics.event_published(&m.topic, m.event_type());
                m.event_id.clone()
            })
            .collect();
        let failure = results.iter().find_map(|r| r.as_ref().err()).cloned();
        if !delivered.is_empty() {
            if let Err(e) = store.mark_published(&delivered).await {
                tracing::warn!(error = %e, count = delivered.len(), "delivered events not marked; they will be published again");
            }
        }
        match failure {
            None => {
                backoff.reset();
                // A batch short of the limit was everything pending when it
                // was read, and every write since has signalled: wait for
                // that rather than asking the store again at once.
                if batch.len() < config.batch_size {
                    if stopping {
                        break;
                    }
                    wait_for_work(&signal, config.idle_poll, &stop).await;
                }
            }
            Some(error) => {
                tracing::warn!(%error, pending = batch.len() - delivered.len(), "outbox relay could not publish; will retry");
                if stopping || !sleep_or_stop(backoff.next_delay(), &stop).await {
                    break;
                }
            }
        }
    }
    store.release().await;
}

/// A span for each event of an outbox batch, child of the span that wrote
/// it (its stored `traceparent`; a new trace when it has none), and the
/// batch with each event's `traceparent`/`tracestate` replaced by its
/// publish span's, so the consumer's span is a child of the publish.
/// `None` when traces are off: the batch goes out unchanged.
fn publish_spans(batch: &[OutboxMessage]) -> Option<(Vec<OutboxMessage>, Vec<Span>)> {
    if !telemetry::traces_enabled() {
        return None;
    }
    let mut messages = Vec::with_capacity(batch.len());
    let mut spans = Vec::with_capacity(batch.len());
    for m in batch {
        let mut message = m.clone();
        let span = telemetry::publish_span(
            Published {
                topic: &m.topic,
                event_id: m.event_id.as_str(),
                key: &m.key,
                event_type: m.event_type(),
            },
            &mut message.headers,
        );
        messages.push(message);
        spans.push(span);
    }
    Some((messages, spans))
}

/// Why an event was held back from a publish.
const HELD_BACK: &str = "not sent: an earlier event of the same aggregate was not delivered";

/// Publishes `batch` so that no event of an aggregate (its key) goes out
/// before an earlier one of the same aggregate was delivered: in waves, the
/// first event of every key, then the second of the keys whose first was
/// delivered, and so on. A batch with one event per key (the usual case) is
/// one publish. An event after a failed one is reported failed without
/// being sent, so it stays in the outbox behind it. Within a wave, sends of
/// different keys share round trips as before.
///
/// Sending all of one key's events at once and relying on the producer's
/// per-partition order is not enough: when an earlier message's delivery
/// timeout expires while the broker is away, a later one enqueued just after
/// may still be delivered, and the earlier one would then be published
/// again after it.
pub async fn publish_in_order(
    publisher: &dyn EventPublisher,
    batch: &[OutboxMessage],
) -> Vec<Result<(), String>> {
    let mut seen: std::collections::HashMap<&str, usize> = Default::default();
    let waves: Vec<usize> = batch
        .iter()
        .map(|m| {
            let n = seen.entry(m.key.as_str()).or_default();
            *n += 1;
            *n - 1
        })
        .collect();
    let mut results: Vec<Option<Result<(), String>>> = vec![None; batch.len()];
    let mut failed: std::collections::HashSet<&str> = Default::default();
    for wave in 0..=waves.iter().copied().max().unwrap_or(0) {
        let members: Vec<usize> = (0..batch.len())
            .filter(|&i| waves[i] == wave && !failed.contains(batch[i].key.as_str()))
            .collect();
        if members.is_empty() {
            break;
        }
        let sent = if members.len() == batch.len() {
            publisher.publish(batch).await
        } else {
            let messages: Vec<OutboxMessage> = members.iter().map(|&i| batch[i].clone()).collect();
            publisher.publish(&messages).await
        };
        for (&i, result) in members.iter().zip(sent) {
            if result.is_err() {
                failed.insert(batch[i].key.as_str());
            }
            results[i] = Some(result);
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(HELD_BACK.to_string())))
        .collect()
}

/// Runs `publish` (of `count` events), renewing the store's ownership every
/// `renewal` until the broker has answered for every message.
async fn publish_keeping_lease(
    store: &dyn OutboxStore,
    publish: impl std::future::Future<Output = Vec<Result<(), String>>>,
    count: usize,
    renewal: Duration,
) -> Vec<Result<(), String>> {
    tokio::pin!(publish);
    let mut renew = tokio::time::interval_at(tokio::time::Instant::now() + renewal, renewal);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            results = &mut publish => return results,
            _ = renew.tick() => match store.keep_lease().await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(
                    count,
                    "outbox relay lost its lease while publishing; another replica may publish these events too"
                ),
                Err(e) => tracing::warn!(error = %e, "outbox relay cannot renew its lease while publishing"),
            },
        }
    }
}

/// Waits for a write's signal, the idle poll (a safety net: another
/// replica's lease may have expired) or `stop`, whichever comes first.
async fn wait_for_work(signal: &OutboxSignal, idle_poll: Duration, stop: &CancellationToken) {
    tokio::select! {
        _ = signal.notified() => {}
        _ = tokio::time::sleep(idle_poll) => {}
        _ = stop.cancelled() => {}
    }
}

/// Sleeps unless `stop` fires first; returns whether to keep going.
async fn sleep_or_stop(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = stop.cancelled() => false,
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::outbox::test_messages::message_named;

    /// Events named `ids`, each keyed by its name's first letter ("a2" has
    /// the key "a"): a batch that reads as its order per key.
    fn keyed_batch(ids: &[&str]) -> Vec<OutboxMessage> {
        ids.iter()
            .map(|id| OutboxMessage {
                key: id[..1].into(),
                ..message_named(id)
            })
            .collect()
    }

    /// Records each publish call; fails the events named in `fail`.
    #[derive(Default)]
    struct Recorder {
        calls: std::sync::Mutex<Vec<Vec<String>>>,
        fail: Vec<&'static str>,
    }

    #[async_trait]
    impl EventPublisher for Recorder {
        async fn publish(&self, batch: &[OutboxMessage]) -> Vec<Result<(), String>> {
            self.calls
                .lock()
                .unwrap()
                .push(batch.iter().map(|m| m.event_id.to_string()).collect());
            batch
                .iter()
                .map(|m| {
                    if self.fail.contains(&m.event_id.as_str()) {
                        Err("timed out".into())
                    } else {
                        Ok(())
                    }
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn one_event_per_key_is_one_publish() {
        let publisher = Recorder::default();
        let batch = keyed_batch(&["a1", "b1", "c1"]);
        let results = publish_in_order(&publisher, &batch).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(publisher.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_keys_later_event_goes_out_only_after_the_earlier_one_was_delivered() {
        let publisher = Recorder::default();
        let batch = keyed_batch(&["a1", "b1", "a2", "a3"]);
        let results = publish_in_order(&publisher, &batch).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(
            *publisher.calls.lock().unwrap(),
            vec![vec!["a1", "b1"], vec!["a2"], vec!["a3"]]
        );
    }

    #[tokio::test]
    async fn after_a_failure_the_keys_later_events_are_held_back_unsent() {
        let publisher = Recorder {
            fail: vec!["a1"],
            ..Recorder::default()
        };
        let batch = keyed_batch(&["a1", "b1", "a2", "b2"]);
        let results = publish_in_order(&publisher, &batch).await;
        assert!(results[0].is_err());
        assert_eq!(results[2], Err(HELD_BACK.to_string()));
        assert!(results[1].is_ok() && results[3].is_ok());
        let sent: Vec<String> = publisher.calls.lock().unwrap().concat();
        assert!(!sent.contains(&"a2".to_string()), "{sent:?}");
    }
}
