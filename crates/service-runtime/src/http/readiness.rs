//! [`ReadinessCheck`], one dependency the readiness probe asks: the leaf
//! that the probe ([`super::Readiness`]) and what it asks (the stores, the
//! Kafka clients, the [`Supervisor`](crate::supervision::Supervisor)) both
//! import, so neither imports the other's side.

use async_trait::async_trait;

/// One dependency the readiness probe asks (MongoDB, Kafka).
#[async_trait]
pub trait ReadinessCheck: Send + Sync {
    fn name(&self) -> &'static str;
    async fn check(&self) -> Result<(), String>;
    /// What the probe shows beside `status` (an object whose fields are
    /// merged into this dependency's entry), for checks that have more to
    /// say than up or down — e.g. which partitions a consumer holds.
    fn details(&self) -> Option<serde_json::Value> {
        None
    }
}
