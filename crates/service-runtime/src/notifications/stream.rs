//! `GET /notifications/stream`: the caller's notifications as server-sent
//! events, each `id:` the notification id, `event: notification`, `data:`
//! the notification as `GET /notifications` lists it; a `: keep-alive`
//! comment every 15 s.
//!
//! Without `Last-Event-ID` (header, or `last_event_id` in the query for
//! clients that cannot set headers) the stream carries what arrives from
//! now on. With it, it first replays from the inbox every notification of
//! the caller written after that one and up to the position the hub had
//! published when the stream was opened, then continues live from exactly
//! there: nothing missed, nothing twice.
//!
//! Refusals are problem documents: 401 without credentials, 400
//! `invalid_last_event_id` for an id no notification can have, 400
//! `unknown_last_event_id` for one the caller has no notification with
//! (resuming after it would silently skip or repeat), 429
//! `too_many_streams` over `NOTIFICATION_STREAMS_PER_USER` on this replica,
//! 503 while the service stops.

use std::{collections::VecDeque, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{header::HeaderName, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        IntoResponse, Response,
    },
};
use events::{EventId, UserId};
use futures::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    hub::{Refused, Subscription},
    Notification, NotificationStore, Notifications,
};
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiQuery},
};

/// Interval of the keep-alive comment, so proxies do not close an idle stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Notifications read from the inbox per query while replaying.
const REPLAY_PAGE: usize = 100;

/// Longest `Last-Event-ID` accepted; event ids are UUIDs (36 characters).
const MAX_ID_LEN: usize = 128;

/// `?last_event_id=`: where to resume, for clients that cannot send the header.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Same meaning as the `Last-Event-ID` header, which wins if both are sent.
    pub last_event_id: Option<String>,
}

/// The caller's notifications, live, as server-sent events.
///
/// Each event has `id:` the notification id, `event: notification` and
/// `data:` the notification as `GET /notifications` lists it; a
/// `: keep-alive` comment comes every 15 s. With `Last-Event-ID` (header or
/// query), the notifications written after that one are replayed first.
#[utoipa::path(
    get,
    path = "/notifications/stream",
    tag = "notifications",
    security(("bearer" = [])),
    params(
        StreamParams,
        ("Last-Event-ID" = Option<String>, Header, description = "the id of the last notification received: resume after it (wins over `last_event_id`)"),
    ),
    responses(
        (status = 200, description = "the stream; it stays open", content_type = "text/event-stream", body = String),
        (status = 400, description = "`Last-Event-ID` is not a notification id (`invalid_last_event_id`), or not one of the caller's (`unknown_last_event_id`)"),
        (status = 429, description = "the caller has too many streams open on this replica (`too_many_streams`)"),
        (status = 503, description = "the service is shutting down (`dependency_unavailable`); reconnect to another replica"),
    )
)]
pub async fn open(
    State(notifications): State<Notifications>,
    caller: AuthUser,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> Result<Response, ApiError> {
    let resume_after = last_event_id(&headers, params.last_event_id)?;
    let subscription = notifications
        .streams
        .subscribe_current(&caller.id)
        .await
        .map_err(refused)?;
    let replay_after = match resume_after {
        None => None,
        Some(id) => Some(
            notifications
                .store
                .position_of(&caller.id, &EventId::from(id.as_str()))
                .await?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "unknown_last_event_id",
                        format!("you have no notification {id} to resume after"),
                    )
                })?,
        ),
    };
    let events = events(
        notifications.store.clone(),
        caller.id,
        replay_after,
        subscription,
    );
    let sse = Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"));
    // Reverse proxies that buffer responses (nginx) would hold events back.
    let no_buffering = (
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(([no_buffering], sse).into_response())
}

