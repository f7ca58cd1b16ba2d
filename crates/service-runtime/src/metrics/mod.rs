//! Prometheus metrics: one [`Metrics`] registry per service instance, held in
//! the service's state and handed to whatever records into it (the HTTP
//! middleware, the outbox relay, the consumers, the MongoDB command monitor,
//! the Kafka statistics callback), and served at `GET /metrics`.
//!
//! Why a registry per service rather than a process-wide recorder: the
//! embedded runner runs both services in one process, and the API tests run
//! many apps in one test process. With a global recorder each `/metrics`
//! would mix every app's figures; with one registry per app each endpoint
//! shows exactly its own service, and no test sees another's counts.
//!
//! Every label value is bounded: route templates (never raw paths), HTTP
//! methods from a fixed list, topic names from configuration, event types
//! and booking statuses from the `events` crate, MongoDB command names.
//! Names and labels are documented in docs/operations.md.

mod http;
mod kafka;
mod process;

use std::{sync::atomic::AtomicU64, time::Duration};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Metric, Registry},
};

pub use http::{record_requests, CONTENT_TYPE};
pub use kafka::{ConsumerStats, STATISTICS_INTERVAL_MS};

/// Upper bounds (seconds) of the latency histograms: 1 ms to 10 s, which
/// covers a cached read and a request waiting out a database timeout.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0,
];

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS.iter().copied())
}

/// Upper bounds of `consumer_batch_size`: one event up to the consumer's
/// largest batch.
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0];

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS.iter().copied())
}

/// `http_requests_total` and `http_request_duration_seconds` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    /// The route template (`/api/owners/bookings/{id}`), or [`UNMATCHED_ROUTE`].
    route: String,
    status: u16,
}

/// The `route` label of a request no route matched (404s of any path).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// `events_published_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    topic: String,
    r#type: String,
}

/// `events_consumed_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConsumedLabels {
    topic: String,
    r#type: &'static str,
    outcome: &'static str,
}

/// What became of a consumed event, as counted by `events_consumed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumed {
    /// Its effect is now durable.
    Applied,
    /// It had been applied before (a redelivery, or an older version):
    /// nothing changed.
    Duplicate,
    /// A transient failure (database down): it will be applied again, in the
    /// same batch; counted once per attempt that failed.
    Retried,
    /// It can never be applied: it went to the dead-letter topic.
    DeadLettered,
}

impl Consumed {
    /// The `outcome` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Consumed::Applied => "applied",
            Consumed::Duplicate => "duplicate",
            Consumed::Retried => "retried",
            Consumed::DeadLettered => "dead_lettered",
        }
    }
}

/// The `type` label of a consumed message that could not be decoded.
pub const UNKNOWN_EVENT_TYPE: &str = "unknown";

/// `booking_transitions_total` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransitionLabels {
    from: &'static str,
    to: &'static str,
}

/// `mongodb_command_duration_seconds` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
    /// The collection the command names (empty for database commands such
    /// as `ping`): which collection's reads or writes a load costs.
    collection: String,
}

/// `kafka_consumer_lag` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

/// `kafka_consumer_assigned_partitions` labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct TopicLabels {
    pub topic: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Registers `metric` under `name` and hands back the handle the service
/// records into: the registry keeps a clone, so both see the same figures,
/// and each name stands once, beside the field it fills.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

