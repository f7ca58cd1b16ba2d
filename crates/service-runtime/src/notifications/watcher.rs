//! The inbox watcher: one task per process that finds new notifications in
//! the store and publishes them, once each and in position order, to the
//! process's open streams ([`super::hub`]).
//!
//! Why polling, and why positions: any replica's consumer may write a
//! notification, and a client's stream may be on any other replica. The
//! inbox in the database is the source of truth, so every replica reads new
//! entries from it. Between reads the watcher looks only at the position
//! counter (one document by `_id`, [`NotificationStore::last_taken`]) every
//! [`POLL`], whatever the number of streams, and reads the entries when the
//! counter is ahead of what it published, or at once when this process
//! wrote something itself. Change streams would push instead, but they
//! need a replica set, and the MongoDB-protocol server the tests run on
//! does not offer them reliably; polling works on every deployment.
//!
//! While no stream is open in this process the watcher is *dormant*: it
//! ignores this process's own writes and looks only every
//! [`DORMANT_POLL`], since nobody here waits for an entry; a stream opened
//! meanwhile makes it catch up first ([`StreamHub::subscribe_current`]).
//! An idle service so costs one read every two seconds instead of two a
//! second plus one per write.
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

/// How often the watcher looks for entries other processes wrote while a
/// stream is open here. Bounds how late a notification written on another
/// replica reaches a stream here (this process's own writes wake it at
/// once); each look is one read of the position counter, and the entries
/// are read only when it moved. At 25 ms these reads were 0.4 database
/// commands per booking per service at 100 bookings/s (docs/benchmarks.md);
/// a tenth of a second late is still live for a person.
pub const POLL: Duration = Duration::from_millis(100);

/// How often the watcher looks while no stream is open in this process
/// (dormant). It still publishes every entry in order, so the catch-up a
/// stream opened later waits for is short; measured idle, the 500 ms range
/// query this replaced was a sixth of an idle service's database commands.
pub const DORMANT_POLL: Duration = Duration::from_secs(2);

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

