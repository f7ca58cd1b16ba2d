//! Checks `docker-compose.yml` as compose itself resolves it: the output of
//! `docker-compose config` (anchors merged, variables interpolated), which is
//! what `docker-compose up` would run. No Docker engine is needed for that.
//!
//! Secrets: compose takes them from `.env` or the shell. The test gives every
//! variable that the file requires (`${VAR:?...}`) a recognisable value through
//! the child's environment, with an empty `--env-file`, so it behaves the same
//! in a clean clone and on a machine that has a `.env`; a value that shows up
//! in a service's environment is then known to come from outside the file.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;
use service_runtime::config::ExposeSecret as _;

const COMPOSE_FILE: &str = "docker-compose.yml";
/// The services that run once and exit (no health check, restart on failure).
const ONE_SHOT: [&str; 2] = ["kafka-topics", "mongodb-init"];
const REPLICAS_PROFILE: &str = "replicas";
const MONITORING_PROFILE: &str = "monitoring";

/// Variables the compose file cannot do without (`${VAR:?message}` or
/// `${VAR?message}`), and variables it merely allows (`${VAR:-default}`).
fn compose_variables() -> (BTreeSet<String>, BTreeSet<String>) {
    let text = read(COMPOSE_FILE);
    let (mut required, mut optional) = (BTreeSet::new(), BTreeSet::new());
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("${") {
        let start = i + pos;
        i = start + 2;
        if start > 0 && bytes[start - 1] == b'$' {
            continue; // `$${` is a literal `${` for the container's shell
        }
        let rest = &text[start + 2..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let after = &rest[name.len()..];
        if after.starts_with(":?") || after.starts_with('?') || after.starts_with('}') {
            required.insert(name);
        } else {
            optional.insert(name);
        }
    }
    (required, optional)
}

/// The value the test supplies for a required variable: unique per variable,
/// and long enough for JWT_SECRET's 32-byte minimum.
fn sentinel(var: &str) -> String {
    format!("from-env-{var}-0123456789abcdef0123456789abcdef").to_lowercase()
}

fn compose_command(dc: &PathBuf, omit: Option<&str>, profile: bool) -> Command {
    let root = workspace_root();
    let empty_env =
        std::env::temp_dir().join(format!("deploy-checks-empty-{}.env", std::process::id()));
    std::fs::write(&empty_env, "").unwrap();
    let mut cmd = Command::new(dc);
    cmd.current_dir(&root).env_clear();
    for keep in ["PATH", "HOME", "LANG", "LC_ALL"] {
        if let Some(v) = std::env::var_os(keep) {
            cmd.env(keep, v);
        }
    }
    let (required, _) = compose_variables();
    for var in required.iter().filter(|v| Some(v.as_str()) != omit) {
        cmd.env(var, sentinel(var));
    }
    cmd.arg("--env-file")
        .arg(&empty_env)
        .arg("-f")
        .arg(root.join(COMPOSE_FILE));
    if profile {
        for p in [REPLICAS_PROFILE, MONITORING_PROFILE] {
            cmd.arg("--profile").arg(p);
        }
    }
    cmd.arg("config");
    cmd
}

/// `docker-compose config` output; with every profile active so that
/// compose v2, which hides inactive profiles, lists every service too.
fn config() -> Option<&'static Value> {
    static CONFIG: OnceLock<Option<Value>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let dc = docker_compose()?;
            let out = run(&mut compose_command(&dc, None, true));
            Some(parse_yaml(&out))
        })
        .as_ref()
}

macro_rules! config_or_skip {
    () => {
        match config() {
            Some(c) => c,
            None => return,
        }
    };
}

fn service<'a>(cfg: &'a Value, name: &str) -> &'a Value {
    let s = &cfg["services"][name];
    assert!(s.is_object(), "docker-compose.yml has no service {name}");
    s
}

/// A service's environment, each value classified by where it came from.
fn environment(svc: &Value) -> BTreeMap<String, Source> {
    let (required, _) = compose_variables();
    let sentinels: Vec<String> = required.iter().map(|v| sentinel(v)).collect();
    let raw: Vec<(String, String)> = match &svc["environment"] {
        Value::Object(_) => map_entries(&svc["environment"])
            .into_iter()
            .map(|(k, v)| (k, scalar(v).unwrap_or_default()))
            .collect(),
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|(k, v)| {
            let src = if sentinels.contains(&v) {
                Source::Secret(v)
            } else if sentinels.iter().any(|s| v.contains(s.as_str())) {
                let mut replaced = v.clone();
                for s in &sentinels {
                    replaced = replaced.replace(s.as_str(), SECRET_PLACEHOLDER);
                }
                Source::WithSecret(replaced)
            } else {
                Source::Literal(v)
            };
            (k, src)
        })
        .collect()
}

