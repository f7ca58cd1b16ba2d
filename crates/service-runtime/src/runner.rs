//! Running a service: the HTTP API, the outbox relay and the event consumer
//! in one process, started and stopped in the order that loses nothing.
//!
//! Shutdown order on SIGTERM: the server stops accepting and finishes
//! in-flight requests; the consumer finishes its current message and commits
//! offsets; then the relay drains the outbox (so the last requests' events go
//! out) and the producer is flushed.

use std::{future::Future, sync::Arc, time::Duration};

use futures::future::BoxFuture;

use axum::Router;
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

use crate::{
    backoff::Backoff,
    config::{ConfigError, ServiceConfig, ServiceDefaults},
    http::{serve, Readiness, ReadinessCheck},
    messaging::{
        consumer_status::ConsumerStatus,
        kafka::{self, KafkaPublisher, KafkaReadiness, TopicSpec},
        memory::InMemoryBus,
        EventPublisher, Subscription,
    },
    metrics::Metrics,
    mongo::{self, MongoReadiness},
    notifications::watcher::InboxWatcher,
    outbox::{run_relay, OutboxSignal, OutboxStore, RelayConfig},
    store::StoreError,
    supervision::{injected_fault, Supervisor},
};

/// Where a service's events go and come from.
// One per service, built once: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Messaging {
    Kafka {
        config: crate::config::KafkaConfig,
        publisher: KafkaPublisher,
        /// What the consumer holds and when it last polled (in readiness).
        consumer_status: ConsumerStatus,
    },
    InMemory(Arc<InMemoryBus>),
}

impl Messaging {
    fn publisher(&self) -> Arc<dyn EventPublisher> {
        match self {
            Messaging::Kafka { publisher, .. } => Arc::new(publisher.clone()),
            Messaging::InMemory(bus) => bus.clone(),
        }
    }
}

/// A fully wired service, ready to run.
pub struct Service {
    pub name: &'static str,
    pub router: Router,
    pub outbox: Arc<dyn OutboxStore>,
    pub signal: OutboxSignal,
    pub subscriptions: Vec<Subscription>,
    pub messaging: Messaging,
    pub shutdown_timeout: Duration,
    /// Watches the relay, the consumer and the inbox watcher; their
    /// failures show in readiness.
    pub supervisor: Supervisor,
    /// Feeds the open notification streams from the inbox.
    pub inbox_watcher: InboxWatcher,
    /// This service's metrics, which the relay and the consumer record into.
    pub metrics: Arc<Metrics>,
}

