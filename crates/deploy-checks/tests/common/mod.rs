//! Shared helpers for the deployment checks.
//!
//! The checks compare deployment files with the code itself rather than with a
//! second copy of the facts: the list of variables comes from
//! `service_runtime::config::env_spec`, the ports and database names from each
//! service's `DEFAULTS`, the topic names from `events::topics`, and every
//! environment is run through `ServiceConfig::from_lookup`, the same parser the
//! binaries use at start-up. A change in the code that a manifest no longer
//! matches therefore fails here, not in a cluster.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use service_runtime::config::{env_spec, EnvVar, ServiceConfig, ServiceDefaults};

/// Namespace every k8s object lives in (`k8s/kustomization.yaml`).
pub const NAMESPACE: &str = "booking";
/// Secret that holds every secret value; committed only as a template.
pub const SECRET_NAME: &str = "booking-secrets";
/// Where the Secret's template lives (not part of the kustomization).
pub const SECRET_TEMPLATE: &str = "k8s/secrets/booking-secrets.template.yaml";
/// The topic creation script shared by compose and k8s.
pub const TOPICS_SCRIPT: &str = "k8s/kafka/create-topics.sh";
/// The replica set initiation script shared by compose and k8s.
pub const MONGO_INIT_SCRIPT: &str = "k8s/mongodb/init-replica-set.sh";
/// The producer flush at the end of shutdown (`service_runtime::runner`:
/// `publisher.flush(Duration::from_secs(5))`).
pub const PRODUCER_FLUSH_SECS: u64 = 5;
/// Slack for the HTTP drain and process exit.
pub const SHUTDOWN_MARGIN_SECS: u64 = 5;

/// How long a binary keeps retrying MongoDB and Kafka at start-up before it
/// binds its HTTP port (`STARTUP_PATIENCE` in `service_runtime::runner`, not
/// exported, hence repeated here). Start-up probes must allow at least this.
pub const STARTUP_PATIENCE_SECS: u64 = 90;

/// Worst-case seconds from SIGTERM to exit with `SHUTDOWN_TIMEOUT_SECS` =
/// `timeout`, following `service_runtime::runner::Service::run`: after the
/// HTTP server drains, the consumer gets up to `timeout` to finish its message
/// and commit, then the outbox relay up to `timeout` again, then the producer
/// flush. A deployment that kills the process sooner loses that work.
pub fn shutdown_budget_secs(timeout: u64) -> u64 {
    2 * timeout + PRODUCER_FLUSH_SECS + SHUTDOWN_MARGIN_SECS
}
/// Stand-in for a value that a deployment takes from a secret store: long
/// enough for every check the configuration parser makes (JWT_SECRET >= 32 bytes).
pub const SECRET_PLACEHOLDER: &str = "secret-placeholder-secret-placeholder-0123456789";

/// One of the two service binaries, described by its own code.
pub struct Service {
    pub defaults: ServiceDefaults,
    pub spec: Vec<EnvVar>,
}

impl Service {
    /// The name shared by the binary, the Docker stage, the compose service,
    /// the k8s Deployment, its container and the Kafka consumer group.
    pub fn name(&self) -> &'static str {
        self.defaults.name
    }

    pub fn required(&self) -> impl Iterator<Item = &EnvVar> {
        self.spec.iter().filter(|v| v.default.is_none())
    }

    pub fn default_of(&self, name: &str) -> Option<&str> {
        self.spec
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.default.as_deref())
    }
}

pub fn services() -> Vec<Service> {
    [traveler_service::DEFAULTS, owner_service::DEFAULTS]
        .into_iter()
        .map(|defaults| Service {
            defaults,
            spec: env_spec(defaults),
        })
        .collect()
}

/// Every topic the system uses: the three event topics and their dead-letter
/// topics, named by the `events` crate.
pub fn expected_topics() -> BTreeSet<String> {
    use events::topics::{dead_letter, BOOKING_REQUESTS, BOOKING_UPDATES, PROPERTY_LISTINGS};
    let mut topics = BTreeSet::new();
    for t in [BOOKING_REQUESTS, BOOKING_UPDATES, PROPERTY_LISTINGS] {
        topics.insert(t.to_string());
        topics.insert(dead_letter(t));
    }
    topics
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

pub fn read(rel: &str) -> String {
    let path = workspace_root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------

/// True when running under CI (`CI` set to anything but empty/false/0).
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| !v.is_empty() && v != "false" && v != "0")
        .unwrap_or(false)
}

