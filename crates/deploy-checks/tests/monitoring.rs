//! Checks `k8s/monitoring/`: the alert rules pass `promtool check rules`
//! and their unit tests (`promtool test rules`), the compose Prometheus
//! configuration passes `promtool check config`, every alert links to its
//! runbook section in docs/operations.md, and the rules, the Kubernetes
//! scrape job and the Grafana dashboard use only metrics the services
//! actually expose (read from the services' own registry).
//!
//! promtool comes from Debian's `prometheus` package, installed by
//! scripts/install-deploy-tools.sh.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use axum::http::Method;
use common::*;
use serde_json::Value;

const RULES: &str = "k8s/monitoring/alert-rules.yml";
const RULE_TESTS: &str = "k8s/monitoring/alert-rules.test.yml";
const COMPOSE_PROMETHEUS: &str = "k8s/monitoring/prometheus-compose.yml";
const KUBERNETES_PROMETHEUS: &str = "k8s/monitoring/prometheus-kubernetes.yml";
const DASHBOARD: &str = "k8s/monitoring/grafana-dashboard.json";

/// The alerts the issue asks for, by what they watch.
const REQUIRED_ALERTS: [&str; 6] = [
    "BookingConsumerLagGrowing",
    "BookingOutboxStalled",
    "BookingDeadLetters",
    "BookingNotReady",
    "BookingHigh5xxRatio",
    "BookingHighP99Latency",
];

fn promtool() -> Option<std::path::PathBuf> {
    find_tool("promtool", "PROMTOOL_BIN", &["/usr/bin/promtool"])
}

#[test]
fn promtool_accepts_the_rules_their_unit_tests_and_the_compose_configuration() {
    let Some(promtool) = promtool() else { return };
    let root = workspace_root();
    let checked = run(Command::new(&promtool)
        .arg("check")
        .arg("rules")
        .arg(root.join(RULES)));
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", REQUIRED_ALERTS.len())),
        "{checked}"
    );
    let tested = run(Command::new(&promtool)
        .current_dir(root.join("k8s/monitoring"))
        .arg("test")
        .arg("rules")
        .arg(root.join(RULE_TESTS)));
    assert!(tested.contains("SUCCESS"), "{tested}");
    let config = run(Command::new(&promtool)
        .arg("check")
        .arg("config")
        .arg(root.join(COMPOSE_PROMETHEUS)));
    assert!(config.contains("SUCCESS"), "{config}");
}

/// The rules as (alert name, expression, runbook_url).
fn alerts() -> Vec<(String, String, String)> {
    let rules = parse_yaml(&read(RULES));
    seq(&rules["groups"])
        .iter()
        .flat_map(|g| seq(&g["rules"]))
        .filter_map(|r| {
            Some((
                r["alert"].as_str()?.to_string(),
                r["expr"].as_str().unwrap_or("").to_string(),
                r["annotations"]["runbook_url"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            ))
        })
        .collect()
}

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped,
/// spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_required_alert_exists_and_links_to_its_runbook_section() {
    let operations = read("docs/operations.md");
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let alerts = alerts();
    let names: BTreeSet<&str> = alerts.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut errors = Vec::new();
    for required in REQUIRED_ALERTS {
        if !names.contains(required) {
            errors.push(format!("no alert {required}"));
        }
    }
    for (name, _, url) in &alerts {
        match url.split_once('#') {
            Some(("docs/operations.md", section)) if anchors.contains(section) => {}
            _ => errors.push(format!(
                "{name}: runbook_url {url:?} is not a section of docs/operations.md"
            )),
        }
    }
    assert_no_errors("alert runbooks", &errors);
}

/// Every series name the services expose, from their own registry (with
/// one sample recorded through each recording method, since a family
/// shows only once it has a series): counters as `<name>_total`,
/// histograms as `_bucket`, `_sum` and `_count`.
fn exposed_series() -> BTreeSet<String> {
    use service_runtime::metrics::{Consumed, Metrics};
    use std::time::Duration;
    let metrics = Metrics::new();
    let ms = Duration::from_millis(1);
    metrics.http_request(&Method::GET, "/health", 200, ms);
    metrics.event_published("booking-requests", "booking.requested");
    metrics.event_consumed("booking-requests", "booking.requested", Consumed::Applied);
    metrics.outbox_backlog(0, None);
    metrics.booking_transition("PENDING", "ACCEPTED");
    metrics.mongodb_command("find", "bookings", ms);
    metrics.kafka_assigned_partitions("booking-requests", 1);
    metrics.kafka_partition_lag("booking-requests", 0, 0);
    let mut series = BTreeSet::new();
    for line in metrics.encode().lines() {
        let mut words = line.split_whitespace();
        if (words.next(), words.next()) != (Some("#"), Some("TYPE")) {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        match kind {
            "counter" => {
                series.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    series.insert(format!("{name}{suffix}"));
                }
            }
            _ => {
                series.insert(name.to_string());
            }
        }
    }
    // Added by Prometheus to every target.
    series.insert("up".into());
    series
}

