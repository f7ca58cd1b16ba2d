//! Logs and traces.
//!
//! Logs: JSON lines for production collectors (with `trace_id`, `span_id`
//! and `booking_id` when the line was written inside such a span), pretty
//! for a terminal.
//!
//! Traces: OpenTelemetry spans for each HTTP request ([`http_span`]), each
//! event the outbox relay publishes ([`publish_span`]) and each event a
//! consumer applies ([`consume_spans`]), exported over OTLP/HTTP (protobuf)
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The W3C `traceparent` and
//! `tracestate` of the request that wrote an event are stored with it in the
//! outbox ([`trace_headers`]) and travel in its Kafka headers, so a consumer
//! in the other service continues the same trace. Without an endpoint no
//! OpenTelemetry layer is installed: nothing is captured, propagated or
//! exported, and the message paths skip all of it after one flag check
//! ([`traces_enabled`]); the request span is then a plain `tracing` span,
//! which still gives the request's log lines their `booking_id`.

use std::{
    fmt,
    sync::atomic::{AtomicBool, Ordering},
};

use opentelemetry::{
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{propagation::TraceContextPropagator, trace::SdkTracerProvider, Resource};
use tracing::{field::Field, Event, Level, Span, Subscriber};
use tracing_opentelemetry::{OpenTelemetrySpanExt, OtelData};
use tracing_subscriber::{
    filter::Targets,
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields},
    layer::{Context as LayerContext, SubscriberExt},
    registry::LookupSpan,
    util::SubscriberInitExt,
    EnvFilter, Layer,
};

/// How log lines are written: JSON for production collectors, pretty for a terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// The W3C Trace Context header naming the trace and the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C Trace Context header with vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";

/// Whether spans are exported. Set once by [`init_with_traces`]; every
/// per-message tracing step checks it first, so a process without an OTLP
/// endpoint pays one relaxed load per batch and nothing else.
static TRACES: AtomicBool = AtomicBool::new(false);

/// Whether this process exports traces (an OTLP endpoint was configured and
/// the exporter could be built).
pub fn traces_enabled() -> bool {
    TRACES.load(Ordering::Relaxed)
}

/// Installs the global subscriber without traces (the embedded demo and
/// tools); `RUST_LOG` filters (default `info`). Safe to call more than once
/// (later calls do nothing).
pub fn init(format: LogFormat) {
    install(format, None);
}

/// Longest a shutdown waits for the last spans to be exported: the same
/// as the producer flush it runs beside (`runner::Service::run`), so traces
/// add nothing to the shutdown budget.
pub const TRACE_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The exporting pipeline, once [`init_with_traces`] built one: kept here so
/// the shutdown sequence can flush it without threading it through.
static PROVIDER: std::sync::OnceLock<SdkTracerProvider> = std::sync::OnceLock::new();

/// Exports the spans still buffered and stops the exporter, waiting at most
/// [`TRACE_FLUSH_TIMEOUT`] (a collector that does not answer must not hold
/// up the exit). Does nothing when traces are off. Call it once, at the end
/// of shutdown, when no more spans will end; it blocks (the batch processor
/// exports on its own thread), so it runs on a blocking thread.
pub async fn flush_traces() {
    let Some(provider) = PROVIDER.get().cloned() else {
        return;
    };
    let result =
        tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(TRACE_FLUSH_TIMEOUT))
            .await;
    if let Ok(Err(e)) = result {
        tracing::warn!(error = %e, "trace exporter did not shut down cleanly");
    }
}

/// Installs the global subscriber like [`init`] and, when `otlp_endpoint`
/// is set (the base URL of an OTLP/HTTP collector, e.g.
/// `http://otel-collector:4318`; spans go to its `/v1/traces`), an
/// OpenTelemetry layer exporting spans in batches under the resource
/// `service.name` = `service`. An exporter that cannot be built is logged
/// and traces stay off: tracing never stops a service from starting.
pub fn init_with_traces(format: LogFormat, service: &str, otlp_endpoint: Option<&str>) {
    let built = otlp_endpoint.map(|endpoint| (endpoint, tracer_provider(service, endpoint)));
    let provider = match &built {
        Some((_, Ok(provider))) => Some(provider.clone()),
        _ => None,
    };
    let installed = install(format, provider.clone());
    match (built, provider) {
        (Some((endpoint, Ok(_))), Some(provider)) if installed => {
            let _ = PROVIDER.set(provider);
            TRACES.store(true, Ordering::Relaxed);
            tracing::info!(endpoint, "exporting traces over OTLP/HTTP");
        }
        (Some((endpoint, Err(error))), _) => {
            tracing::error!(endpoint, %error, "cannot build the trace exporter; traces are off")
        }
        _ => {}
    }
}