/// Writes straight to the process's stderr: the test harness captures
/// `eprintln!`, and a skipped check must be visible in a normal `cargo test`.
pub fn loud(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// Finds an external tool: `$env_var`, then `name` on PATH, then `fallbacks`.
///
/// A missing tool is a failure in CI (the checks would otherwise pass without
/// checking anything) and a loud SKIPPED line elsewhere, so a developer without
/// the tools can still run the rest of the test suite.
pub fn find_tool(name: &str, env_var: &str, fallbacks: &[&str]) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os(env_var).filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(name)));
    }
    candidates.extend(fallbacks.iter().map(PathBuf::from));
    if let Some(found) = candidates.into_iter().find(|p| p.is_file()) {
        return Some(found);
    }
    let hint = format!(
        "{name} not found (looked at ${env_var}, PATH, {fallbacks:?}); \
         run scripts/install-deploy-tools.sh"
    );
    if in_ci() {
        panic!("{hint}. CI is set, so this check may not be skipped.");
    }
    loud(&format!("SKIPPED (deploy-checks): {hint}"));
    None
}

pub const TOOLS_DIR: &str = "/root/.cache/booking-test-servers/deploy-tools";

pub fn kubectl() -> Option<PathBuf> {
    find_tool("kubectl", "KUBECTL_BIN", &[])
}

pub fn docker_compose() -> Option<PathBuf> {
    find_tool(
        "docker-compose",
        "DOCKER_COMPOSE_BIN",
        &[
            "/root/.cache/booking-test-servers/deploy-tools/bin/docker-compose",
            "/root/.cache/booking-test-servers/venv/bin/docker-compose",
        ],
    )
}

pub fn hadolint() -> Option<PathBuf> {
    find_tool(
        "hadolint",
        "HADOLINT_BIN",
        &[
            "/root/.cache/booking-test-servers/deploy-tools/bin/hadolint",
            "/root/.cache/booking-test-servers/venv/bin/hadolint",
        ],
    )
}

pub fn kubernetes_validate() -> Option<PathBuf> {
    find_tool(
        "kubernetes-validate",
        "KUBERNETES_VALIDATE_BIN",
        &[
            "/root/.cache/booking-test-servers/deploy-tools-k8s/bin/kubernetes-validate",
            "/root/.cache/booking-test-servers/venv/bin/kubernetes-validate",
        ],
    )
}

/// Runs a command to completion; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Every non-empty document of a YAML stream (`kubectl kustomize` prints one
/// per object). YAML is read into `serde_json::Value`: what the tools print
/// has string keys only, and one value type then serves YAML and JSON.
pub fn parse_yaml_documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .expect("valid YAML")
        .into_iter()
        .filter(|v| !v.is_null())
        .collect()
}

/// One YAML document.
pub fn parse_yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).expect("valid YAML")
}

// ---------------------------------------------------------------------------
// YAML access
// ---------------------------------------------------------------------------

pub fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

/// A scalar as text: YAML numbers and booleans too (compose and k8s both
/// accept `6` and `"6"`).
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub fn seq(v: &Value) -> &[Value] {
    v.as_array().map(|s| s.as_slice()).unwrap_or(&[])
}

pub fn map_entries(v: &Value) -> Vec<(String, &Value)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v)).collect())
        .unwrap_or_default()
}

/// Parses a whole number from a YAML scalar.
pub fn int(v: &Value) -> Option<i64> {
    scalar(v).and_then(|s| s.trim().parse().ok())
}

// ---------------------------------------------------------------------------
// Environment checks (shared by compose and k8s)
// ---------------------------------------------------------------------------

/// Where a variable's value comes from in a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Written in the manifest (or a ConfigMap generated from a file in the repo).
    Literal(String),
    /// Taken whole from a secret store at deploy time (a k8s Secret key, or a
    /// variable of compose's `.env`), so its real value is never in the repository.
    Secret(String),
    /// Written in the manifest around secret parts, e.g. a MongoDB URI whose
    /// password is `$(MONGODB_PASSWORD)`; the secret parts are already replaced
    /// by [`SECRET_PLACEHOLDER`] here.
    WithSecret(String),
}

impl Source {
    /// The value to feed the configuration parser: a secret is replaced by a
    /// placeholder, since the repository holds none.
    pub fn effective(&self) -> String {
        match self {
            Source::Literal(v) | Source::WithSecret(v) => v.clone(),
            Source::Secret(_) => SECRET_PLACEHOLDER.to_string(),
        }
    }

    pub fn literal(&self) -> Option<&str> {
        match self {
            Source::Literal(v) => Some(v),
            _ => None,
        }
    }
}

