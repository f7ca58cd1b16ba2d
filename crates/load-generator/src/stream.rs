//! Following a notification stream (`GET .../notifications/stream`) as a
//! browser's `EventSource` does: each event's `data:` as it arrives, and a
//! reconnection with `Last-Event-ID` when the server ends the stream.

use std::time::Duration;

use serde::Deserialize;

/// The members of a streamed notification the flow phase follows.
#[derive(Debug, Deserialize)]
pub struct StreamedNotification {
    pub id: String,
    pub kind: String,
    pub booking_id: String,
    pub status: String,
}

/// One user's stream, reopened after the last event received when it ends.
pub struct NotificationStream {
    http: reqwest::Client,
    url: String,
    token: String,
    last_id: Option<String>,
    response: Option<reqwest::Response>,
    buffer: Vec<u8>,
}

impl NotificationStream {
    /// Opens the stream at `url`; `None` (with the reason printed) when the
    /// service refuses it.
    pub async fn open(url: &str, token: &str) -> Option<Self> {
        let mut stream = Self {
            // No overall timeout: the response lasts as long as the phase.
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            url: url.to_string(),
            token: token.to_string(),
            last_id: None,
            response: None,
            buffer: Vec::new(),
        };
        stream.connect().await.then_some(stream)
    }

    /// [`Self::open`], then tells `ready` the stream is open: the flow phase
    /// starts booking only once both drivers listen, so that no
    /// notification is written before its reader is there.
    pub async fn open_signalling(
        url: &str,
        token: &str,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> Option<Self> {
        let stream = Self::open(url, token).await?;
        let _ = ready.send(());
        Some(stream)
    }

    async fn connect(&mut self) -> bool {
        let mut request = self.http.get(&self.url).bearer_auth(&self.token);
        if let Some(id) = &self.last_id {
            request = request.header("last-event-id", id);
        }
        match request.send().await {
            Ok(r) if r.status() == 200 => {
                self.response = Some(r);
                self.buffer.clear();
                true
            }
            Ok(r) => {
                eprintln!("{} refused the stream: {}", self.url, r.status());
                false
            }
            Err(e) => {
                eprintln!("{}: {e}", self.url);
                false
            }
        }
    }

    /// The next notification; reconnects (resuming after the last one) if
    /// the server ended the stream. `None` only if it cannot reconnect.
    pub async fn next(&mut self) -> Option<StreamedNotification> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let data: Vec<&str> = std::str::from_utf8(&block)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|v| v.strip_prefix(' ').unwrap_or(v))
                    .collect();
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                if let Ok(n) = serde_json::from_str::<StreamedNotification>(&data.join("\n")) {
                    self.last_id = Some(n.id.clone());
                    return Some(n);
                }
                continue;
            }
            let chunk = match self.response.as_mut()?.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) | Err(_) => {
                    if !self.connect().await {
                        return None;
                    }
                    continue;
                }
            };
            self.buffer.extend_from_slice(&chunk);
        }
    }
}
