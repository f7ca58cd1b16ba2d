//! What one configuration variable is ([`EnvVar`]) and what can be wrong
//! with it ([`ConfigError`]): the leaf every feature's settings parsing
//! imports. It imports nothing of the runtime, so a feature can parse its own
//! settings (`IdentityConfig`, `StreamConfig`) while [`crate::config`]
//! only holds them.

/// One environment variable the binaries read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    pub name: &'static str,
    /// `None`: required, the binary refuses to start without it.
    pub default: Option<String>,
    pub description: &'static str,
}

/// A configuration problem, phrased as the single line a binary prints.
/// `value` never holds a secret: see
/// [`ServiceConfig::from_lookup`](crate::config::ServiceConfig::from_lookup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration error: {0} is required but not set")]
    Missing(&'static str),
    #[error("configuration error: {name}={value:?} is invalid: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
}