/// The id to resume after: the header wins over the query (a browser's
/// `EventSource` sends the header when it reconnects); empty means none.
fn last_event_id(headers: &HeaderMap, query: Option<String>) -> Result<Option<String>, ApiError> {
    let invalid = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_last_event_id",
            format!(
                "Last-Event-ID must be a notification id: 1 to {MAX_ID_LEN} letters, digits, '-', '_', '.' or ':'"
            ),
        )
    };
    let raw = match headers.get("last-event-id") {
        Some(value) => Some(value.to_str().map_err(|_| invalid())?.to_string()),
        None => query,
    };
    let Some(id) = raw
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
    else {
        return Ok(None);
    };
    let well_formed = id.len() <= MAX_ID_LEN
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
    if well_formed {
        Ok(Some(id))
    } else {
        Err(invalid())
    }
}

fn refused(r: Refused) -> ApiError {
    match r {
        Refused::TooMany(limit) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_streams",
            format!("you already have {limit} notification streams open; close one first"),
        ),
        Refused::Closed => ApiError::unavailable("the service is shutting down; reconnect"),
    }
}

/// Where a stream is: replaying positions after `after`, or live.
enum Phase {
    Replay { after: u64 },
    Live,
}

struct StreamState {
    store: Arc<dyn NotificationStore>,
    recipient: UserId,
    phase: Phase,
    replayed: VecDeque<Notification>,
    /// Live notifications, and the slot (freed when the stream ends).
    subscription: Subscription,
}

/// The replay (if any), then the live notifications. A failed replay ends
/// the stream rather than skip to live ones, which would leave a gap; the
/// client reconnects with the last id it received.
fn events(
    store: Arc<dyn NotificationStore>,
    recipient: UserId,
    replay_after: Option<u64>,
    subscription: Subscription,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = StreamState {
        store,
        recipient,
        phase: match replay_after {
            Some(after) => Phase::Replay { after },
            None => Phase::Live,
        },
        replayed: VecDeque::new(),
        subscription,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(n) = s.replayed.pop_front() {
                return Some((Ok(event(&n)), s));
            }
            match s.phase {
                Phase::Replay { after } => {
                    let upto = s.subscription.from;
                    match s
                        .store
                        .recipient_entries(&s.recipient, after, upto, REPLAY_PAGE)
                        .await
                    {
                        Ok(entries) => {
                            s.phase = match entries.last() {
                                Some(last) if entries.len() == REPLAY_PAGE => Phase::Replay {
                                    after: last.position,
                                },
                                _ => Phase::Live,
                            };
                            s.replayed
                                .extend(entries.into_iter().filter_map(|e| e.notification));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot replay notifications; the stream ends for the client to resume");
                            return None;
                        }
                    }
                }
                Phase::Live => {
                    let n = s.subscription.live.recv().await?;
                    return Some((Ok(event(&n)), s));
                }
            }
        }
    })
}

/// One notification as an event. An id SSE cannot carry (a line break) is
/// left out rather than break the stream.
fn event(n: &Notification) -> Event {
    let data = serde_json::to_string(n).expect("a notification serialises");
    let event = Event::default().event("notification").data(data);
    if n.id.as_str().contains(['\n', '\r', '\0']) {
        event
    } else {
        event.id(&n.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("last-event-id", HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_header_wins_over_the_query_and_empty_means_none() {
        let id = "0192b6f0-7c1e-7a3b-9f00-1234567890ab";
        assert_eq!(
            last_event_id(&headers(id), Some("other".into())).unwrap(),
            Some(id.to_string())
        );
        assert_eq!(
            last_event_id(&HeaderMap::new(), Some(id.into())).unwrap(),
            Some(id.to_string())
        );
        assert_eq!(last_event_id(&headers(""), None).unwrap(), None);
        assert_eq!(last_event_id(&HeaderMap::new(), None).unwrap(), None);
    }

    #[test]
    fn a_malformed_id_is_a_400() {
        for bad in ["a b", "x".repeat(MAX_ID_LEN + 1).as_str(), "{\"$gt\":\"\"}"] {
            let err = last_event_id(&HeaderMap::new(), Some(bad.into())).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert_eq!(err.code, "invalid_last_event_id");
        }
    }
}
