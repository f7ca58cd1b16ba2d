//! The inbox watcher: one task per process that finds new notifications in
//! the store and publishes them, once each and in position order, to the
//! process's open streams ([`super::hub`]).
//!
//! Why polling, and why positions: any replica's consumer may write a
//! notification, and a client's stream may be on any other replica. The
//! inbox in the database is the source of truth, so every replica reads new
//! entries from it: one indexed query (`position > last published`) per
//! [`POLL`], whatever the number of streams, and at once when this
//! process wrote something itself. Change streams would push instead, but
//! they need a replica set, and the MongoDB-protocol server the tests run on
//! does not offer them reliably; polling works on every deployment.
//!
//! `created_at` cannot be the order to follow: it is the time of the event,
//! and an event consumed late (a redelivery, a consumer catching up after an
//! outage) is written long after newer ones. Positions come from one
//! counter taken just before each write, so a position is known before its
//! entry is visible and two writers' entries can become visible out of
//! order. The watcher therefore publishes only the contiguous run after the
//! last position it published, and waits at a hole: normally for one poll
//! (a write in flight). A writer that finds its notification already stored
//! (a redelivered event) fills the position so no one waits for it; a hole
//! left by a writer that failed between taking a position and writing is
//! passed over after [`HOLE_PATIENCE`].

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{hub::StreamHub, InboxEntry, NotificationStore};
use crate::backoff::Backoff;

/// How often the watcher asks the database for entries other processes
/// wrote. Bounds how late a notification written on another replica
/// reaches a stream here.
pub const POLL: Duration = Duration::from_millis(25);

/// How often the watcher polls while no stream is open in this process. It
/// still publishes every entry in order (so a stream opened later starts
/// from an up-to-date position), at a cost of a few queries a second
/// instead of forty: measured on the test database, where every query
/// counts, 40 polls a second per replica took a large share of its capacity
/// during the benchmark's create phase (docs/benchmarks.md). A stream
/// opened meanwhile gets its first live event within this much later.
pub const IDLE_POLL: Duration = Duration::from_millis(500);

/// How long the watcher waits for a missing position before passing over
/// it. Only a writer that failed mid-write leaves one.
pub const HOLE_PATIENCE: Duration = Duration::from_secs(2);

/// Most entries read per query.
const BATCH: usize = 500;

/// Feeds a [`StreamHub`] from a [`NotificationStore`].
pub struct InboxWatcher {
    store: Arc<dyn NotificationStore>,
    hub: Arc<StreamHub>,
    poll: Duration,
    patience: Duration,
}

impl InboxWatcher {
    /// A watcher polling every [`POLL`] (when the store is shared) and
    /// waiting [`HOLE_PATIENCE`] at a hole.
    pub fn new(store: Arc<dyn NotificationStore>, hub: Arc<StreamHub>) -> Self {
        Self {
            store,
            hub,
            poll: POLL,
            patience: HOLE_PATIENCE,
        }
    }

    /// Runs until `stop`, then closes the hub so every open stream ends.
    pub async fn run(self, stop: CancellationToken) {
        if let Some(last) = self.first_position(&stop).await {
            self.hub.start_at(last);
            self.follow(&stop).await;
        }
        self.hub.close();
    }