fn literal_env(svc: &Value) -> BTreeMap<String, String> {
    environment(svc)
        .into_iter()
        .map(|(k, v)| (k, v.effective()))
        .collect()
}

/// Container ports a service publishes (short and long syntax).
fn published_container_ports(svc: &Value) -> Vec<i64> {
    seq(&svc["ports"])
        .iter()
        .filter_map(|p| match p {
            Value::Object(_) => int(&p["target"]),
            _ => scalar(p).and_then(|s| {
                let s = s.split('/').next().unwrap_or("");
                s.rsplit(':').next().and_then(|n| n.parse().ok())
            }),
        })
        .collect()
}

/// (type, source, target) of each volume (short and long syntax).
fn mounts(svc: &Value) -> Vec<(String, String, String)> {
    seq(&svc["volumes"])
        .iter()
        .filter_map(|v| match v {
            Value::Object(_) => Some((
                v["type"].as_str().unwrap_or("volume").to_string(),
                v["source"].as_str().unwrap_or("").to_string(),
                v["target"].as_str().unwrap_or("").to_string(),
            )),
            _ => {
                let s = scalar(v)?;
                let parts: Vec<&str> = s.split(':').collect();
                let (src, dst) = (parts.first()?.to_string(), parts.get(1)?.to_string());
                let kind = if src.starts_with('/') || src.starts_with('.') {
                    "bind"
                } else {
                    "volume"
                };
                Some((kind.to_string(), src, dst))
            }
        })
        .collect()
}

fn depends_on(svc: &Value) -> BTreeMap<String, String> {
    match &svc["depends_on"] {
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .map(|n| (n, "service_started".to_string()))
            .collect(),
        v => map_entries(v)
            .into_iter()
            .map(|(k, d)| {
                (
                    k,
                    d["condition"]
                        .as_str()
                        .unwrap_or("service_started")
                        .to_string(),
                )
            })
            .collect(),
    }
}

fn command_line(svc: &Value) -> String {
    let part = |v: &Value| match v {
        Value::Array(items) => items
            .iter()
            .filter_map(scalar)
            .collect::<Vec<_>>()
            .join(" "),
        other => scalar(other).unwrap_or_default(),
    };
    format!("{} {}", part(&svc["entrypoint"]), part(&svc["command"]))
}

// ---------------------------------------------------------------------------

/// The file is valid for compose, and compose refuses to run when a secret
/// is missing instead of starting with an empty one.
#[test]
fn compose_file_is_valid_and_refuses_missing_secrets() {
    let Some(dc) = docker_compose() else { return };
    run(&mut compose_command(&dc, None, false));
    let (required, _) = compose_variables();
    assert!(
        required.contains("JWT_SECRET"),
        "JWT_SECRET must be required from .env"
    );
    for var in &required {
        let out = compose_command(&dc, Some(var), false).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(var.as_str()),
            "docker-compose config without {var} should fail naming it; status {}, stderr: {stderr}",
            out.status
        );
    }
}

/// ".env.example as the template": every variable compose requires has a
/// line in `.env.example`, so `cp .env.example .env` and filling it in is
/// enough to start the system.
#[test]
fn env_example_lists_every_variable_compose_requires() {
    let path = workspace_root().join(".env.example");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(".env.example is missing; docker-compose.yml reads its secrets from .env")
    });
    let listed: BTreeSet<String> = text
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("export ")
                .trim_start_matches('#')
                .trim()
        })
        .filter_map(|l| l.split_once('=').map(|(k, _)| k.trim().to_string()))
        .collect();
    let (required, _) = compose_variables();
    let missing: Vec<&String> = required.iter().filter(|v| !listed.contains(*v)).collect();
    assert!(
        missing.is_empty(),
        ".env.example lacks {missing:?}, which docker-compose.yml requires"
    );
}

/// No secret value is written in the file: every secret-looking variable of
/// every service is an interpolation.
#[test]
fn no_secret_value_is_committed() {
    let text = read(COMPOSE_FILE);
    let mut errors = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        let Some((key, value)) = t.split_once(':') else {
            continue;
        };
        let key = key.trim();
        let sensitive = key == "JWT_SECRET" || key.ends_with("PASSWORD") || key.ends_with("_KEY");
        if sensitive && !value.trim().starts_with("${") {
            errors.push(format!(
                "{COMPOSE_FILE}:{}: {key} is not taken from the environment",
                n + 1
            ));
        }
    }
    assert_no_errors("committed secrets", &errors);
}