/// Checks one container's environment against a service binary and returns
/// the configuration the binary would start with (when it would start).
///
/// * every variable of `env_spec` is set explicitly, even those with defaults,
///   so the deployment never silently depends on a default changing in code;
/// * nothing else is set except `helpers` (a misspelt name is caught here);
/// * `JWT_SECRET` comes from a secret, never from the manifest;
/// * the whole environment is accepted by `ServiceConfig::from_lookup`;
/// * port, database, consumer group and topic names equal the code's defaults.
pub fn check_service_env(
    ctx: &str,
    svc: &Service,
    env: &BTreeMap<String, Source>,
    helpers: &[&str],
    errors: &mut Vec<String>,
) -> Option<ServiceConfig> {
    for var in &svc.spec {
        if !env.contains_key(var.name) {
            errors.push(format!(
                "{ctx}: {} is not set ({}; {})",
                var.name,
                var.description,
                match &var.default {
                    None => "required, the binary refuses to start".to_string(),
                    Some(d) => format!("code default {d:?}, set it explicitly"),
                }
            ));
        }
    }
    let known: BTreeSet<&str> = svc
        .spec
        .iter()
        .map(|v| v.name)
        .chain(helpers.iter().copied())
        .collect();
    for name in env.keys() {
        if !known.contains(name.as_str()) {
            errors.push(format!(
                "{ctx}: sets {name}, which the binary does not read (typo? env_spec has {:?})",
                svc.spec.iter().map(|v| v.name).collect::<Vec<_>>()
            ));
        }
    }
    match env.get("JWT_SECRET") {
        Some(Source::Secret(_)) | None => {}
        Some(_) => errors.push(format!(
            "{ctx}: JWT_SECRET is written in the manifest; it must come from a secret"
        )),
    }

    let lookup = |k: &str| env.get(k).map(Source::effective);
    let config = match ServiceConfig::from_lookup(svc.defaults, lookup) {
        Ok(c) => c,
        Err(e) => {
            errors.push(format!(
                "{ctx}: the binary would refuse this environment: {e}"
            ));
            return None;
        }
    };

    let d = svc.defaults;
    let mut expect = |what: &str, got: String, want: String| {
        if got != want {
            errors.push(format!("{ctx}: {what} is {got:?}, the code says {want:?}"));
        }
    };
    expect("PORT", config.port.to_string(), d.port.to_string());
    expect(
        "MONGODB_DATABASE",
        config.mongodb_database.clone(),
        d.database.to_string(),
    );
    expect(
        "KAFKA_GROUP_ID",
        config.kafka.group_id.clone(),
        d.name.to_string(),
    );
    expect(
        "KAFKA_REQUEST_TOPIC",
        config.kafka.request_topic.clone(),
        events::topics::BOOKING_REQUESTS.to_string(),
    );
    expect(
        "KAFKA_RESPONSE_TOPIC",
        config.kafka.response_topic.clone(),
        events::topics::BOOKING_UPDATES.to_string(),
    );
    expect(
        "KAFKA_PROPERTY_TOPIC",
        config.kafka.property_topic.clone(),
        events::topics::PROPERTY_LISTINGS.to_string(),
    );
    Some(config)
}

/// The parts of a `mongodb://` URI that deployments must get right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoUri {
    pub username: Option<String>,
    pub password: Option<String>,
    pub hosts: Vec<String>,
    pub database: Option<String>,
    pub params: BTreeMap<String, String>,
}

pub fn parse_mongo_uri(uri: &str) -> Option<MongoUri> {
    let rest = uri.strip_prefix("mongodb://")?;
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((a, b)) => (Some(a.to_string()), Some(b.to_string())),
            None => (Some(u.to_string()), None),
        },
        None => (None, None),
    };
    let (db, query) = match tail.split_once('?') {
        Some((d, q)) => (d, q),
        None => (tail, ""),
    };
    let params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(MongoUri {
        username,
        password,
        hosts: hosts.split(',').map(str::to_string).collect(),
        database: (!db.is_empty()).then(|| db.to_string()),
        params,
    })
}

/// One `create <topic> [args]` line of the topic script.
#[derive(Debug, Clone)]
pub struct TopicLine {
    pub topic: String,
    pub args: String,
}

/// The topics `k8s/kafka/create-topics.sh` creates. Only top-level
/// `create NAME ...` lines count, which is how the script is written.
pub fn topic_script_lines() -> Vec<TopicLine> {
    read(TOPICS_SCRIPT)
        .lines()
        .filter_map(|l| l.strip_prefix("create "))
        .map(|rest| {
            let rest = rest.trim();
            let (topic, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            TopicLine {
                topic: topic.to_string(),
                args: args.trim().to_string(),
            }
        })
        .collect()
}

/// Keys of the committed Secret template and whether each value is empty.
pub fn secret_template() -> (Value, BTreeMap<String, String>) {
    let doc = parse_yaml(&read(SECRET_TEMPLATE));
    let mut data = BTreeMap::new();
    for field in ["stringData", "data"] {
        for (k, v) in map_entries(&doc[field]) {
            data.insert(k, scalar(v).unwrap_or_default());
        }
    }
    (doc, data)
}

/// `5s`, `1m30s`, `35` (seconds) as compose writes durations.
pub fn parse_duration_secs(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Ok(n) = t.parse::<u64>() {
        return Some(n);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = t.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap());
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += match unit.as_str() {
            "h" => n * 3600.0,
            "m" => n * 60.0,
            "s" => n,
            "ms" => n / 1000.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(total.ceil() as u64)
}

/// Fails the test with every problem found, not just the first.
pub fn assert_no_errors(what: &str, errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{what}: {} problem(s):\n  - {}",
        errors.len(),
        errors.join("\n  - ")
    );
}