    /// The last position written when the watcher starts: streams are live
    /// from there (a resumed stream reads the rest from the store).
    async fn first_position(&self, stop: &CancellationToken) -> Option<u64> {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        loop {
            match self.store.last_position().await {
                Ok(p) => return Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "inbox watcher cannot read the inbox yet; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return None,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        }
    }

    async fn follow(&self, stop: &CancellationToken) {
        let written = self.store.written();
        let mut gaps = Gaps::default();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let mut delay = Some(Duration::ZERO);
        loop {
            // Another process's entries (or a hole) are only found by
            // asking again; this process's own wake the watcher.
            let poll = async move {
                match delay {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = written.notified() => {}
                _ = poll => {}
            }
            delay = match self.catch_up(&mut gaps).await {
                Ok(()) => {
                    backoff.reset();
                    let pace = if self.hub.has_streams() {
                        self.poll
                    } else {
                        self.poll.max(IDLE_POLL)
                    };
                    (self.store.shared() || gaps.waiting.is_some()).then_some(pace)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "inbox watcher cannot read new notifications; retrying");
                    Some(backoff.next_delay())
                }
            };
        }
    }

    /// Publishes every contiguous entry after the last published one.
    async fn catch_up(&self, gaps: &mut Gaps) -> Result<(), crate::store::StoreError> {
        loop {
            let last = self.hub.published();
            let entries = self.store.entries_after(last, BATCH).await?;
            let ready = gaps.ready(last, &entries, Instant::now(), self.patience);
            self.hub.publish(&entries[..ready]);
            if ready < entries.len() || entries.len() < BATCH {
                return Ok(());
            }
        }
    }
}

/// The hole the watcher is waiting at, if any, and since when.
#[derive(Debug, Default)]
struct Gaps {
    waiting: Option<(u64, Instant)>,
}

impl Gaps {
    /// How many of `entries` (positions after `last`, ascending) can be
    /// published now: the contiguous run, plus whatever follows a hole
    /// waited on for `patience` already.
    fn ready(
        &mut self,
        last: u64,
        entries: &[InboxEntry],
        now: Instant,
        patience: Duration,
    ) -> usize {
        let mut expected = last + 1;
        for (i, entry) in entries.iter().enumerate() {
            if entry.position > expected {
                match self.waiting {
                    Some((hole, since)) if hole == expected && now - since >= patience => {
                        tracing::warn!(
                            from = expected,
                            to = entry.position - 1,
                            "inbox positions never written (a writer failed mid-write); passed over"
                        );
                    }
                    Some((hole, _)) if hole == expected => return i,
                    _ => {
                        self.waiting = Some((expected, now));
                        return i;
                    }
                }
            }
            self.waiting = None;
            expected = entry.position + 1;
        }
        entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(positions: &[u64]) -> Vec<InboxEntry> {
        positions
            .iter()
            .map(|&position| InboxEntry {
                position,
                notification: None,
            })
            .collect()
    }

    const PATIENCE: Duration = Duration::from_secs(2);

    #[test]
    fn a_contiguous_run_is_published_whole() {
        let mut gaps = Gaps::default();
        assert_eq!(gaps.ready(4, &at(&[5, 6, 7]), Instant::now(), PATIENCE), 3);
        assert!(gaps.waiting.is_none());
    }

    #[test]
    fn a_hole_holds_back_what_follows_until_it_is_written() {
        let mut gaps = Gaps::default();
        let t0 = Instant::now();
        assert_eq!(gaps.ready(4, &at(&[5, 7, 8]), t0, PATIENCE), 1);
        // Position 6 is a write in flight: 7 and 8 wait...
        assert_eq!(gaps.ready(5, &at(&[7, 8]), t0 + PATIENCE / 2, PATIENCE), 0);
        // ...and go out in order once it is there.
        assert_eq!(
            gaps.ready(5, &at(&[6, 7, 8]), t0 + PATIENCE / 2, PATIENCE),
            3
        );
        assert!(gaps.waiting.is_none());
    }

    #[test]
    fn a_hole_never_written_is_passed_over_after_the_patience() {
        let mut gaps = Gaps::default();
        let t0 = Instant::now();
        assert_eq!(gaps.ready(4, &at(&[7, 8]), t0, PATIENCE), 0);
        assert_eq!(gaps.ready(4, &at(&[7, 8]), t0 + PATIENCE, PATIENCE), 2);
        // A new hole gets its own patience.
        assert_eq!(gaps.ready(8, &at(&[10]), t0 + PATIENCE * 2, PATIENCE), 0);
    }
}