/// "Every variable the binaries read is set" for each service and replica,
/// pointing at the Kafka and MongoDB that this file actually runs.
#[test]
fn services_set_every_variable_the_binaries_read() {
    let cfg = config_or_skip!();
    let topics = literal_env(service(cfg, "kafka-topics"));
    let mongo = literal_env(service(cfg, "mongodb-init"));
    let kafka = literal_env(service(cfg, "kafka"));
    let mut errors = Vec::new();
    for svc in services() {
        for instance in [svc.name().to_string(), format!("{}-2", svc.name())] {
            let ctx = format!("compose service {instance}");
            let env = environment(service(cfg, &instance));
            let Some(conf) = check_service_env(&ctx, &svc, &env, &[], &mut errors) else {
                continue;
            };
            for b in conf.kafka.brokers.split(',') {
                let advertised = kafka
                    .get("KAFKA_ADVERTISED_LISTENERS")
                    .cloned()
                    .unwrap_or_default();
                if !advertised.contains(&format!("//{b}")) {
                    errors.push(format!(
                        "{ctx}: KAFKA_BROKERS has {b}; kafka advertises {advertised}"
                    ));
                }
            }
            if topics.get("PARTITIONS") != Some(&conf.kafka.topic_partitions.to_string()) {
                errors.push(format!(
                    "{ctx}: KAFKA_TOPIC_PARTITIONS={} but kafka-topics creates {:?}",
                    conf.kafka.topic_partitions,
                    topics.get("PARTITIONS")
                ));
            }
            if topics.get("REPLICATION_FACTOR")
                != Some(&conf.kafka.topic_replication_factor.to_string())
            {
                errors.push(format!(
                    "{ctx}: KAFKA_TOPIC_REPLICATION_FACTOR={} but kafka-topics uses {:?}",
                    conf.kafka.topic_replication_factor,
                    topics.get("REPLICATION_FACTOR")
                ));
            }
            if conf.kafka.topic_replication_factor != 1 {
                errors.push(format!(
                    "{ctx}: one broker cannot hold {} replicas",
                    conf.kafka.topic_replication_factor
                ));
            }
            if !matches!(
                env.get("MONGODB_URI"),
                Some(Source::WithSecret(_) | Source::Secret(_))
            ) {
                errors.push(format!("{ctx}: MONGODB_URI has no password from .env"));
            }
            let Some(uri) = parse_mongo_uri(conf.mongodb_uri.expose_secret()) else {
                errors.push(format!("{ctx}: MONGODB_URI is not mongodb://"));
                continue;
            };
            if uri.params.get("replicaSet") != mongo.get("RS_NAME") {
                errors.push(format!(
                    "{ctx}: MONGODB_URI replicaSet {:?}, mongodb-init initiates {:?}",
                    uri.params.get("replicaSet"),
                    mongo.get("RS_NAME")
                ));
            }
            if Some(&uri.hosts.join(",")) != mongo.get("RS_MEMBERS") {
                errors.push(format!(
                    "{ctx}: MONGODB_URI hosts {:?} vs RS_MEMBERS {:?}",
                    uri.hosts,
                    mongo.get("RS_MEMBERS")
                ));
            }
            let prefix = mongo
                .iter()
                .find(|(k, v)| k.ends_with("_MONGODB_DATABASE") && **v == conf.mongodb_database)
                .map(|(k, _)| k.trim_end_matches("_MONGODB_DATABASE").to_string());
            match prefix {
                None => errors.push(format!(
                    "{ctx}: mongodb-init creates no user for {}",
                    conf.mongodb_database
                )),
                Some(p) => {
                    if uri.username.as_ref() != mongo.get(&format!("{p}_MONGODB_USERNAME")) {
                        errors.push(format!(
                            "{ctx}: MONGODB_URI user {:?} is not the one mongodb-init creates",
                            uri.username
                        ));
                    }
                    // The same .env variable sets the password in both places.
                    let job_pw = environment(service(cfg, "mongodb-init"))
                        .get(&format!("{p}_MONGODB_PASSWORD"))
                        .cloned();
                    if !matches!(job_pw, Some(Source::Secret(_)))
                        || uri.password.as_deref() != Some(SECRET_PLACEHOLDER)
                    {
                        errors.push(format!("{ctx}: MONGODB_URI password and mongodb-init's {p}_MONGODB_PASSWORD must both come from .env"));
                    }
                }
            }
        }
    }
    assert_no_errors("compose environment", &errors);
}

