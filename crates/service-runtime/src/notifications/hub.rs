//! The open notification streams of one process, and the fan-out to them.
//!
//! The [`super::watcher`] publishes every new inbox entry here once, in
//! position order; the hub hands each notification to the streams of its
//! recipient. Each stream has a bounded queue: a client too slow to keep up
//! loses its stream (it ends after what was queued) instead of making the
//! process buffer without limit, and reconnects with `Last-Event-ID`.
//!
//! The hub also remembers the last position it published. A stream opened
//! now receives every entry after that position live, so a resumed stream
//! replays exactly the positions up to it from the store: no gap, no
//! duplicate (see [`super::stream`]).
//!
//! While no stream is open here the watcher may go *dormant*: it then reads
//! the inbox only every few seconds, so the last position published lags.
//! A stream opened then first asks the watcher to catch up
//! ([`StreamHub::subscribe_current`]), so it still starts from now.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use events::UserId;
use tokio::sync::{mpsc, watch, Notify};

use super::{InboxEntry, Notification};
use crate::config::env::{ConfigError, EnvVar};

/// How many streams one user may hold open on one replica, and how many
/// notifications may wait for a slow stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamConfig {
    /// `NOTIFICATION_STREAMS_PER_USER`.
    pub per_user: usize,
    /// Notifications queued for one stream before it is dropped as too slow.
    pub queue: usize,
}

/// Default of `NOTIFICATION_STREAMS_PER_USER`: a few tabs and devices.
pub const DEFAULT_STREAMS_PER_USER: usize = 5;

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            per_user: DEFAULT_STREAMS_PER_USER,
            queue: 256,
        }
    }
}

impl StreamConfig {
    /// The variable [`StreamConfig::from_lookup`] reads, with its default
    /// (part of [`env_spec`](crate::config::env_spec)).
    pub fn env_spec() -> Vec<EnvVar> {
        vec![EnvVar {
            name: "NOTIFICATION_STREAMS_PER_USER",
            default: Some(DEFAULT_STREAMS_PER_USER.to_string()),
            description: "notification streams one user may hold open on one replica",
        }]
    }

    /// Reads `NOTIFICATION_STREAMS_PER_USER` through `lookup` (unset or
    /// empty: the default).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        let name = "NOTIFICATION_STREAMS_PER_USER";
        if let Some(raw) = lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
        {
            config.per_user = raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(|| ConfigError::Invalid {
                    name,
                    value: raw.clone(),
                    reason: "expected a whole number from 1 to 1000".into(),
                })?;
        }
        Ok(config)
    }
}

/// Why a stream cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The user already holds [`StreamConfig::per_user`] streams here.
    TooMany(usize),
    /// The service is shutting down.
    Closed,
}

/// Longest a stream being opened waits for a dormant watcher to catch up
/// before it starts from where the hub is (a little behind, at worst: it
/// then receives as live a few notifications written just before).
pub const SYNC_PATIENCE: Duration = Duration::from_secs(1);

/// The streams of one process, by recipient.
pub struct StreamHub {
    config: StreamConfig,
    state: Arc<Mutex<HubState>>,
    /// Wakes the watcher: a stream is opening or was opened.
    wake: Notify,
    /// The last catch-up request the watcher has answered.
    synced: watch::Sender<u64>,
}

#[derive(Default)]
struct HubState {
    /// The last position published.
    published: u64,
    /// Whether the watcher is reading the inbox only rarely (no stream open).
    dormant: bool,
    /// Catch-up requests made so far.
    sync_wanted: u64,
    closed: bool,
    next_stream: u64,
    users: HashMap<UserId, UserStreams>,
}

#[derive(Default)]
struct UserStreams {
    /// Streams open (counted until the client's response ends, even after
    /// the hub stopped feeding a slow one).
    open: usize,
    senders: Vec<(u64, mpsc::Sender<Notification>)>,
}

/// A stream's place in the hub: notifications after `from` arrive on
/// `live`. Dropping it frees the user's slot.
pub struct Subscription {
    /// The stream's bounded queue; it ends when the hub lets the stream go.
    pub live: mpsc::Receiver<Notification>,
    /// The last position published when the stream was opened.
    pub from: u64,
    /// Counts against the user's limit while the response lasts.
    pub slot: Slot,
}