impl Service {
    /// Serves on `listener` until `shutdown`, then stops everything in order.
    /// The relay, the consumer and the inbox watcher run supervised: if one
    /// ends on its own, readiness turns 503, the service shuts down after
    /// [`crate::supervision::GRACE`] and this returns an error naming it.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let publisher = self.messaging.publisher();
        let supervisor = self.supervisor.clone();
        let relay_stop = CancellationToken::new();
        let relay = supervisor.watch(
            "outbox relay",
            with_injected_fault(
                "outbox-relay",
                run_relay(
                    self.outbox.clone(),
                    publisher.clone(),
                    self.signal.clone(),
                    RelayConfig::default(),
                    relay_stop.clone(),
                    self.metrics.clone(),
                ),
            ),
            shutdown.clone(),
        );
        let consumer_stop = shutdown.child_token();
        let subscriptions: Vec<Subscription> = self
            .subscriptions
            .iter()
            .map(|s| s.clone().observed_by(self.metrics.clone()))
            .collect();
        let consumer_work: BoxFuture<'static, ()> = match &self.messaging {
            Messaging::Kafka {
                config,
                publisher,
                consumer_status,
            } => {
                let (config, publisher, status, subs, stop, metrics) = (
                    config.clone(),
                    publisher.clone(),
                    consumer_status.clone(),
                    subscriptions.clone(),
                    consumer_stop.clone(),
                    self.metrics.clone(),
                );
                Box::pin(async move {
                    if let Err(e) =
                        kafka::run_consumer(config, subs, publisher, status, stop, metrics).await
                    {
                        tracing::error!(error = %e, "consumer stopped with an error");
                    }
                })
            }
            Messaging::InMemory(bus) => {
                let (bus, subs, stop) = (bus.clone(), subscriptions, consumer_stop.clone());
                Box::pin(async move { bus.run_consumer(subs, stop).await })
            }
        };
        let consumer: JoinHandle<()> = supervisor.watch(
            "event consumer",
            with_injected_fault("event-consumer", consumer_work),
            shutdown.clone(),
        );
        // Stops with the server's shutdown: closing the streams is what lets
        // the server drain, since an open stream is an in-flight request.
        let watcher = supervisor.watch(
            "inbox watcher",
            with_injected_fault("inbox-watcher", self.inbox_watcher.run(shutdown.clone())),
            shutdown.clone(),
        );

        tracing::info!(service = self.name, addr = ?listener.local_addr().ok(), "serving");
        let served = serve(listener, self.router, shutdown.clone()).await;
        supervisor.stopping();
        tracing::info!(service = self.name, "HTTP server drained; stopping workers");

        if tokio::time::timeout(self.shutdown_timeout, watcher)
            .await
            .is_err()
        {
            tracing::warn!("inbox watcher did not stop in time");
        }
        consumer_stop.cancel();
        if tokio::time::timeout(self.shutdown_timeout, consumer)
            .await
            .is_err()
        {
            tracing::warn!("consumer did not stop in time");
        }
        relay_stop.cancel();
        if tokio::time::timeout(self.shutdown_timeout, relay)
            .await
            .is_err()
        {
            tracing::warn!("outbox relay did not drain in time; pending events stay in the outbox");
        }
        // The last spans are exported beside the producer flush, within the
        // same 5 s (telemetry::TRACE_FLUSH_TIMEOUT): traces do not lengthen
        // the shutdown budget.
        tokio::join!(
            publisher.flush(Duration::from_secs(5)),
            crate::telemetry::flush_traces()
        );
        tracing::info!(service = self.name, "stopped");
        let failures = supervisor.failures();
        if !failures.is_empty() {
            let names: Vec<String> = failures
                .iter()
                .map(|f| format!("{} {}", f.task, f.reason))
                .collect();
            return Err(std::io::Error::other(format!(
                "background task ended unexpectedly: {}",
                names.join("; ")
            )));
        }
        served
    }
}