/// "traveler-service on 5005, owner-service on 5002": the published port,
/// the health check and the image build target agree with the code.
#[test]
fn ports_health_checks_and_images_agree_with_the_code() {
    let cfg = config_or_skip!();
    let dockerfile = read("Dockerfile");
    let mut errors = Vec::new();
    for svc in services() {
        let name = svc.name();
        let port = svc.defaults.port as i64;
        let s = service(cfg, name);
        if published_container_ports(s) != vec![port] {
            errors.push(format!(
                "{name}: publishes {:?}, the code listens on {port}",
                published_container_ports(s)
            ));
        }
        let test = seq(&s["healthcheck"]["test"])
            .iter()
            .filter_map(scalar)
            .collect::<Vec<_>>()
            .join(" ");
        if !test.contains(&format!("127.0.0.1:{port}/health")) {
            errors.push(format!(
                "{name}: health check {test:?} does not call /health* on port {port}"
            ));
        }
        let target = s["build"]["target"].as_str().unwrap_or("");
        if target != name || !dockerfile.contains(&format!(" AS {name}\n")) {
            errors.push(format!(
                "{name}: build target {target:?} is not the Dockerfile stage {name}"
            ));
        }
    }
    assert_no_errors("compose ports", &errors);
}

/// "Health checks on every service, depends_on with condition, restart
/// policies": long-running services are health-checked and restarted; the
/// one-shot jobs restart only on failure and gate the services they prepare.
#[test]
fn every_service_is_health_checked_restarted_and_ordered() {
    let cfg = config_or_skip!();
    let mut errors = Vec::new();
    for (name, s) in map_entries(&cfg["services"]) {
        let restart = s["restart"].as_str().unwrap_or("no");
        if ONE_SHOT.contains(&name.as_str()) {
            if !restart.starts_with("on-failure") {
                errors.push(format!(
                    "{name}: a one-shot job should restart on-failure, has {restart:?}"
                ));
            }
            for (dep, cond) in depends_on(s) {
                if cond != "service_healthy" {
                    errors.push(format!(
                        "{name}: depends on {dep} with {cond}, expected service_healthy"
                    ));
                }
            }
            if depends_on(s).is_empty() {
                errors.push(format!("{name}: starts without waiting for anything"));
            }
        } else {
            if s["healthcheck"]["test"].is_null()
                || s["healthcheck"]["disable"].as_bool() == Some(true)
            {
                errors.push(format!("{name}: no health check"));
            }
            if !matches!(restart, "always" | "unless-stopped") {
                errors.push(format!(
                    "{name}: restart {restart:?}, expected unless-stopped or always"
                ));
            }
        }
    }
    for svc in services() {
        for instance in [svc.name().to_string(), format!("{}-2", svc.name())] {
            let s = service(cfg, &instance);
            let deps = depends_on(s);
            for (dep, want) in [
                ("kafka", "service_healthy"),
                ("mongodb", "service_healthy"),
                ("kafka-topics", "service_completed_successfully"),
                ("mongodb-init", "service_completed_successfully"),
            ] {
                if deps.get(dep).map(String::as_str) != Some(want) {
                    errors.push(format!(
                        "{instance}: depends_on {dep} should be {want}, is {:?}",
                        deps.get(dep)
                    ));
                }
            }
            // Compose kills after stop_grace_period (default 10 s): the
            // binary needs its whole shutdown budget (common::shutdown_budget_secs).
            let shutdown: u64 = literal_env(s)
                .get("SHUTDOWN_TIMEOUT_SECS")
                .and_then(|v| v.parse().ok())
                .unwrap_or(20);
            let grace = s["stop_grace_period"]
                .as_str()
                .and_then(parse_duration_secs)
                .unwrap_or(10);
            if grace < shutdown_budget_secs(shutdown) {
                errors.push(format!(
                    "{instance}: stop_grace_period {grace}s < shutdown budget {}s (SHUTDOWN_TIMEOUT_SECS {shutdown})",
                    shutdown_budget_secs(shutdown)
                ));
            }
        }
    }
    assert_no_errors("compose lifecycle", &errors);
}

