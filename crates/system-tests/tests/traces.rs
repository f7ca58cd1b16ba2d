//! Traces across both processes on the real broker and database: the tests
//! run an OTLP/HTTP receiver of their own (protobuf `ExportTraceServiceRequest`
//! on `POST /v1/traces`), start both binaries exporting to it, and check that
//! one booking's spans from both services share one trace, parent by parent:
//! the caller's `traceparent` → `POST` booking (traveler-service) → relay
//! publish (traveler-service) → consumer (owner-service), and approve
//! (owner-service) → relay publish → consumer (traveler-service). The Kafka
//! message carries the publish span's `traceparent` in its headers.

mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, routing::post, Router};
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value,
};
use prost::Message as _;
use reqwest::Method;
use serde_json::json;
use support::{free_port, ProcessEnv, System, PROPAGATION};
use test_support::{eventually, read_topic, real_servers, unique};

/// One exported span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: Vec<(String, String)>,
}

impl Span {
    fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Received = Arc<Mutex<Vec<Span>>>;

fn text(value: Option<&any_value::Value>) -> String {
    match value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

async fn receive(State(received): State<Received>, body: Bytes) -> &'static [u8] {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
    let mut spans = received.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|a| {
                            let value = a.value.as_ref().and_then(|v| v.value.as_ref());
                            (a.key.clone(), text(value))
                        })
                        .collect(),
                });
            }
        }
    }
    // An empty ExportTraceServiceResponse: full success.
    b""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Starts the receiver on a free loopback port; returns its base URL.