/// What a wake-up of the watcher reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Look {
    /// The entries after the last published (a write of its own, a hole, a
    /// stream opening).
    Entries,
    /// The position counter first; the entries only if it moved.
    Counter,
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
        self.hub.set_dormant(false);
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
        let shared = self.store.shared();
        let mut gaps = Gaps::default();
        let mut tail = Tail::default();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        // The first look reads the entries at once.
        let mut next: Option<Instant> = Some(Instant::now());
        let mut look = Look::Entries;
        loop {
            // Dormant: no stream here, and other processes write too (an
            // unshared store wakes the watcher on every write, for free).
            let dormant = shared && !self.hub.has_streams();
            self.hub.set_dormant(dormant);
            let poll = async move {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // A catch-up that starts now answers these stream openings.
            let mut ticket = None;
            tokio::select! {
                _ = stop.cancelled() => return,
                // This process's own entries, read at once unless nobody
                // here streams them (then the wake-up is only used up, and
                // the next poll stays when it was).
                _ = written.notified() => {
                    if dormant {
                        continue;
                    }
                    look = Look::Entries;
                }
                _ = self.hub.woken() => {
                    ticket = Some(self.hub.sync_wanted());
                    look = Look::Entries;
                }
                _ = poll => {}
            }
            let result = match look {
                Look::Entries => self.catch_up(&mut gaps).await,
                Look::Counter => self.look_at_counter(&mut gaps, &mut tail).await,
            };
            if let Some(ticket) = ticket {
                // Answered even after a failure: the stream then starts
                // where the hub is rather than wait.
                self.hub.synced(ticket);
            }
            let dormant = shared && !self.hub.has_streams();
            (next, look) = match result {
                Ok(()) => {
                    backoff.reset();
                    if gaps.waiting.is_some() {
                        // A write in flight: look for it again soon.
                        (Some(Instant::now() + self.poll), Look::Entries)
                    } else if shared {
                        let pace = if dormant { DORMANT_POLL } else { self.poll };
                        (Some(Instant::now() + pace), Look::Counter)
                    } else {
                        (None, Look::Entries)
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "inbox watcher cannot read new notifications; retrying");
                    (Some(Instant::now() + backoff.next_delay()), Look::Entries)
                }
            };
        }
    }

    /// Reads the position counter, and the entries only when it is ahead
    /// of what was published: a tick with nothing new costs one read of
    /// one document. A counter left ahead by a writer that failed after
    /// taking its positions is looked past once [`Self::patience`] has shown
    /// nothing comes.
    async fn look_at_counter(
        &self,
        gaps: &mut Gaps,
        tail: &mut Tail,
    ) -> Result<(), crate::store::StoreError> {
        let taken = self.store.last_taken().await?;
        if taken <= self.hub.published()
            || !tail.worth_reading(taken, Instant::now(), self.patience)
        {
            return Ok(());
        }
        self.catch_up(gaps).await
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

/// The counter value the watcher last found ahead of what it published, and
/// since when: positions taken there but not (yet) written.
#[derive(Debug, Default)]
struct Tail {
    ahead: Option<(u64, Instant)>,
}

impl Tail {
    /// Whether a counter at `taken` (ahead of what was published) is worth
    /// reading the entries for: yes while it moves, and for `patience`
    /// after it stopped (a write in flight becomes visible); after that, a
    /// writer failed after taking those positions, and only a new write
    /// (the counter moving) brings anything.
    fn worth_reading(&mut self, taken: u64, now: Instant, patience: Duration) -> bool {
        match self.ahead {
            Some((at, since)) if at == taken => now - since < patience,
            _ => {
                self.ahead = Some((taken, now));
                true
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

    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use events::{EventId, UserId};
    use tokio::sync::Notify;

    use crate::{
        notifications::{hub::StreamConfig, InMemoryNotificationStore, Notification},
        paging::{Page, PageRequest},
        store::StoreError,
    };

    /// The in-memory store posing as one other processes write to too, so
    /// the watcher polls it; counts the watcher's reads.
    #[derive(Default)]
    struct Shared {
        inner: InMemoryNotificationStore,
        range_reads: AtomicUsize,
        counter_reads: AtomicUsize,
    }

    #[async_trait]
    impl NotificationStore for Shared {
        async fn add(&self, n: &Notification) -> Result<(), StoreError> {
            self.inner.add(n).await
        }
        async fn add_many(&self, ns: &[Notification]) -> Result<(), StoreError> {
            self.inner.add_many(ns).await
        }
        async fn list(
            &self,
            r: &UserId,
            p: &PageRequest,
        ) -> Result<Page<Notification>, StoreError> {
            self.inner.list(r, p).await
        }
        async fn entries_after(&self, p: u64, l: usize) -> Result<Vec<InboxEntry>, StoreError> {
            self.range_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.entries_after(p, l).await
        }
        async fn last_position(&self) -> Result<u64, StoreError> {
            self.inner.last_position().await
        }
        async fn last_taken(&self) -> Result<u64, StoreError> {
            self.counter_reads.fetch_add(1, Ordering::SeqCst);
            self.inner.last_position().await
        }
        async fn position_of(&self, r: &UserId, id: &EventId) -> Result<Option<u64>, StoreError> {
            self.inner.position_of(r, id).await
        }
        async fn recipient_entries(
            &self,
            r: &UserId,
            after: u64,
            upto: u64,
            l: usize,
        ) -> Result<Vec<InboxEntry>, StoreError> {
            self.inner.recipient_entries(r, after, upto, l).await
        }
        fn written(&self) -> Arc<Notify> {
            self.inner.written()
        }
        fn shared(&self) -> bool {
            true
        }
    }

    /// Dormant, the watcher reads nothing, not even this process's own
    /// writes; a stream opened then waits for one catch-up and starts from
    /// now; with it open, ticks read the counter, and entries only when
    /// something was written.
    #[tokio::test]
    async fn a_dormant_watcher_reads_nothing_until_a_stream_opens_and_then_starts_it_from_now() {
        let store = Arc::new(Shared::default());
        let hub = Arc::new(StreamHub::new(StreamConfig::default()));
        let stop = CancellationToken::new();
        let watcher = tokio::spawn(InboxWatcher::new(store.clone(), hub.clone()).run(stop.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reads = |s: &Shared| {
            (
                s.range_reads.load(Ordering::SeqCst),
                s.counter_reads.load(Ordering::SeqCst),
            )
        };
        let start = reads(&store);
        store.add(&Notification::sample("n1", "ada")).await.unwrap();
        store.add(&Notification::sample("n2", "bob")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(reads(&store), start, "dormant: nothing read");

        let mut stream = hub.subscribe_current(&"ada".into()).await.unwrap();
        assert_eq!(stream.from, 2, "caught up before the stream started");
        assert!(stream.live.try_recv().is_err(), "nothing old arrives live");

        let before = reads(&store);
        tokio::time::sleep(POLL * 5).await;
        let (range, counter) = reads(&store);
        assert!(counter - before.1 >= 3, "the counter is polled: {counter}");
        assert!(range - before.0 <= 1, "no entries re-read: {range}");

        store.add(&Notification::sample("n3", "ada")).await.unwrap();
        let live = tokio::time::timeout(Duration::from_secs(1), stream.live.recv())
            .await
            .expect("arrives live")
            .unwrap();
        assert_eq!(live.id, "n3");
        stop.cancel();
        watcher.await.unwrap();
    }

    #[test]
    fn a_counter_ahead_is_read_while_it_moves_and_for_the_patience_after() {
        let mut tail = Tail::default();
        let t0 = Instant::now();
        assert!(tail.worth_reading(5, t0, PATIENCE));
        assert!(tail.worth_reading(5, t0 + PATIENCE / 2, PATIENCE));
        assert!(
            !tail.worth_reading(5, t0 + PATIENCE, PATIENCE),
            "nothing came"
        );
        assert!(
            tail.worth_reading(6, t0 + PATIENCE * 2, PATIENCE),
            "it moved"
        );
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