/// One service's metrics. Cheap to record into from any task; share it as
/// `Arc<Metrics>`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<HttpLabels>,
    published: Family<EventLabels, Counter>,
    consumed: Family<ConsumedLabels, Counter>,
    outbox_pending: Gauge,
    outbox_oldest: Gauge<f64, AtomicU64>,
    transitions: Family<TransitionLabels, Counter>,
    mongodb_commands: HistogramFamily<CommandLabels>,
    pub(crate) kafka_lag: Family<PartitionLabels, Gauge>,
    pub(crate) kafka_assigned: Family<TopicLabels, Gauge>,
    batch_size: HistogramFamily<TopicLabels>,
    batch_duration: HistogramFamily<TopicLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every family this service exposes, and the process
    /// collector.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let r = &mut registry;
        let mut metrics = Self {
            http_requests: registered(
                r,
                "http_requests",
                "HTTP requests answered, by method, route template and status",
                Default::default(),
            ),
            http_duration: registered(
                r,
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method, route template and status",
                Family::new_with_constructor(latency_histogram),
            ),
            published: registered(
                r,
                "events_published",
                "Events the outbox relay published, counted after the broker acknowledged them",
                Default::default(),
            ),
            consumed: registered(
                r,
                "events_consumed",
                "Consumed events by outcome: applied, duplicate, retried (per failed attempt), dead_lettered",
                Default::default(),
            ),
            outbox_pending: registered(
                r,
                "outbox_pending_events",
                "Events written to the outbox and not yet removed after delivery (read at scrape time)",
                Default::default(),
            ),
            outbox_oldest: registered(
                r,
                "outbox_oldest_pending_seconds",
                "Age of the oldest event still in the outbox; 0 when it is empty (read at scrape time)",
                Default::default(),
            ),
            transitions: registered(
                r,
                "booking_transitions",
                "Booking status changes this service made (owner-service: decisions; traveler-service: its copy following booking-updates)",
                Default::default(),
            ),
            mongodb_commands: registered(
                r,
                "mongodb_command_duration_seconds",
                "Round trip of MongoDB commands (succeeded or failed), by command name and collection",
                Family::new_with_constructor(latency_histogram),
            ),
            kafka_lag: registered(
                r,
                "kafka_consumer_lag",
                "Messages between the high watermark and the committed offset, per assigned partition (librdkafka statistics)",
                Default::default(),
            ),
            kafka_assigned: registered(
                r,
                "kafka_consumer_assigned_partitions",
                "Partitions assigned to this consumer, per topic (librdkafka statistics)",
                Default::default(),
            ),
            batch_size: registered(
                r,
                "consumer_batch_size",
                "Events the consumer applied together in one batch, per topic",
                Family::new_with_constructor(batch_histogram),
            ),
            batch_duration: registered(
                r,
                "consumer_batch_duration_seconds",
                "Time to apply one batch of events until its effects were durable (retries and dead letters included), per topic",
                Family::new_with_constructor(latency_histogram),
            ),
            registry,
        };
        metrics
            .registry
            .register_collector(Box::new(process::ProcessCollector));
        metrics
    }

    /// Counts one answered request and its duration.
    pub fn http_request(
        &self,
        method: &axum::http::Method,
        route: &str,
        status: u16,
        took: Duration,
    ) {
        let labels = HttpLabels {
            method: http::method_label(method),
            route: route.to_string(),
            status,
        };
        self.http_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.http_requests.get_or_create(&labels).inc();
    }

    /// Counts an event the broker acknowledged.
    pub fn event_published(&self, topic: &str, event_type: &str) {
        self.published
            .get_or_create(&EventLabels {
                topic: topic.to_string(),
                r#type: event_type.to_string(),
            })
            .inc();
    }

    /// Records one applied batch: how many events of `topic` it held and how
    /// long they took to become durable (what bounds a consumer's catch-up).
    pub fn consumer_batch(&self, topic: &str, events: usize, took: std::time::Duration) {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        self.batch_size
            .get_or_create(&labels)
            .observe(events as f64);
        self.batch_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Counts a consumed event's outcome.
    pub fn event_consumed(&self, topic: &str, event_type: &'static str, outcome: Consumed) {
        self.consumed
            .get_or_create(&ConsumedLabels {
                topic: topic.to_string(),
                r#type: event_type,
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// Sets the outbox gauges from a reading of the outbox.
    pub fn outbox_backlog(&self, pending: u64, oldest_age: Option<Duration>) {
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.outbox_oldest
            .set(oldest_age.map_or(0.0, |a| a.as_secs_f64()));
    }

    /// Counts a booking status change (statuses as in the `events` crate).
    pub fn booking_transition(&self, from: &'static str, to: &'static str) {
        self.transitions
            .get_or_create(&TransitionLabels { from, to })
            .inc();
    }

    /// Records a MongoDB command's round trip.
    pub fn mongodb_command(&self, command: &str, collection: &str, took: Duration) {
        self.mongodb_commands
            .get_or_create(&CommandLabels {
                command: command.to_string(),
                collection: collection.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The registry in the text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The families, their types and their order in `/metrics` are what
    /// docs/operations.md and the dashboards name.
    #[test]
    fn exposes_every_family_under_its_documented_name() {
        let m = Metrics::new();
        // A labelled family shows only once it holds a series.
        let took = Duration::from_millis(3);
        m.http_request(&axum::http::Method::GET, "/health", 200, took);
        m.event_published("t", "E");
        m.event_consumed("t", "E", Consumed::Applied);
        m.booking_transition("pending", "accepted");
        m.mongodb_command("find", "c", took);
        let partition = PartitionLabels {
            topic: "t".into(),
            partition: 0,
        };
        m.kafka_lag.get_or_create(&partition).set(1);
        let topic = TopicLabels { topic: "t".into() };
        m.kafka_assigned.get_or_create(&topic).set(1);
        m.consumer_batch("t", 2, took);
        let text = m.encode();
        let types: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        let mut expected = vec![
            "http_requests counter",
            "http_request_duration_seconds histogram",
            "events_published counter",
            "events_consumed counter",
            "outbox_pending_events gauge",
            "outbox_oldest_pending_seconds gauge",
            "booking_transitions counter",
            "mongodb_command_duration_seconds histogram",
            "kafka_consumer_lag gauge",
            "kafka_consumer_assigned_partitions gauge",
            "consumer_batch_size histogram",
            "consumer_batch_duration_seconds histogram",
        ];
        if cfg!(target_os = "linux") {
            expected.extend([
                "process_cpu_seconds counter",
                "process_resident_memory_bytes gauge",
                "process_open_fds gauge",
            ]);
        }
        assert_eq!(types, expected);
    }
}