/// Kafka in KRaft mode from the official image, MongoDB as a replica set
/// (owner-service uses transactions), both on named volumes; the one-shot
/// jobs run the scripts shared with k8s.
#[test]
fn infrastructure_is_kraft_kafka_and_a_mongodb_replica_set_on_named_volumes() {
    let cfg = config_or_skip!();
    let mut errors = Vec::new();
    let named: BTreeSet<String> = map_entries(&cfg["volumes"])
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let volume_at = |svc: &str, path: &str| {
        mounts(service(cfg, svc))
            .into_iter()
            .any(|(kind, src, dst)| kind == "volume" && named.contains(&src) && dst == path)
    };

    let kafka = service(cfg, "kafka");
    let env = literal_env(kafka);
    if !kafka["image"]
        .as_str()
        .unwrap_or("")
        .starts_with("apache/kafka:")
    {
        errors.push(format!(
            "kafka: image {:?} is not apache/kafka",
            kafka["image"]
        ));
    }
    if !env
        .get("KAFKA_PROCESS_ROLES")
        .is_some_and(|r| r.contains("broker") && r.contains("controller"))
    {
        errors.push("kafka: not a KRaft broker+controller".into());
    }
    if map_entries(&cfg["services"]).iter().any(|(n, s)| {
        n.contains("zookeeper") || s["image"].as_str().unwrap_or("").contains("zookeeper")
    }) {
        errors.push("a ZooKeeper service is present".into());
    }
    let log_dirs = env.get("KAFKA_LOG_DIRS").cloned().unwrap_or_default();
    if log_dirs.is_empty() || !volume_at("kafka", &log_dirs) {
        errors.push(format!(
            "kafka: KAFKA_LOG_DIRS {log_dirs:?} is not a named volume"
        ));
    }

    let mongodb = service(cfg, "mongodb");
    let rs = literal_env(service(cfg, "mongodb-init"))
        .get("RS_NAME")
        .cloned()
        .unwrap_or_default();
    if !mongodb["image"]
        .as_str()
        .unwrap_or("")
        .starts_with("mongo:")
    {
        errors.push(format!(
            "mongodb: image {:?} is not the official mongo",
            mongodb["image"]
        ));
    }
    if rs.is_empty() || !command_line(mongodb).contains(&format!("--replSet {rs}")) {
        errors.push(format!("mongodb: not started with --replSet {rs:?}"));
    }
    if !volume_at("mongodb", "/data/db") {
        errors.push("mongodb: /data/db is not a named volume".into());
    }

    for (job, script) in [
        ("kafka-topics", TOPICS_SCRIPT),
        ("mongodb-init", MONGO_INIT_SCRIPT),
    ] {
        let s = service(cfg, job);
        let host = workspace_root().join(script);
        let mounted = mounts(s)
            .into_iter()
            .find(|(_, src, _)| std::path::Path::new(src) == host);
        match mounted {
            Some((_, _, dst)) if command_line(s).contains(&dst) => {}
            _ => errors.push(format!("{job}: does not mount and run {script}")),
        }
    }
    assert_no_errors("compose infrastructure", &errors);
}

/// "A profile that runs two replicas of each service against the same
/// broker, to show consumer groups sharing partitions."
#[test]
fn replicas_profile_runs_two_of_each_service_in_one_consumer_group() {
    let cfg = config_or_skip!();
    let partitions: i64 = literal_env(service(cfg, "kafka-topics"))
        .get("PARTITIONS")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let mut errors = Vec::new();
    for svc in services() {
        let members: Vec<(String, &Value)> = map_entries(&cfg["services"])
            .into_iter()
            .filter(|(_, s)| {
                literal_env(s).get("KAFKA_GROUP_ID").map(String::as_str) == Some(svc.name())
            })
            .collect();
        if members.len() != 2 {
            errors.push(format!(
                "{}: {} compose services in its consumer group, expected 2",
                svc.name(),
                members.len()
            ));
            continue;
        }
        let env: Vec<BTreeMap<String, String>> =
            members.iter().map(|(_, s)| literal_env(s)).collect();
        if env[0].get("KAFKA_BROKERS") != env[1].get("KAFKA_BROKERS") {
            errors.push(format!("{}: replicas use different brokers", svc.name()));
        }
        for (name, s) in &members {
            let profiles: Vec<String> = seq(&s["profiles"]).iter().filter_map(scalar).collect();
            let is_extra = name != svc.name();
            if is_extra && profiles != [REPLICAS_PROFILE] {
                errors.push(format!("{name}: should only run with --profile {REPLICAS_PROFILE}, profiles {profiles:?}"));
            }
            if !is_extra && !profiles.is_empty() {
                errors.push(format!("{name}: must run without a profile"));
            }
            if is_extra && !published_container_ports(s).is_empty() {
                errors.push(format!(
                    "{name}: a replica must not publish the host port the first one uses"
                ));
            }
            if s["build"]["target"].as_str() != Some(svc.name()) {
                errors.push(format!("{name}: not built from the {} stage", svc.name()));
            }
        }
    }
    if partitions < 2 {
        errors.push(format!(
            "kafka-topics creates {partitions} partition(s); two consumers need at least 2"
        ));
    }
    assert_no_errors("replicas profile", &errors);
}

