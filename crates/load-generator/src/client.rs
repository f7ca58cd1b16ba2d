//! The HTTP calls a real client makes, with their latency.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

/// One response: status (0 when no response came), body (its default when
/// absent or not of type `T`), and how long it took.
pub struct Timed<T = Value> {
    pub status: u16,
    pub body: T,
    pub took: Duration,
}

/// A thin client for both services.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub traveler: String,
    pub owner: String,
}

impl Api {
    pub fn new(traveler: &str, owner: &str, connections: usize) -> Self {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self {
            http,
            traveler: traveler.trim_end_matches('/').to_string(),
            owner: owner.trim_end_matches('/').to_string(),
        }
    }

    /// The booking requests owner-service's consumer has taken in so far
    /// (any outcome), from its `events_consumed_total`: how far it has
    /// caught up, read without touching its database. `None` when the
    /// metrics cannot be read.
    pub async fn owner_requests_consumed(&self) -> Option<u64> {
        let text = self
            .http
            .get(format!("{}/metrics", self.owner))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(
            text.lines()
                .filter(|l| {
                    l.starts_with("events_consumed_total{")
                        && l.contains("booking-requests\"")
                        && l.contains("type=\"booking.requested\"")
                })
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64,
        )
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Timed {
        self.call_as(method, url, token, body).await
    }

    /// [`Api::call`], decoding only what `T` names from the response: on
    /// the hot path the generator should not cost more than the client
    /// it imitates.
    pub async fn call_as<T: DeserializeOwned + Default>(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Timed<T> {
        let start = Instant::now();
        let mut req = self.http.request(method, url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let body = res.json::<T>().await.unwrap_or_default();
                Timed {
                    status,
                    body,
                    took: start.elapsed(),
                }
            }
            Err(_) => Timed {
                status: 0,
                body: T::default(),
                took: start.elapsed(),
            },
        }
    }

    /// The ids of every item of a paged list of bookings (`url` may carry
    /// filters), read 200 at a time by following `next_cursor`; `None` when
    /// a page does not answer 200 (the caller polls again).
    pub async fn all_booking_ids(&self, url: &str, token: &str) -> Option<Vec<String>> {
        let separator = if url.contains('?') { '&' } else { '?' };
        let mut ids = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_url = match &cursor {
                None => format!("{url}{separator}limit=200"),
                Some(c) => format!("{url}{separator}limit=200&cursor={c}"),
            };
            let r = self
                .call(reqwest::Method::GET, &page_url, Some(token), None)
                .await;
            if r.status != 200 {
                return None;
            }
            ids.extend(
                r.body["bookings"]
                    .as_array()?
                    .iter()
                    .filter_map(|b| b["id"].as_str().map(str::to_string)),
            );
            match r.body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return Some(ids),
            }
        }
    }

    /// Signs up a user on `base` under `/api/{role}s`; returns (id, token).
    pub async fn signup(&self, owner_side: bool, run: &str, n: usize) -> (String, String) {
        let (base, prefix) = if owner_side {
            (&self.owner, "owners")
        } else {
            (&self.traveler, "travelers")
        };
        let body = json!({"name": format!("load {prefix} {n}"), "email": format!("{prefix}-{n}-{run}@load.test"), "password": "load-test-password"});
        let r = self
            .call(
                reqwest::Method::POST,
                &format!("{base}/api/{prefix}/signup"),
                None,
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 201, "signup failed: {}", r.body);
        (
            r.body["user"]["id"].as_str().unwrap().to_string(),
            r.body["token"].as_str().unwrap().to_string(),
        )
    }
}
