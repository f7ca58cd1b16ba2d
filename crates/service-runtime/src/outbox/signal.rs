//! [`OutboxSignal`]: how a committed write wakes the relay and hands it the
//! events it wrote ([`Committed`]), so they go out without being read back.

use events::EventId;
use std::{collections::VecDeque, sync::Arc};

use tokio::sync::Notify;

use super::message::OutboxMessage;

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
    pub after: Vec<EventId>,
}

/// Most events waiting in the hand-over queue. Beyond it (the broker has been
/// down a while and the relay is not taking any) new events are dropped from
/// memory — they stay in the database for the sweep — so an outage does not
/// grow the process.
pub const MAX_HANDOVER: usize = 10_000;

impl OutboxSignal {
    /// Resolves when a write signalled (or had signalled since the last
    /// wake): what the relay waits on between batches.
    pub(super) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.0.wake.notified()
    }

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
    pub fn appended(&self, collection: &'static str, message: OutboxMessage, outbox: &[EventId]) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::test_messages::{message, message_named};

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

    #[test]
    fn an_appended_event_names_the_events_before_it() {
        let signal = OutboxSignal::default();
        let ids: [EventId; 3] = ["e1".into(), "e2".into(), "e3".into()];
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