fn tracer_provider(service: &str, endpoint: &str) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
        .build()
        .map_err(|e| e.to_string())?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build())
}

/// Returns whether this call installed the subscriber (false: one was there).
///
/// `RUST_LOG` filters the logs only. The exported spans (all made in this
/// module, at `info`) have a filter of their own, so an operator who
/// quietens the logs (`RUST_LOG=warn`) still gets every trace.
fn install(format: LogFormat, provider: Option<SdkTracerProvider>) -> bool {
    let logs = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let spans = Targets::new().with_target(module_path!(), Level::INFO);
    let otel = provider.map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("booking"))
            .with_filter(spans)
    });
    let registry = tracing_subscriber::registry()
        .with(otel)
        .with(BookingIds.with_filter(logs()));
    match format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(JsonLine)
                    .with_filter(logs()),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .compact()
                    .with_filter(logs()),
            )
            .try_init(),
    }
    .is_ok()
}

/// The span's `booking_id` field, kept apart so a log line can name the
/// booking without parsing formatted span fields.
struct BookingId(String);

/// Remembers each span's `booking_id` field (recorded at creation or later
/// with [`record_booking_id`]) for [`JsonLine`].
struct BookingIds;

struct BookingIdVisitor(Option<String>);

impl tracing::field::Visit for BookingIdVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "booking_id" {
            self.0 = Some(value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "booking_id" {
            self.0 = Some(format!("{value:?}").trim_matches('"').to_string());
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for BookingIds {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: LayerContext<'_, S>,
    ) {
        let mut visitor = BookingIdVisitor(None);
        attrs.record(&mut visitor);
        if let (Some(booking), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().insert(BookingId(booking));
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: LayerContext<'_, S>,
    ) {
        let mut visitor = BookingIdVisitor(None);
        values.record(&mut visitor);
        if let (Some(booking), Some(span)) = (visitor.0, ctx.span(id)) {
            span.extensions_mut().replace(BookingId(booking));
        }
    }
}

/// One JSON object per event: `timestamp`, `level`, the event's fields
/// (`message` among them), `target`, and from the innermost span that has
/// them `trace_id` and `span_id` (when traces are on) and `booking_id`.
struct JsonLine;

struct JsonFieldVisitor<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for JsonFieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0.insert(field.name().into(), value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = serde_json::Map::new();
        let meta = event.metadata();
        line.insert(
            "timestamp".into(),
            chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .into(),
        );
        line.insert("level".into(), meta.level().as_str().into());
        event.record(&mut JsonFieldVisitor(&mut line));
        line.insert("target".into(), meta.target().into());
        if let Some(scope) = ctx.event_scope() {
            let (mut ids, mut booking) = (None, None);
            for span in scope {
                let extensions = span.extensions();
                if ids.is_none() {
                    ids = extensions
                        .get::<OtelData>()
                        .and_then(|d| Some((d.trace_id()?, d.span_id()?)));
                }
                if booking.is_none() {
                    booking = extensions.get::<BookingId>().map(|b| b.0.clone());
                }
                if ids.is_some() && booking.is_some() {
                    break;
                }
            }
            if let Some((trace, span)) = ids {
                line.insert("trace_id".into(), trace.to_string().into());
                line.insert("span_id".into(), span.to_string().into());
            }
            if let Some(booking) = booking {
                line.insert("booking_id".into(), booking.into());
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(line))
    }
}

/// Names the booking the current span works on, for its log lines and its
/// span attribute `booking_id` (the span must declare the field, as
/// [`http_span`] does).
pub fn record_booking_id(booking_id: &str) {
    Span::current().record("booking_id", booking_id);
}

/// Headers as a text-map carrier, for extracting a trace context.
struct HeaderPairs<'a>(&'a [(String, String)]);

impl Extractor for HeaderPairs<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Collects what the propagator injects.
struct Injected(Vec<(String, String)>);

impl Injector for Injected {
    fn set(&mut self, key: &str, value: String) {
        self.0.push((key.to_string(), value));
    }
}

/// HTTP request headers as a text-map carrier.
struct HttpHeaders<'a>(&'a axum::http::HeaderMap);

impl Extractor for HttpHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The `traceparent` (and `tracestate`) of `span`, or none when traces are
/// off or the span belongs to no trace.
fn context_headers(span: &Span) -> Vec<(String, String)> {
    let mut injected = Injected(Vec::new());
    TraceContextPropagator::new().inject_context(&span.context(), &mut injected);
    injected.0
}

/// The trace context of the current span as headers for an event written
/// now: stored with it in the outbox, so the relay publishes it as a child
/// of the request that wrote it. Empty when traces are off.
pub fn trace_headers() -> Vec<(String, String)> {
    if !traces_enabled() {
        return Vec::new();
    }
    context_headers(&Span::current())
}

fn set_parent_from(span: &Span, headers: &[(String, String)]) {
    let parent = TraceContextPropagator::new().extract(&HeaderPairs(headers));
    let _ = span.set_parent(parent);
}

/// The span of one HTTP request (`tower_http`'s `TraceLayer` makes it):
/// named `METHOD route` by the matched route template, a child of the
/// caller's span when the request carries a `traceparent`. Its
/// `http.response.status_code` is set by [`http_response`], its
/// `booking_id` by handlers ([`record_booking_id`]).
pub fn http_span<B>(request: &axum::http::Request<B>) -> Span {
    let method = request.method();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str());
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    let span = tracing::info_span!(
        "http_request",
        otel.name = %name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        booking_id = tracing::field::Empty,
    );
    if traces_enabled() {
        let parent = TraceContextPropagator::new().extract(&HttpHeaders(request.headers()));
        let _ = span.set_parent(parent);
    }
    span
}

