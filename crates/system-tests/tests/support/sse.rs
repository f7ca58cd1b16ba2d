//! A small server-sent events client for the stream tests: opens
//! `GET .../notifications/stream` and parses the body as it arrives
//! (`id:`, `event:`, `data:` fields, `:` comments, a blank line ends an
//! event).

use std::time::Duration;

use serde_json::Value;

use super::{content_type_of, Reply, User, PROPAGATION};

/// One event as the server framed it.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// What [`EventStream::next`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Event(SseEvent),
    /// The server ended the response.
    Ended,
    /// Nothing within the wait.
    Quiet,
}

/// An open stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// Comment lines seen so far (keep-alives).
    pub comments: Vec<String>,
    pub content_type: String,
}

/// Opens `url` with the bearer `token` and, if given, `Last-Event-ID`.
/// A refusal comes back as the problem [`Reply`].
pub async fn open(
    url: &str,
    token: Option<&str>,
    last_event_id: Option<&str>,
) -> Result<EventStream, Reply> {
    // No overall timeout: a stream stays open for as long as the test reads.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let mut request = client.get(url).header("accept", "text/event-stream");
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = tokio::time::timeout(Duration::from_secs(30), request.send())
        .await
        .unwrap_or_else(|_| panic!("{url}: no response headers in 30 s"))
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = response.status();
    let content_type = content_type_of(response.headers());
    if status != 200 {
        let bytes = response.bytes().await.expect("problem body");
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{url} answered {status} with non-JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        return Err(Reply {
            status,
            content_type,
            body,
        });
    }
    Ok(EventStream {
        response,
        buffer: Vec::new(),
        comments: Vec::new(),
        content_type,
    })
}

/// `/api/owners/notifications/stream` of the owner-service at `base`.
pub fn owner_stream(base: &str) -> String {
    format!("{base}/api/owners/notifications/stream")
}

/// `/api/travelers/notifications/stream` of the traveler-service at `base`.
pub fn traveler_stream(base: &str) -> String {
    format!("{base}/api/travelers/notifications/stream")
}

/// [`open`] as `user`, which must be let in.
pub async fn open_as(url: &str, user: &User, last_event_id: Option<&str>) -> EventStream {
    open(url, Some(&user.token), last_event_id)
        .await
        .unwrap_or_else(|r| panic!("{url} refused: {} {}", r.status, r.body))
}

/// [`open`], which must be refused: the problem [`Reply`].
pub async fn refusal(url: &str, token: Option<&str>, last_event_id: Option<&str>) -> Reply {
    match open(url, token, last_event_id).await {
        Ok(_) => panic!("{url} opened a stream that should have been refused"),
        Err(reply) => reply,
    }
}

/// Opens as many streams as `user` may hold (the default limit), and
/// checks that one more is refused: 429 `too_many_streams`.
pub async fn open_up_to_the_limit(url: &str, user: &User) -> Vec<EventStream> {
    let mut streams = Vec::new();
    for _ in 0..service_runtime::notifications::hub::DEFAULT_STREAMS_PER_USER {
        streams.push(open_as(url, user, None).await);
    }
    refusal(url, Some(&user.token), None)
        .await
        .expect_problem(429, "too_many_streams");
    streams
}

impl EventStream {
    /// The next event, which must be a notification (within [`PROPAGATION`])
    /// whose `id:` is the `id` of its data.
    pub async fn next_notification_event(&mut self) -> SseEvent {
        let event = self.expect_event(PROPAGATION).await;
        assert_eq!(event.event.as_deref(), Some("notification"), "{event:?}");
        assert_eq!(
            event.id.as_deref(),
            event.json()["id"].as_str(),
            "{event:?}"
        );
        event
    }

    /// The data of [`EventStream::next_notification_event`].
    pub async fn next_notification(&mut self) -> Value {
        self.next_notification_event().await.json()
    }

    /// The next event, waiting at most `wait`.
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(event) = self.take_event() {
                return Next::Event(event);
            }
            let chunk = match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_) => return Next::Quiet,
                Ok(Err(e)) => panic!("stream failed: {e}"),
                Ok(Ok(None)) => return Next::Ended,
                Ok(Ok(Some(chunk))) => chunk,
            };
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// The next event, which must come within `wait`.
    pub async fn expect_event(&mut self, wait: Duration) -> SseEvent {
        match self.next(wait).await {
            Next::Event(e) => e,
            other => panic!("expected an event within {wait:?}, got {other:?}"),
        }
    }

    /// Parses the first complete event out of the buffer, recording the
    /// comments before it.
    fn take_event(&mut self) -> Option<SseEvent> {
        loop {
            let end = self.buffer.windows(2).position(|w| w == b"\n\n")?;
            let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let block = String::from_utf8(block).expect("a UTF-8 event");
            let mut event = SseEvent {
                id: None,
                event: None,
                data: String::new(),
            };
            let mut data: Vec<&str> = Vec::new();
            let mut has_field = false;
            for line in block.lines().filter(|l| !l.is_empty()) {
                let (field, value) = match line.split_once(':') {
                    Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                    None => (line, ""),
                };
                match field {
                    "" => self.comments.push(value.to_string()),
                    "id" => event.id = Some(value.to_string()),
                    "event" => event.event = Some(value.to_string()),
                    "data" => data.push(value),
                    _ => {}
                }
                has_field |= !field.is_empty();
            }
            event.data = data.join("\n");
            if has_field {
                return Some(event);
            }
        }
    }
}