/// Holds one of a user's stream slots until dropped.
pub struct Slot {
    state: Arc<Mutex<HubState>>,
    user: UserId,
    stream: u64,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().expect("hub lock");
        if let Some(streams) = state.users.get_mut(&self.user) {
            streams.open -= 1;
            streams.senders.retain(|(id, _)| *id != self.stream);
            if streams.open == 0 {
                state.users.remove(&self.user);
            }
        }
    }
}

impl StreamHub {
    /// An empty hub; publishing starts where the watcher says ([`Self::start_at`]).
    pub fn new(config: StreamConfig) -> Self {
        Self {
            config,
            state: Arc::default(),
            wake: Notify::new(),
            synced: watch::Sender::new(0),
        }
    }

    /// Opens a stream for `user` like [`Self::subscribe`], but first, when
    /// the watcher is dormant, waits (up to [`SYNC_PATIENCE`]) for it to
    /// catch up with the inbox, so the stream starts from now; then wakes
    /// the watcher so it follows at the pace of open streams.
    pub async fn subscribe_current(&self, user: &UserId) -> Result<Subscription, Refused> {
        let ticket = {
            let mut state = self.state.lock().expect("hub lock");
            if state.closed {
                return Err(Refused::Closed);
            }
            state.dormant.then(|| {
                state.sync_wanted += 1;
                state.sync_wanted
            })
        };
        if let Some(ticket) = ticket {
            let mut synced = self.synced.subscribe();
            self.wake.notify_one();
            let caught_up = synced.wait_for(|&done| done >= ticket);
            if tokio::time::timeout(SYNC_PATIENCE, caught_up)
                .await
                .is_err()
            {
                tracing::debug!(
                    "the inbox watcher did not catch up in time; the stream starts where it is"
                );
            }
        }
        let subscription = self.subscribe(user)?;
        self.wake.notify_one();
        Ok(subscription)
    }

    /// Resolves when a stream is opening or was opened: the watcher should
    /// catch up and keep the pace of open streams.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Tells the hub whether the watcher is dormant (reading rarely, since
    /// no stream is open); while it is, opening a stream waits for a catch-up.
    pub fn set_dormant(&self, dormant: bool) {
        self.state.lock().expect("hub lock").dormant = dormant;
    }

    /// The catch-up requests made so far: a catch-up that starts now
    /// answers all of them ([`Self::synced`]).
    pub fn sync_wanted(&self) -> u64 {
        self.state.lock().expect("hub lock").sync_wanted
    }

    /// The watcher has caught up for every request up to `ticket`.
    pub fn synced(&self, ticket: u64) {
        self.synced.send_if_modified(|done| {
            let newer = ticket > *done;
            if newer {
                *done = ticket;
            }
            newer
        });
    }

    /// Opens a stream for `user`, unless they hold their limit of streams
    /// or the service is stopping.
    pub fn subscribe(&self, user: &UserId) -> Result<Subscription, Refused> {
        let mut state = self.state.lock().expect("hub lock");
        if state.closed {
            return Err(Refused::Closed);
        }
        let stream = state.next_stream;
        state.next_stream += 1;
        let from = state.published;
        let streams = state.users.entry(user.clone()).or_default();
        if streams.open >= self.config.per_user {
            return Err(Refused::TooMany(self.config.per_user));
        }
        let (tx, live) = mpsc::channel(self.config.queue);
        streams.open += 1;
        streams.senders.push((stream, tx));
        Ok(Subscription {
            live,
            from,
            slot: Slot {
                state: self.state.clone(),
                user: user.clone(),
                stream,
            },
        })
    }

    /// Where publishing starts (the watcher's first position, minus one).
    pub fn start_at(&self, position: u64) {
        self.state.lock().expect("hub lock").published = position;
    }

    /// Whether any stream is open here: while none is, the watcher has no
    /// one to be quick for and polls at its idle pace.
    pub fn has_streams(&self) -> bool {
        !self.state.lock().expect("hub lock").users.is_empty()
    }