/// Records the answer's status on the request's span; a 5xx marks the span
/// as an error.
pub fn http_response<B>(response: &axum::http::Response<B>, span: &Span) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// One event of an outbox batch as the tracing of [`publish_span`] sees
/// it (the relay's `OutboxMessage`, field by field).
pub struct Published<'a> {
    pub topic: &'a str,
    pub event_id: &'a str,
    /// The message key (the aggregate id).
    pub key: &'a str,
    /// Its CloudEvents type.
    pub event_type: &'a str,
}

/// The span publishing one event of an outbox batch, child of the span
/// that wrote it (its stored `traceparent` in `headers`; a new trace when
/// it has none), with the event's `traceparent`/`tracestate` in `headers`
/// replaced by the publish span's, so the consumer's span is a child of the
/// publish. Call it only when [`traces_enabled`]; the relay's batch goes
/// out unchanged otherwise.
pub fn publish_span(event: Published<'_>, headers: &mut Vec<(String, String)>) -> Span {
    let Published {
        topic,
        event_id,
        key,
        event_type,
    } = event;
    let span = tracing::info_span!(
        parent: None,
        "publish",
        otel.name = %format!("{} publish", topic),
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.destination.name = %topic,
        messaging.message.id = %event_id,
        messaging.kafka.message.key = %key,
        event_type,
        booking_id = booking_key(event_type, key),
        error = tracing::field::Empty,
    );
    set_parent_from(&span, headers);
    headers.retain(|(k, _)| k != TRACEPARENT && k != TRACESTATE);
    headers.extend(context_headers(&span));
    span
}

/// Records each publish's result on its span (from [`publish_span`]).
pub fn publish_results(spans: &[Span], results: &[Result<(), String>]) {
    for (span, result) in spans.iter().zip(results) {
        if let Err(error) = result {
            span.record("otel.status_code", "ERROR");
            span.record("error", error.as_str());
        }
    }
}