/// "A `monitoring` profile that adds Prometheus and Grafana with that
/// configuration and dashboard": both run only with the profile, mount the
/// files of k8s/monitoring/ that the deploy checks validate, and Prometheus
/// scrapes each service where compose runs it.
#[test]
fn monitoring_profile_runs_prometheus_and_grafana_with_the_repository_configuration() {
    let cfg = config_or_skip!();
    let root = workspace_root();
    let mut errors = Vec::new();
    let mounted = |svc: &str, file: &str| -> Option<String> {
        let host = root.join(file);
        mounts(service(cfg, svc))
            .into_iter()
            .find(|(_, src, _)| std::path::Path::new(src) == host)
            .map(|(_, _, dst)| dst)
    };
    for name in ["prometheus", "grafana"] {
        let profiles: Vec<String> = seq(&service(cfg, name)["profiles"])
            .iter()
            .filter_map(scalar)
            .collect();
        if profiles != [MONITORING_PROFILE] {
            errors.push(format!(
                "{name}: should run only with --profile {MONITORING_PROFILE}, has {profiles:?}"
            ));
        }
    }
    let prometheus = service(cfg, "prometheus");
    let config_path = mounted("prometheus", "k8s/monitoring/prometheus-compose.yml");
    let rules_path = mounted("prometheus", "k8s/monitoring/alert-rules.yml");
    match (&config_path, &rules_path) {
        (Some(config), Some(rules)) => {
            if !command_line(prometheus).contains(&format!("--config.file={config}")) {
                errors.push(format!("prometheus: not started with {config}"));
            }
            // rule_files: alert-rules.yml is relative to the config file.
            let dir = |p: &str| std::path::Path::new(p).parent().map(|d| d.to_path_buf());
            if dir(config) != dir(rules) {
                errors.push("prometheus: alert-rules.yml is not beside its configuration".into());
            }
        }
        _ => errors
            .push("prometheus: does not mount prometheus-compose.yml and alert-rules.yml".into()),
    }
    let scrape = parse_yaml(&read("k8s/monitoring/prometheus-compose.yml"));
    for svc in services() {
        let target = format!("{}:{}", svc.name(), svc.defaults.port);
        let job = seq(&scrape["scrape_configs"])
            .iter()
            .find(|j| j["job_name"].as_str() == Some(svc.name()));
        let ok = job.is_some_and(|j| {
            seq(&j["static_configs"]).iter().any(|c| {
                seq(&c["targets"])
                    .iter()
                    .any(|t| t.as_str() == Some(target.as_str()))
                    && c["labels"]["service"].as_str() == Some(svc.name())
            })
        });
        if !ok {
            errors.push(format!(
                "prometheus-compose.yml: no job scraping {target} with service={}",
                svc.name()
            ));
        }
    }
    for (file, want) in [
        (
            "k8s/monitoring/grafana/datasource.yml",
            "/etc/grafana/provisioning/datasources/",
        ),
        (
            "k8s/monitoring/grafana/dashboards.yml",
            "/etc/grafana/provisioning/dashboards/",
        ),
        (
            "k8s/monitoring/grafana-dashboard.json",
            "/var/lib/grafana/dashboards/",
        ),
    ] {
        match mounted("grafana", file) {
            Some(dst) if dst.starts_with(want) => {}
            other => errors.push(format!(
                "grafana: {file} mounted at {other:?}, expected under {want}"
            )),
        }
    }
    let datasource = parse_yaml(&read("k8s/monitoring/grafana/datasource.yml"));
    let url = datasource["datasources"][0]["url"].as_str().unwrap_or("");
    let port = published_container_ports(prometheus)
        .first()
        .copied()
        .unwrap_or(0);
    if url != format!("http://prometheus:{port}") {
        errors.push(format!(
            "grafana datasource {url:?} is not the prometheus service on {port}"
        ));
    }
    assert_no_errors("monitoring profile", &errors);
}