/// `work`, or the fault `FAULT_INJECT` names for `task` (debug builds only).
fn with_injected_fault<F>(task: &'static str, work: F) -> BoxFuture<'static, ()>
where
    F: Future<Output = ()> + Send + 'static,
{
    match injected_fault(task) {
        Some(fault) => {
            tracing::warn!(
                task,
                ?fault,
                "FAULT_INJECT: this worker will fail on purpose"
            );
            Box::pin(fault.run(task))
        }
        None => Box::pin(work),
    }
}

/// Reads the configuration or exits with the one-line message naming the
/// variable (exit code 2), before anything else happens.
pub fn config_or_exit(defaults: ServiceDefaults) -> ServiceConfig {
    match ServiceConfig::from_env(defaults) {
        Ok(c) => c,
        Err(e @ (ConfigError::Missing(_) | ConfigError::Invalid { .. })) => {
            eprintln!("{}: {e}", defaults.name);
            std::process::exit(2);
        }
    }
}

/// The production dependencies every service connects to at start-up.
pub struct Infrastructure {
    pub db: mongodb::Database,
    pub messaging: Messaging,
    pub readiness: Readiness,
}

/// How long start-up keeps retrying unreachable dependencies before giving up.
const STARTUP_PATIENCE: Duration = Duration::from_secs(90);

impl Infrastructure {
    /// Connects to MongoDB and Kafka and creates the topics, retrying while
    /// they come up (they often start together with the service). MongoDB
    /// commands are timed into `metrics`.
    pub async fn connect(config: &ServiceConfig, metrics: &Arc<Metrics>) -> Result<Self, String> {
        let db = mongo::connect_observed(
            &config.mongodb_uri,
            &config.mongodb_database,
            config.service_name,
            Some(metrics.clone()),
        )
        .await
        .map_err(|e| e.to_string())?;
        let (messaging, kafka_checks) = Messaging::kafka(&config.kafka).await?;
        let mut checks: Vec<Arc<dyn ReadinessCheck>> = vec![Arc::new(MongoReadiness::new(&db))];
        checks.extend(kafka_checks);
        Ok(Self {
            db,
            messaging,
            readiness: Readiness::new(checks),
        })
    }
}

impl Messaging {
    /// Kafka messaging: the producer, the topics created (retrying while
    /// the broker starts), and the broker's and the consumer's readiness
    /// checks.
    pub async fn kafka(
        config: &crate::config::KafkaConfig,
    ) -> Result<(Self, Vec<Arc<dyn ReadinessCheck>>), String> {
        let publisher = KafkaPublisher::new(config).map_err(|e| e.to_string())?;
        let topics = [
            TopicSpec {
                name: config.request_topic.clone(),
                compacted: false,
            },
            TopicSpec {
                name: config.response_topic.clone(),
                compacted: false,
            },
            TopicSpec {
                name: config.property_topic.clone(),
                compacted: true,
            },
        ];
        retry_startup("create Kafka topics", || {
            kafka::ensure_topics(config, &topics)
        })
        .await?;
        let consumer_status = ConsumerStatus::new(&config.group_id);
        let checks: Vec<Arc<dyn ReadinessCheck>> = vec![
            Arc::new(KafkaReadiness::new(&publisher)),
            Arc::new(consumer_status.clone()),
        ];
        let messaging = Messaging::Kafka {
            config: config.clone(),
            publisher,
            consumer_status,
        };
        Ok((messaging, checks))
    }
}

/// Retries a start-up step with backoff for up to [`STARTUP_PATIENCE`].
pub async fn retry_startup<T, E, F, Fut>(what: &str, mut step: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let deadline = tokio::time::Instant::now() + STARTUP_PATIENCE;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    loop {
        match step().await {
            Ok(v) => return Ok(v),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "cannot {what} yet; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
            Err(e) => return Err(format!("cannot {what}: {e}")),
        }
    }
}

/// Everything a service is assembled from except its own store: the shared
/// stores, the outbox, the messaging, the readiness checks and the metrics.
pub struct Wiring {
    pub common: CommonStores,
    pub outbox: Arc<dyn OutboxStore>,
    pub messaging: Messaging,
    pub readiness: Readiness,
    /// One registry per service instance (see [`crate::metrics`]).
    pub metrics: Arc<Metrics>,
}

impl Wiring {
    /// Production wiring: connects (retrying while the servers start),
    /// creates topics and indexes, and relays the outboxes embedded in
    /// `outbox_collections`. Returns the database for the service's own store.
    pub async fn production(
        config: &ServiceConfig,
        outbox_collections: &[&str],
    ) -> Result<(mongodb::Database, Self), String> {
        let metrics = Arc::new(Metrics::new());
        let infra = Infrastructure::connect(config, &metrics).await?;
        let db = infra.db.clone();
        let common = CommonStores::mongo(&db).await?;
        let outbox = retry_store("prepare the outbox", || {
            crate::outbox::MongoOutbox::new(
                &db,
                outbox_collections,
                config.service_name,
                common.signal.clone(),
            )
        })
        .await?;
        Ok((
            db,
            Self {
                common,
                outbox: Arc::new(outbox),
                messaging: infra.messaging,
                readiness: infra.readiness,
                metrics,
            },
        ))
    }

    /// In-memory wiring on a shared bus. Returns the outbox for the
    /// service's own in-memory store to push to.
    pub fn in_memory(bus: Arc<InMemoryBus>) -> (Arc<crate::outbox::InMemoryOutbox>, Self) {
        Self::in_memory_stores(Messaging::InMemory(bus), Readiness::default())
    }

    /// In-memory stores on Apache Kafka: the service owns its data, so its
    /// stores may live in its process while its events cross a real broker
    /// (the benchmarks' `kafka-memory` stack measures our code and the
    /// broker without a test database). Nothing persists across restarts.
    pub async fn in_memory_on_kafka(
        kafka: &crate::config::KafkaConfig,
    ) -> Result<(Arc<crate::outbox::InMemoryOutbox>, Self), String> {
        let (messaging, checks) = Messaging::kafka(kafka).await?;
        Ok(Self::in_memory_stores(messaging, Readiness::new(checks)))
    }

    /// In-memory stores and outbox with `messaging`.
    fn in_memory_stores(
        messaging: Messaging,
        readiness: Readiness,
    ) -> (Arc<crate::outbox::InMemoryOutbox>, Self) {
        let common = CommonStores::in_memory();
        let outbox = Arc::new(crate::outbox::InMemoryOutbox::new(common.signal.clone()));
        (
            outbox.clone(),
            Self {
                common,
                outbox,
                messaging,
                readiness,
                metrics: Arc::new(Metrics::new()),
            },
        )
    }
}

/// Convenience for store constructors that create indexes at start-up.
pub async fn retry_store<T, F, Fut>(what: &str, step: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    retry_startup(what, step).await
}

/// The stores every service has besides its own: accounts, the counts of
/// login and sign-up attempts, notifications, and the outbox signal its
/// store wakes the relay with.
pub struct CommonStores {
    pub users: Arc<dyn crate::identity::UserStore>,
    pub attempts: Arc<dyn crate::identity::AttemptCounter>,
    pub notifications: Arc<dyn crate::notifications::NotificationStore>,
    pub signal: OutboxSignal,
}

impl CommonStores {
    /// The MongoDB adapters, creating their indexes (retried while the server starts).
    pub async fn mongo(db: &mongodb::Database) -> Result<Self, String> {
        let users =
            retry_store("prepare users", || crate::identity::MongoUserStore::new(db)).await?;
        let attempts = retry_store("prepare attempt counts", || {
            crate::identity::MongoAttemptCounter::new(db)
        })
        .await?;
        let notifications = retry_store("prepare notifications", || {
            crate::notifications::MongoNotificationStore::new(db)
        })
        .await?;
        Ok(Self {
            users: Arc::new(users),
            attempts: Arc::new(attempts),
            notifications: Arc::new(notifications),
            signal: OutboxSignal::default(),
        })
    }

    pub fn in_memory() -> Self {
        Self {
            users: Arc::new(crate::identity::InMemoryUserStore::default()),
            attempts: Arc::new(crate::identity::InMemoryAttemptCounter::default()),
            notifications: Arc::new(crate::notifications::InMemoryNotificationStore::default()),
            signal: OutboxSignal::default(),
        }
    }
}

/// The whole `main` of a service binary: configuration (exit 2 naming a bad
/// variable), logging, signals, building the service with `build`, binding
/// `PORT`, and running until SIGTERM. Exit 0 after a clean shutdown.
pub async fn run_binary<F, Fut>(defaults: ServiceDefaults, build: F)
where
    F: FnOnce(ServiceConfig) -> Fut,
    Fut: Future<Output = Result<Service, String>>,
{
    let config = config_or_exit(defaults);
    crate::memory::return_large_allocations_to_os();
    crate::telemetry::init_with_traces(
        config.log_format,
        defaults.name,
        config.otlp_endpoint.as_deref(),
    );
    let shutdown = crate::shutdown::on_signal();
    let port = config.port;
    let fail = |e: String| -> ! {
        tracing::error!(error = %e, "cannot start");
        eprintln!("{}: {e}", defaults.name);
        std::process::exit(1);
    };
    let service = build(config).await.unwrap_or_else(|e| fail(e));
    crate::memory::spawn_trimmer();
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on port {port}: {e}")));
    if let Err(e) = service.run(listener, shutdown).await {
        fail(e.to_string());
    }
    // Everything that matters is done or timed out. Exit now rather than let
    // the runtime wait for a blocking call that may never return (a client
    // library stuck on an unreachable broker).
    std::process::exit(0);
}