/// The key of a booking event is its booking id: the span names it.
fn booking_key<'a>(event_type: &str, key: &'a str) -> Option<&'a str> {
    event_type.starts_with("booking.").then_some(key)
}

/// One consumed message as the tracing of [`consume_spans`] sees it.
pub struct Consumed<'a> {
    /// The message key (the aggregate id).
    pub key: &'a str,
    /// Its headers, or just those a trace needs (`traceparent`,
    /// `tracestate`, `ce_id`, `ce_type`).
    pub headers: Vec<(String, String)>,
}

/// A span for each message of a consumed batch, child of the publish span
/// named by its `traceparent` header (a new trace when it has none).
pub fn consume_spans(topic: &str, messages: &[Consumed<'_>]) -> Vec<Span> {
    messages
        .iter()
        .map(|m| {
            let header = |name: &str| HeaderPairs(&m.headers).get(name).map(str::to_string);
            let event_type = header("ce_type").unwrap_or_default();
            let span = tracing::info_span!(
                parent: None,
                "consume",
                otel.name = %format!("{topic} process"),
                otel.kind = "consumer",
                otel.status_code = tracing::field::Empty,
                messaging.system = "kafka",
                messaging.operation.type = "process",
                messaging.destination.name = topic,
                messaging.message.id = header("ce_id"),
                messaging.kafka.message.key = m.key,
                event_type = %event_type,
                booking_id = booking_key(&event_type, m.key),
                outcome = tracing::field::Empty,
                error = tracing::field::Empty,
            );
            set_parent_from(&span, &m.headers);
            span
        })
        .collect()
}

/// Whether a consumed header is one [`consume_spans`] reads (the rest need
/// not be copied).
pub fn is_trace_header(key: &str) -> bool {
    matches!(key, TRACEPARENT | TRACESTATE | "ce_id" | "ce_type")
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::TraceContextExt as _;

    use super::*;

    /// A log writer the test reads back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<serde_json::Value> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
                .collect()
        }
    }

    fn json_logs(captured: &Captured) -> impl Subscriber + for<'a> LookupSpan<'a> + Send + Sync {
        tracing_subscriber::registry().with(BookingIds).with(
            tracing_subscriber::fmt::layer()
                .event_format(JsonLine)
                .with_writer(captured.clone()),
        )
    }

    #[test]
    fn a_json_line_names_its_trace_span_and_booking() {
        // No exporter: spans still get ids, nothing leaves the test.
        let provider = SdkTracerProvider::builder().build();
        let captured = Captured::default();
        let subscriber = json_logs(&captured)
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
        let (trace_id, span_id) = tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("http_request", booking_id = tracing::field::Empty);
            let _entered = span.enter();
            record_booking_id("b-1");
            tracing::info!(count = 3, "inside");
            let cx = span.context();
            let ids = cx.span().span_context().clone();
            (ids.trace_id().to_string(), ids.span_id().to_string())
        });
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert_eq!(line["message"], "inside");
        assert_eq!(line["count"], 3);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["trace_id"], trace_id.as_str());
        assert_eq!(line["span_id"], span_id.as_str());
        assert_eq!(line["booking_id"], "b-1");
        assert_eq!(trace_id.len(), 32);
    }

    #[test]
    fn without_traces_a_json_line_still_names_the_booking_and_no_trace() {
        let captured = Captured::default();
        tracing::subscriber::with_default(json_logs(&captured), || {
            tracing::info!("outside");
            let span = tracing::info_span!("consume", booking_id = "b-2");
            let _entered = span.enter();
            tracing::warn!(error = "boom", "inside");
        });
        let lines = captured.lines();
        assert_eq!(lines[0]["message"], "outside");
        assert!(lines[0].get("booking_id").is_none());
        assert_eq!(lines[1]["booking_id"], "b-2");
        assert_eq!(lines[1]["error"], "boom");
        assert!(lines[1].get("trace_id").is_none(), "{}", lines[1]);
    }

    #[test]
    fn trace_headers_are_empty_while_traces_are_off() {
        assert!(!traces_enabled());
        assert!(trace_headers().is_empty());
    }
}