    /// The last position published.
    pub fn published(&self) -> u64 {
        self.state.lock().expect("hub lock").published
    }

    /// Hands each entry to its recipient's streams, in order, and records
    /// the last position. A stream whose queue is full is let go: it ends
    /// after what it has queued, and its client resumes from there.
    pub fn publish(&self, entries: &[InboxEntry]) {
        let mut state = self.state.lock().expect("hub lock");
        for entry in entries {
            if let Some(n) = &entry.notification {
                if let Some(streams) = state.users.get_mut(&n.recipient_id) {
                    streams.senders.retain(|(_, tx)| match tx.try_send(n.clone()) {
                        Ok(()) => true,
                        Err(mpsc::error::TrySendError::Full(_)) => {
                            tracing::info!(recipient = %n.recipient_id, "notification stream too slow; closed for the client to resume");
                            false
                        }
                        Err(mpsc::error::TrySendError::Closed(_)) => false,
                    });
                }
            }
            state.published = state.published.max(entry.position);
        }
    }

    /// Ends every stream and refuses new ones: the service is stopping, and
    /// an open stream must not hold the shutdown.
    pub fn close(&self) {
        let mut state = self.state.lock().expect("hub lock");
        state.closed = true;
        for streams in state.users.values_mut() {
            streams.senders.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, recipient: &str) -> InboxEntry {
        InboxEntry {
            position,
            notification: Some(Notification::sample(&format!("n{position}"), recipient)),
        }
    }

    fn hub(per_user: usize, queue: usize) -> StreamHub {
        StreamHub::new(StreamConfig { per_user, queue })
    }

    #[test]
    fn each_notification_reaches_only_its_recipients_streams() {
        let hub = hub(5, 8);
        let mut alice = hub.subscribe(&"alice".into()).unwrap();
        let mut bob = hub.subscribe(&"bob".into()).unwrap();
        hub.publish(&[entry(1, "alice"), entry(2, "bob"), entry(3, "alice")]);
        assert_eq!(alice.live.try_recv().unwrap().id, "n1");
        assert_eq!(alice.live.try_recv().unwrap().id, "n3");
        assert!(alice.live.try_recv().is_err());
        assert_eq!(bob.live.try_recv().unwrap().id, "n2");
        assert!(bob.live.try_recv().is_err());
        assert_eq!(hub.published(), 3);
        assert_eq!(hub.subscribe(&"carol".into()).unwrap().from, 3);
    }

    #[test]
    fn a_user_holds_at_most_the_limit_and_a_closed_stream_frees_its_slot() {
        let hub = hub(2, 8);
        let first = hub.subscribe(&"alice".into()).unwrap();
        let _second = hub.subscribe(&"alice".into()).unwrap();
        assert_eq!(
            hub.subscribe(&"alice".into()).err(),
            Some(Refused::TooMany(2))
        );
        assert!(
            hub.subscribe(&"bob".into()).is_ok(),
            "the limit is per user"
        );
        drop(first);
        assert!(hub.subscribe(&"alice".into()).is_ok());
    }

    #[test]
    fn a_stream_too_slow_ends_after_what_it_queued() {
        let hub = hub(5, 2);
        let mut slow = hub.subscribe(&"alice".into()).unwrap();
        hub.publish(&[entry(1, "alice"), entry(2, "alice"), entry(3, "alice")]);
        assert_eq!(slow.live.try_recv().unwrap().id, "n1");
        assert_eq!(slow.live.try_recv().unwrap().id, "n2");
        assert_eq!(
            slow.live.try_recv().err(),
            Some(mpsc::error::TryRecvError::Disconnected),
            "dropped rather than buffered without bound"
        );
    }

    #[test]
    fn closing_ends_every_stream_and_refuses_new_ones() {
        let hub = hub(5, 8);
        let mut open = hub.subscribe(&"alice".into()).unwrap();
        hub.close();
        assert_eq!(
            open.live.try_recv().err(),
            Some(mpsc::error::TryRecvError::Disconnected)
        );
        assert_eq!(hub.subscribe(&"alice".into()).err(), Some(Refused::Closed));
    }
}