async fn otlp_receiver() -> (String, Received) {
    let received = Received::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

/// Walks up from `span` through the received spans; the chain ends where a
/// parent was not exported (the caller's own span) or there is none.
fn ancestry(spans: &[Span], span: &Span) -> Vec<Span> {
    let mut chain = vec![span.clone()];
    while let Some(parent) = spans
        .iter()
        .find(|s| s.span_id == chain.last().unwrap().parent_span_id)
    {
        chain.push(parent.clone());
    }
    chain
}

fn describe(chain: &[Span]) -> Vec<String> {
    chain
        .iter()
        .map(|s| format!("{}: {}", s.service, s.name))
        .collect()
}

/// Waits for a consumer span of `booking` in `service` and returns its chain.
async fn consumer_chain(
    received: &Received,
    service: &str,
    topic: &str,
    booking: &str,
) -> Vec<Span> {
    let name = format!("{topic} process");
    eventually(
        &format!("{service} exports the span of consuming {booking}, with its ancestors"),
        PROPAGATION,
        || async {
            let spans = received.lock().unwrap().clone();
            let consumer = spans.iter().find(|s| {
                s.service == service && s.name == name && s.attribute("booking_id") == Some(booking)
            })?;
            let chain = ancestry(&spans, consumer);
            (chain.len() >= 3).then_some(chain)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_booking_is_one_trace_from_request_through_kafka_to_the_other_service() {
    let Some(servers) = real_servers("traces") else {
        return;
    };
    let (collector, received) = otlp_receiver().await;
    let run = unique("traces").replace('-', "_");
    let env = ProcessEnv::for_run(&servers, &run, &[]);
    // Export every 100 ms rather than the default 5 s, so the test waits less.
    let extra = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let (traveler_child, traveler) = env.spawn_with("traveler-service", free_port(), &extra);
    let (owner_child, owner) = env.spawn_with("owner-service", free_port(), &extra);
    let requests_topic = env.topic("booking-requests");
    let updates_topic = env.topic("booking-updates");
    let sys = System::from_processes(
        traveler,
        owner,
        vec![traveler_child, owner_child],
        Some(env),
    )
    .await;

    let (owner_user, traveler_user, property) = sys.listed_property("Porto").await;
    // The caller is traced itself: its traceparent is honoured.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let check_in = chrono::Utc::now().date_naive() + chrono::Days::new(40);
    let created = sys
        .http
        .send(
            Method::POST,
            &format!("{}/api/travelers/bookings", sys.traveler),
            Some(&traveler_user.token),
            Some(
                json!({"property_id": property, "check_in": check_in.to_string(),
                        "check_out": (check_in + chrono::Days::new(2)).to_string(), "guests": 2}),
            ),
            &[(
                "traceparent",
                &format!("00-{caller_trace}-{caller_span}-01"),
            )],
        )
        .await
        .expect(201);
    let booking = created["booking"]["id"].as_str().unwrap().to_string();

    // POST booking → relay → owner-service consumer: one trace.
    let chain = consumer_chain(&received, "owner-service", &requests_topic, &booking).await;
    let names = describe(&chain);
    assert_eq!(
        names,
        [
            format!("owner-service: {requests_topic} process"),
            format!("traveler-service: {requests_topic} publish"),
            "traveler-service: POST /api/travelers/bookings".to_string(),
        ],
        "{chain:#?}"
    );
    let request_span = &chain[2];
    assert!(
        chain.iter().all(|s| s.trace_id == caller_trace),
        "one trace, the caller's: {chain:#?}"
    );
    assert_eq!(request_span.parent_span_id, caller_span, "{request_span:?}");
    assert_eq!(request_span.attribute("booking_id"), Some(booking.as_str()));
    assert_eq!(
        request_span.attribute("http.route"),
        Some("/api/travelers/bookings")
    );
    assert_eq!(
        request_span.attribute("http.response.status_code"),
        Some("201")
    );
    assert_eq!(chain[1].attribute("booking_id"), Some(booking.as_str()));
    assert_eq!(chain[0].attribute("outcome"), Some("applied"));

    // The Kafka message carries the publish span's context.
    let publish = &chain[1];
    let messages = read_topic(
        &servers.kafka_brokers,
        &requests_topic,
        Duration::from_secs(20),
    );
    let message = messages
        .iter()
        .find(|m| m.key.as_deref() == Some(booking.as_bytes()))
        .expect("the booking's request on the topic");
    assert_eq!(
        message.header("traceparent"),
        Some(format!("00-{}-{}-01", publish.trace_id, publish.span_id)),
        "{:?}",
        message.headers
    );

    // Approve → relay → traveler-service consumer: the owner's trace.
    sys.wait_owner_sees(&owner_user, &booking).await;
    sys.decide(&owner_user, &booking, "approve", None)
        .await
        .expect(200);
    let chain = consumer_chain(&received, "traveler-service", &updates_topic, &booking).await;
    assert_eq!(
        describe(&chain),
        [
            format!("traveler-service: {updates_topic} process"),
            format!("owner-service: {updates_topic} publish"),
            "owner-service: PUT /api/owners/bookings/{id}/approve".to_string(),
        ],
        "{chain:#?}"
    );
    let approve = &chain[2];
    assert!(chain.iter().all(|s| s.trace_id == approve.trace_id));
    assert_eq!(approve.parent_span_id, "", "no caller context: a new trace");
    assert_ne!(approve.trace_id, caller_trace);
    assert_eq!(approve.attribute("booking_id"), Some(booking.as_str()));
    let messages = read_topic(
        &servers.kafka_brokers,
        &updates_topic,
        Duration::from_secs(20),
    );
    assert!(
        messages
            .iter()
            .any(|m| m.key.as_deref() == Some(booking.as_bytes())
                && m.header("traceparent")
                    == Some(format!("00-{}-{}-01", approve.trace_id, chain[1].span_id))),
        "the decision carries its publish span's traceparent"
    );

    // A path no route matches: a span named by the method alone.
    let missing = sys
        .http
        .get(&format!("{}/no/such/path", sys.owner), None)
        .await;
    assert_eq!(missing.status.as_u16(), 404);
    eventually("the unmatched request's span", PROPAGATION, || async {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|s| {
                s.service == "owner-service"
                    && s.name == "GET"
                    && s.attribute("url.path") == Some("/no/such/path")
                    && s.attribute("http.response.status_code") == Some("404")
            })
            .then_some(())
    })
    .await;
}
