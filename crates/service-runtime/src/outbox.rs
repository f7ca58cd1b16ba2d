//! The transactional outbox: events are written in the same atomic database
//! operation as the state change they describe, and a relay publishes them
//! afterwards, marking them sent only after the broker confirmed delivery.
//!
//! So a request that got its 2xx is never lost when Kafka is down (the event
//! waits in the database), and nothing is published for a write that did not
//! commit (the event is part of that write).

use std::{collections::VecDeque, sync::Arc, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::{cloud_event_headers, Envelope, EventPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{backoff::Backoff, messaging::EventPublisher, metrics::Metrics, store::StoreError};

/// An event waiting to be published, exactly as it will go on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub event_id: String,
    pub topic: String,
    pub key: String,
    pub payload: String,
    pub headers: Vec<(String, String)>,
    #[serde(with = "events::timestamp")]
    pub created_at: DateTime<Utc>,
}

impl OutboxMessage {
    /// The message for `envelope` on `topic`: its CloudEvents headers and,
    /// when traces are on, the `traceparent`/`tracestate` of the current
    /// span ([`crate::telemetry::trace_headers`]), so the event is published
    /// and consumed in the trace of the request that wrote it. The headers
    /// are stored with the event, so they survive the outbox's database
    /// round trip.
    pub fn new<P: EventPayload>(topic: &str, envelope: &Envelope<P>) -> Self {
        let mut headers = cloud_event_headers(envelope);
        headers.extend(crate::telemetry::trace_headers());
        Self {
            event_id: envelope.event_id.clone(),
            topic: topic.to_string(),
            key: envelope.key().to_string(),
            payload: envelope.to_json(),
            headers,
            created_at: envelope.occurred_at,
        }
    }

    /// The CloudEvents type from the `ce_type` header this build writes
    /// (`unknown` if absent): the `type` label of `events_published_total`.
    pub fn event_type(&self) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| k == "ce_type")
            .map_or(crate::metrics::UNKNOWN_EVENT_TYPE, |(_, v)| v.as_str())
    }
}

/// Where pending outbox messages are read from and marked published.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Up to `limit` unpublished messages, each aggregate's in write order.
    /// May return none when another replica currently owns relaying.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError>;
    /// The relay's next batch: like [`OutboxStore::pending`], but a store
    /// may answer from what writes handed over ([`OutboxSignal::committed`])
    /// instead of reading, so an event it returned once (and that is still
    /// unpublished because publishing failed) may be left out until the
    /// store next looks everywhere. The default is `pending`.
    async fn next_batch(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        self.pending(limit).await
    }
    /// Removes delivered messages from the outbox.
    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError>;
    /// Keeps relay ownership while a batch this store returned is being
    /// published: a publish can outlast an ownership lease (the broker is
    /// slow or down, and delivery waits up to its timeout), and another
    /// replica must not start publishing the same events meanwhile. The
    /// relay calls it every [`RelayConfig::lease_renewal`] during a publish;
    /// `Ok(false)` means ownership was lost. The default owns nothing.
    async fn keep_lease(&self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Gives up relay ownership so another replica takes over at once.
    async fn release(&self) {}
    /// How many events wait in the whole outbox and since when, whoever
    /// relays them (the `outbox_*` gauges, read at scrape time). The
    /// default reads them through [`OutboxStore::pending`].
    async fn backlog(&self) -> Result<Backlog, StoreError> {
        let pending = self.pending(usize::MAX).await?;
        Ok(Backlog {
            pending: pending.len() as u64,
            oldest: pending.iter().map(|m| m.created_at).min(),
        })
    }
}

/// How much waits in an outbox: what an operator alerts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Events not yet removed after delivery.
    pub pending: u64,
    /// When the oldest of them was written.
    pub oldest: Option<DateTime<Utc>>,
}

/// Wakes the relay right after a write that added to the outbox, and hands it
/// the events that write committed, so they go out at once without the relay
/// reading them back from the database.
///
/// Handing over is an optimisation, never the source of truth: the events
/// are already durable in the aggregate documents, and the relay's periodic
/// sweep finds any it was not handed (other replicas' writes, a previous
/// process's leftovers, events dropped here when the queue was full).
#[derive(Clone, Default, Debug)]
pub struct OutboxSignal(Arc<SignalState>);