/// The metric names a PromQL expression reads: identifiers outside label
/// matchers, `by (...)` lists, ranges and strings, that are not PromQL
/// functions, aggregations or keywords.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const PROMQL: [&str; 14] = [
        "sum",
        "max",
        "min",
        "avg",
        "count",
        "by",
        "without",
        "rate",
        "increase",
        "deriv",
        "histogram_quantile",
        "and",
        "or",
        "unless",
    ];
    let mut plain = String::new();
    let (mut depth_brace, mut depth_bracket, mut in_string) = (0, 0, false);
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            '{' if !in_string => depth_brace += 1,
            '}' if !in_string => depth_brace -= 1,
            '[' if !in_string => depth_bracket += 1,
            ']' if !in_string => depth_bracket -= 1,
            _ if in_string || depth_brace > 0 || depth_bracket > 0 => {}
            _ => plain.push(c),
        }
    }
    // Drop the label lists of `by (...)` / `without (...)`.
    let mut cleaned = String::new();
    let mut rest = plain.as_str();
    while let Some(at) = rest.find(" by (").or_else(|| rest.find(" without (")) {
        cleaned.push_str(&rest[..at]);
        let after = &rest[at..];
        let close = after.find(')').map_or(after.len(), |i| i + 1);
        rest = &after[close..];
    }
    cleaned.push_str(rest);
    cleaned
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter(|w| !PROMQL.contains(w))
        .map(str::to_string)
        .collect()
}

#[test]
fn rules_and_dashboard_use_only_metrics_the_services_expose() {
    let exposed = exposed_series();
    for family in [
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "events_published_total",
        "events_consumed_total",
        "outbox_pending_events",
        "outbox_oldest_pending_seconds",
        "kafka_consumer_lag",
        "kafka_consumer_assigned_partitions",
        "booking_transitions_total",
        "mongodb_command_duration_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(
            exposed.contains(family),
            "the registry lacks {family}: {exposed:?}"
        );
    }
    let mut errors = Vec::new();
    let mut used = BTreeSet::new();
    for (name, expr, _) in alerts() {
        for metric in metric_names(&expr) {
            if !exposed.contains(&metric) {
                errors.push(format!(
                    "alert {name} reads {metric}, which no service exposes"
                ));
            }
        }
    }
    let dashboard: Value = serde_json::from_str(&read(DASHBOARD)).expect("dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("dashboard panels");
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or("?");
        let targets = panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if targets.is_empty() {
            errors.push(format!("panel {title:?} has no query"));
        }
        for target in targets {
            let expr = target["expr"].as_str().unwrap_or("");
            let names = metric_names(expr);
            if names.is_empty() {
                errors.push(format!("panel {title:?}: no metric in {expr:?}"));
            }
            for metric in names {
                if !exposed.contains(&metric) {
                    errors.push(format!(
                        "panel {title:?} reads {metric}, which no service exposes"
                    ));
                }
                used.insert(metric);
            }
        }
    }
    // The dashboard shows every figure the alerts are about.
    for metric in [
        "kafka_consumer_lag",
        "outbox_oldest_pending_seconds",
        "events_consumed_total",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
    ] {
        if !used.contains(metric) {
            errors.push(format!("the dashboard has no panel on {metric}"));
        }
    }
    assert_no_errors("metric names", &errors);
}

/// The Kubernetes scrape job keeps only pods that ask to be scraped, honours
/// their path and port annotations, and sets the `service` label the rules
/// group by. (Debian's promtool is built without Kubernetes discovery, so
/// this file is checked by structure rather than by `promtool check config`.)
#[test]
fn kubernetes_scrape_job_follows_the_pod_annotations() {
    let config = parse_yaml(&read(KUBERNETES_PROMETHEUS));
    let jobs = seq(&config["scrape_configs"]);
    assert_eq!(jobs.len(), 1, "one scrape job");
    let job = &jobs[0];
    assert_eq!(
        seq(&job["kubernetes_sd_configs"])[0]["role"].as_str(),
        Some("pod")
    );
    let relabel = seq(&job["relabel_configs"]);
    let has = |source: &str, action: &str, target: Option<&str>| {
        relabel.iter().any(|r| {
            seq(&r["source_labels"])
                .iter()
                .any(|s| s.as_str() == Some(source))
                && r["action"].as_str().unwrap_or("replace") == action
                && target.is_none_or(|t| r["target_label"].as_str() == Some(t))
        })
    };
    let mut errors = Vec::new();
    for (source, action, target) in [
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            "keep",
            None,
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_path",
            "replace",
            Some("__metrics_path__"),
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "replace",
            Some("__address__"),
        ),
        (
            "__meta_kubernetes_pod_label_app_kubernetes_io_name",
            "replace",
            Some("service"),
        ),
    ] {
        if !has(source, action, target) {
            errors.push(format!(
                "no relabeling {action} of {source} into {target:?}"
            ));
        }
    }
    let rule_files: Vec<String> = seq(&config["rule_files"])
        .iter()
        .filter_map(scalar)
        .collect();
    if rule_files != ["alert-rules.yml"] {
        errors.push(format!(
            "rule_files {rule_files:?}, expected the alert rules beside it"
        ));
    }
    assert_no_errors("kubernetes scrape job", &errors);
}
