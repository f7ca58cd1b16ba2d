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