#[derive(Default, Debug)]
struct SignalState {
    wake: Notify,
    committed: std::sync::Mutex<Handover>,
}

/// Events handed to the relay and not yet taken.
#[derive(Default, Debug)]
struct Handover {
    events: VecDeque<Committed>,
    /// Some were dropped because the queue was full; only a sweep finds them.
    dropped: bool,
}

/// An event a committed write added to a document of `collection`.
#[derive(Debug, Clone, PartialEq)]
pub struct Committed {
    pub collection: &'static str,
    pub message: OutboxMessage,
    /// The events the document's outbox held before this one (written
    /// earlier, not yet removed). The relay may publish the hand-over at
    /// once only when all of them are delivered; otherwise it leaves it to
    /// the sweep, which reads a document's events in write order.
    pub after: Vec<String>,
}

/// Most events waiting in the hand-over queue. Beyond it (the broker has been
/// down a while and the relay is not taking any) new events are dropped from
/// memory — they stay in the database for the sweep — so an outage does not
/// grow the process.
pub const MAX_HANDOVER: usize = 10_000;

impl OutboxSignal {
    /// An event was added somewhere; the relay should look.
    pub fn notify(&self) {
        self.0.wake.notify_one();
    }

    /// A write created a document of `collection` with these events in its
    /// outbox: hands them to the relay and wakes it. Call it only after the
    /// write is acknowledged, never for one that may not have committed.
    pub fn committed(
        &self,
        collection: &'static str,
        messages: impl IntoIterator<Item = OutboxMessage>,
    ) {
        self.hand_over(messages.into_iter().map(|message| Committed {
            collection,
            message,
            after: Vec::new(),
        }));
    }

    /// A write added `message` to the outbox of an existing document of
    /// `collection`, which then held `outbox` (the ids of all its pending
    /// events, in write order, this one last). Like [`Self::committed`],
    /// but the relay publishes it only after the events before it.
    pub fn appended(&self, collection: &'static str, message: OutboxMessage, outbox: &[String]) {
        let after = outbox
            .iter()
            .take_while(|id| **id != message.event_id)
            .cloned()
            .collect();
        self.hand_over([Committed {
            collection,
            message,
            after,
        }]);
    }

    fn hand_over(&self, events: impl IntoIterator<Item = Committed>) {
        {
            let mut handover = self.0.committed.lock().expect("signal lock");
            for event in events {
                if handover.events.len() >= MAX_HANDOVER {
                    handover.dropped = true;
                    break;
                }
                handover.events.push_back(event);
            }
        }
        self.notify();
    }

    /// Takes up to `limit` handed-over events, oldest first, and whether any
    /// were dropped since the last call.
    pub fn take_committed(&self, limit: usize) -> (Vec<Committed>, bool) {
        let mut handover = self.0.committed.lock().expect("signal lock");
        let n = limit.min(handover.events.len());
        let taken = handover.events.drain(..n).collect();
        (taken, std::mem::take(&mut handover.dropped))
    }

    /// Forgets every handed-over event (a replica that is not relaying: the
    /// one that is finds them in the database).
    pub fn discard_committed(&self) {
        let mut handover = self.0.committed.lock().expect("signal lock");
        handover.events.clear();
        handover.dropped = false;
    }
}

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
        let traced = crate::telemetry::publish_spans(&batch);
        let sent = traced.as_ref().map_or(&batch[..], |(traced, _)| traced);
        let results = publish_keeping_lease(
            &*store,
            publish_in_order(&*publisher, sent),
            batch.len(),
            config.lease_renewal,
        )
        .await;
        if let Some((_, spans)) = &traced {
            crate::telemetry::publish_results(spans, &results);
        }
        let delivered: Vec<String> = batch
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
        _ = signal.0.wake.notified() => {}
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

/// The outbox of the in-memory adapters. A store pushes to it while holding
/// its own state lock, which makes the state change and the event one step.
#[derive(Default)]
pub struct InMemoryOutbox {
    pending: std::sync::Mutex<Vec<OutboxMessage>>,
    signal: OutboxSignal,
}

