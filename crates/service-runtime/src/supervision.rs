//! Watching the background work a service cannot do without.
//!
//! The outbox relay and the event consumer run as tasks beside the HTTP
//! server. If one of them returns or panics while the service is not
//! stopping, the API would go on answering 201 while nothing is published
//! or consumed. [`Supervisor::watch`] turns that into something the
//! orchestrator sees and acts on: the task is logged at error level,
//! `/health/ready` answers 503 naming it (so traffic moves elsewhere), and
//! after [`GRACE`] the service shuts down and the process exits non-zero (so
//! it is restarted).

use std::{
    future::Future,
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::ReadinessCheck;

/// How long a service with a dead worker keeps answering (with readiness
/// 503) before it shuts itself down: long enough for a readiness probe to
/// take it out of rotation, short enough to be restarted promptly.
pub const GRACE: Duration = Duration::from_secs(5);

/// The background tasks of one service and which of them ended unexpectedly.
#[derive(Clone)]
pub struct Supervisor {
    failed: Arc<Mutex<Vec<Failure>>>,
    /// Set once the service is stopping on purpose: a task ending then is
    /// the normal end, not a failure.
    stopping: CancellationToken,
    grace: Duration,
}

impl Default for Supervisor {
    fn default() -> Self {
        Self::with_grace(GRACE)
    }
}

/// A worker that ended while the service was running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub task: &'static str,
    pub reason: String,
}

impl Supervisor {
    /// A supervisor that waits `grace` between a failure and the shutdown
    /// ([`GRACE`] in the services; shorter in unit tests).
    pub fn with_grace(grace: Duration) -> Self {
        Self {
            failed: Arc::default(),
            stopping: CancellationToken::new(),
            grace,
        }
    }

    /// Runs `work` as the task `name`, watching it: if it ends before
    /// [`Supervisor::stopping`], it is recorded as failed, logged, and
    /// `shutdown` is cancelled after [`GRACE`]. Returns the handle of the
    /// watcher, which ends when the work ends.
    pub fn watch<F>(
        &self,
        name: &'static str,
        work: F,
        shutdown: CancellationToken,
    ) -> JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let worker = tokio::spawn(work);
        let this = self.clone();
        tokio::spawn(async move {
            let reason = match worker.await {
                Ok(()) => "returned".to_string(),
                Err(e) if e.is_panic() => format!("panicked: {}", panic_message(e.into_panic())),
                Err(e) => format!("was cancelled: {e}"),
            };
            // Stopping on purpose (or already shutting down, which ends
            // the consumer through its child token): the normal end.
            if this.stopping.is_cancelled() || shutdown.is_cancelled() {
                return;
            }
            tracing::error!(task = name, %reason, grace = ?this.grace, "background task ended unexpectedly; the service stops");
            this.failed
                .lock()
                .expect("supervisor lock")
                .push(Failure { task: name, reason });
            tokio::time::sleep(this.grace).await;
            shutdown.cancel();
        })
    }

    /// The service is stopping on purpose: tasks ending from now on are not failures.
    pub fn stopping(&self) {
        self.stopping.cancel();
    }

    /// The tasks that ended unexpectedly, in the order they did.
    pub fn failures(&self) -> Vec<Failure> {
        self.failed.lock().expect("supervisor lock").clone()
    }

    /// The readiness check that reports them.
    pub fn readiness(&self) -> Arc<dyn ReadinessCheck> {
        Arc::new(WorkersCheck(self.clone()))
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// `checks.workers` in `/health/ready`: down, naming the tasks, once one ended.
struct WorkersCheck(Supervisor);

#[async_trait]
impl ReadinessCheck for WorkersCheck {
    fn name(&self) -> &'static str {
        "workers"
    }

    async fn check(&self) -> Result<(), String> {
        let failures = self.0.failures();
        if failures.is_empty() {
            return Ok(());
        }
        Err(failures
            .iter()
            .map(|f| format!("{} {}", f.task, f.reason))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

/// A fault to inject into a worker, named by `FAULT_INJECT` (`<task>-panic`
/// or `<task>-return`, e.g. `outbox-relay-panic`). Only in debug builds (the
/// test builds): a release binary ignores the variable.
#[cfg(debug_assertions)]
pub fn injected_fault(task: &str) -> Option<InjectedFault> {
    let wanted = std::env::var("FAULT_INJECT").ok()?;
    let fault = wanted.strip_prefix(task)?.strip_prefix('-')?;
    match fault {
        "panic" => Some(InjectedFault::Panic),
        "return" => Some(InjectedFault::Return),
        _ => None,
    }
}

/// In release builds no fault is ever injected.
#[cfg(not(debug_assertions))]
pub fn injected_fault(_task: &str) -> Option<InjectedFault> {
    None
}

/// What an injected fault makes a worker do, a second after it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFault {
    Panic,
    Return,
}

impl InjectedFault {
    /// The worker's body when this fault is injected.
    pub async fn run(self, task: &'static str) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        match self {
            InjectedFault::Panic => panic!("fault injected into {task}"),
            InjectedFault::Return => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHORT: Duration = Duration::from_secs(1);

    /// Waits (up to 5 s) until the supervisor recorded a failure.
    async fn failed(supervisor: &Supervisor) -> Vec<Failure> {
        for _ in 0..500 {
            let failures = supervisor.failures();
            if !failures.is_empty() {
                return failures;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no failure recorded");
    }

    #[tokio::test]
    async fn a_worker_that_panics_is_reported_and_stops_the_service_after_the_grace() {
        let supervisor = Supervisor::with_grace(SHORT);
        let shutdown = CancellationToken::new();
        let check = supervisor.readiness();
        supervisor.watch("outbox relay", async { panic!("boom") }, shutdown.clone());
        failed(&supervisor).await;
        let down = check.check().await.unwrap_err();
        assert!(down.contains("outbox relay panicked: boom"), "{down}");
        assert!(!shutdown.is_cancelled(), "readiness first, for the grace");
        tokio::time::timeout(SHORT * 10, shutdown.cancelled())
            .await
            .expect("the service is told to stop after the grace");
    }

    #[tokio::test]
    async fn a_worker_that_returns_while_running_is_a_failure_too() {
        let supervisor = Supervisor::with_grace(SHORT);
        let shutdown = CancellationToken::new();
        supervisor.watch("consumer", async {}, shutdown.clone());
        let failures = failed(&supervisor).await;
        assert_eq!(failures[0].task, "consumer");
        assert_eq!(failures[0].reason, "returned");
    }

    #[tokio::test]
    async fn ending_after_stopping_is_the_normal_end() {
        let supervisor = Supervisor::with_grace(SHORT);
        let shutdown = CancellationToken::new();
        supervisor.stopping();
        let watcher = supervisor.watch("consumer", async {}, shutdown.clone());
        watcher.await.unwrap();
        assert!(supervisor.failures().is_empty());
        assert!(supervisor.readiness().check().await.is_ok());
        assert!(!shutdown.is_cancelled());
    }
}