impl InMemoryOutbox {
    pub fn new(signal: OutboxSignal) -> Self {
        Self {
            pending: Default::default(),
            signal,
        }
    }

    pub fn push(&self, message: OutboxMessage) {
        self.pending.lock().expect("outbox lock").push(message);
        self.signal.notify();
    }

    /// How many events wait to be published (tests and diagnostics).
    pub fn len(&self) -> usize {
        self.pending.lock().expect("outbox lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl OutboxStore for InMemoryOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, StoreError> {
        let pending = self.pending.lock().expect("outbox lock");
        Ok(pending.iter().take(limit).cloned().collect())
    }

    async fn mark_published(&self, event_ids: &[String]) -> Result<(), StoreError> {
        self.pending
            .lock()
            .expect("outbox lock")
            .retain(|m| !event_ids.contains(&m.event_id));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: usize) -> OutboxMessage {
        OutboxMessage {
            event_id: format!("e{id}"),
            topic: "t".into(),
            key: "k".into(),
            payload: "{}".into(),
            headers: vec![],
            created_at: Utc::now(),
        }
    }

    #[test]
    fn hand_over_is_taken_oldest_first_in_batches() {
        let signal = OutboxSignal::default();
        signal.committed("a", [message(1), message(2)]);
        signal.committed("b", [message(3)]);
        let (first, dropped) = signal.take_committed(2);
        assert!(!dropped);
        let ids: Vec<_> = first.iter().map(|c| c.message.event_id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"]);
        let (rest, _) = signal.take_committed(10);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].collection, "b");
        assert!(signal.take_committed(10).0.is_empty());
    }

    #[test]
    fn a_full_hand_over_queue_drops_and_says_so_once() {
        let signal = OutboxSignal::default();
        signal.committed("a", (0..MAX_HANDOVER + 5).map(message));
        let (taken, dropped) = signal.take_committed(usize::MAX);
        assert_eq!(taken.len(), MAX_HANDOVER);
        assert!(dropped, "the relay learns it must sweep");
        assert!(!signal.take_committed(usize::MAX).1);
    }

    fn keyed(id: &str, key: &str) -> OutboxMessage {
        OutboxMessage {
            key: key.into(),
            ..message_named(id)
        }
    }

    fn message_named(id: &str) -> OutboxMessage {
        OutboxMessage {
            event_id: id.into(),
            ..message(0)
        }
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
                .push(batch.iter().map(|m| m.event_id.clone()).collect());
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
        let batch = [keyed("a1", "a"), keyed("b1", "b"), keyed("c1", "c")];
        let results = publish_in_order(&publisher, &batch).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(publisher.calls.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_keys_later_event_goes_out_only_after_the_earlier_one_was_delivered() {
        let publisher = Recorder::default();
        let batch = [
            keyed("a1", "a"),
            keyed("b1", "b"),
            keyed("a2", "a"),
            keyed("a3", "a"),
        ];
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
        let batch = [
            keyed("a1", "a"),
            keyed("b1", "b"),
            keyed("a2", "a"),
            keyed("b2", "b"),
        ];
        let results = publish_in_order(&publisher, &batch).await;
        assert!(results[0].is_err());
        assert_eq!(results[2], Err(HELD_BACK.to_string()));
        assert!(results[1].is_ok() && results[3].is_ok());
        let sent: Vec<String> = publisher.calls.lock().unwrap().concat();
        assert!(!sent.contains(&"a2".to_string()), "{sent:?}");
    }

    #[test]
    fn an_appended_event_names_the_events_before_it() {
        let signal = OutboxSignal::default();
        let ids = ["e1".to_string(), "e2".to_string(), "e3".to_string()];
        signal.appended("a", message_named("e3"), &ids);
        let (taken, _) = signal.take_committed(10);
        assert_eq!(taken[0].after, vec!["e1", "e2"]);
    }

    #[test]
    fn discarding_forgets_the_queue() {
        let signal = OutboxSignal::default();
        signal.committed("a", [message(1)]);
        signal.discard_committed();
        assert!(signal.take_committed(10).0.is_empty());
    }
}
