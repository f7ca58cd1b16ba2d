//! Checks `k8s/` as Kubernetes would see it: the output of
//! `kubectl kustomize k8s/`, which is exactly what `kubectl apply -k k8s/`
//! sends to the cluster (generated ConfigMap names, namespace, image names).
//!
//! Nothing here talks to a cluster; each check states which part of the
//! issue's requirements it guards and why the rule matters in production.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use serde_json::Value;
use service_runtime::config::ExposeSecret as _;

/// The rendered manifests, produced once per test binary.
struct Rendered {
    text: String,
    docs: Vec<Value>,
}

fn rendered() -> Option<&'static Rendered> {
    static RENDERED: OnceLock<Option<Rendered>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            let kubectl = kubectl()?;
            let out = run(Command::new(kubectl)
                .arg("kustomize")
                .arg(workspace_root().join("k8s")));
            Some(Rendered {
                docs: parse_yaml_documents(&out),
                text: out,
            })
        })
        .as_ref()
}

/// Returns early (SKIPPED, or a failure under CI) when kubectl is missing.
macro_rules! rendered_or_skip {
    () => {
        match rendered() {
            Some(r) => r,
            None => return,
        }
    };
}

impl Rendered {
    fn all(&self, kind: &str) -> std::vec::IntoIter<&Value> {
        let docs: Vec<&Value> = self
            .docs
            .iter()
            .filter(|d| d["kind"].as_str() == Some(kind))
            .collect();
        docs.into_iter()
    }

    fn get(&self, kind: &str, name: &str) -> Option<&Value> {
        self.all(kind)
            .find(|d| d["metadata"]["name"].as_str() == Some(name))
    }

    fn must(&self, kind: &str, name: &str) -> &Value {
        self.get(kind, name)
            .unwrap_or_else(|| panic!("k8s/ renders no {kind} named {name}"))
    }

    /// Deployments, StatefulSets and Jobs with their pod spec.
    fn workloads(&self) -> Vec<(String, &Value)> {
        self.docs
            .iter()
            .filter(|d| {
                matches!(
                    d["kind"].as_str(),
                    Some("Deployment" | "StatefulSet" | "Job")
                )
            })
            .map(|d| {
                (
                    format!(
                        "{} {}",
                        d["kind"].as_str().unwrap(),
                        d["metadata"]["name"].as_str().unwrap()
                    ),
                    &d["spec"]["template"]["spec"],
                )
            })
            .collect()
    }

    fn config_map(&self, name: &str) -> Option<BTreeMap<String, String>> {
        let cm = self.get("ConfigMap", name)?;
        Some(
            map_entries(&cm["data"])
                .into_iter()
                .map(|(k, v)| (k, scalar(v).unwrap_or_default()))
                .collect(),
        )
    }
}

fn container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    seq(&pod_spec["containers"])
        .iter()
        .find(|c| c["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container named {name}"))
}

fn deployment_pod<'a>(r: &'a Rendered, name: &str) -> &'a Value {
    &r.must("Deployment", name)["spec"]["template"]["spec"]
}

/// Expands `$(VAR)` the way the kubelet does: only variables defined before
/// (envFrom, then earlier `env` entries); `$$(` escapes.
fn expand(value: &str, env: &BTreeMap<String, Source>) -> (String, bool) {
    let mut out = String::new();
    let mut used_secret = false;
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$$") {
            out.push('$');
            rest = tail;
        } else if let (true, Some(end)) = (after.starts_with("$("), after.find(')')) {
            let name = &after[2..end];
            match env.get(name) {
                Some(src) => {
                    used_secret |= !matches!(src, Source::Literal(_));
                    out.push_str(&src.effective());
                }
                None => out.push_str(&after[..=end]),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    (out, used_secret)
}

/// The environment a container gets: `envFrom` (ConfigMaps and Secrets) plus
/// `env`, with `$(VAR)` references expanded. Secret references are checked
/// against the committed template, since the real Secret is not in the repo.
fn container_env(
    r: &Rendered,
    ctx: &str,
    c: &Value,
    errors: &mut Vec<String>,
) -> BTreeMap<String, Source> {
    let (_, template) = secret_template();
    let mut env = BTreeMap::new();
    for from in seq(&c["envFrom"]) {
        let prefix = from["prefix"].as_str().unwrap_or("");
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            match r.config_map(name) {
                Some(data) => {
                    for (k, v) in data {
                        env.insert(format!("{prefix}{k}"), Source::Literal(v));
                    }
                }
                None => errors.push(format!("{ctx}: envFrom ConfigMap {name} is not rendered")),
            }
        }
        if let Some(name) = from["secretRef"]["name"].as_str() {
            if name != SECRET_NAME {
                errors.push(format!(
                    "{ctx}: envFrom Secret {name}; only {SECRET_NAME} exists"
                ));
            }
            for k in template.keys() {
                env.insert(format!("{prefix}{k}"), Source::Secret(k.clone()));
            }
        }
    }
    for e in seq(&c["env"]) {
        let name = e["name"].as_str().unwrap_or_default().to_string();
        let source = if let Some(v) = scalar(&e["value"]) {
            let (expanded, used_secret) = expand(&v, &env);
            if used_secret {
                Source::WithSecret(expanded)
            } else {
                Source::Literal(expanded)
            }
        } else if let Some(sk) = e["valueFrom"]["secretKeyRef"]
            .as_object()
            .map(|_| &e["valueFrom"]["secretKeyRef"])
        {
            let (secret, key) = (
                sk["name"].as_str().unwrap_or(""),
                sk["key"].as_str().unwrap_or(""),
            );
            if secret != SECRET_NAME {
                errors.push(format!(
                    "{ctx}: {name} reads Secret {secret}; only {SECRET_NAME} exists"
                ));
            }
            if !template.contains_key(key) {
                errors.push(format!(
                    "{ctx}: {name} reads key {key} of {SECRET_NAME}, which {SECRET_TEMPLATE} does not have"
                ));
            }
            Source::Secret(key.to_string())
        } else if let Some(cm) = e["valueFrom"]["configMapKeyRef"]
            .as_object()
            .map(|_| &e["valueFrom"]["configMapKeyRef"])
        {
            let (map, key) = (
                cm["name"].as_str().unwrap_or(""),
                cm["key"].as_str().unwrap_or(""),
            );
            match r.config_map(map).and_then(|d| d.get(key).cloned()) {
                Some(v) => Source::Literal(v),
                None => {
                    errors.push(format!(
                        "{ctx}: {name} reads {map}/{key}, which is not rendered"
                    ));
                    continue;
                }
            }
        } else if e["valueFrom"]["fieldRef"].is_object() {
            Source::Literal(format!(
                "<fieldRef {}>",
                e["valueFrom"]["fieldRef"]["fieldPath"]
                    .as_str()
                    .unwrap_or("")
            ))
        } else {
            errors.push(format!("{ctx}: {name} has no value this check understands"));
            continue;
        };
        env.insert(name, source);
    }
    env
}

fn literal_env(r: &Rendered, ctx: &str, c: &Value) -> BTreeMap<String, String> {
    let mut errors = Vec::new();
    let env = container_env(r, ctx, c, &mut errors);
    assert_no_errors(ctx, &errors);
    env.into_iter().map(|(k, v)| (k, v.effective())).collect()
}

/// Resolves a probe's or Service's port (a number or a container port name).
fn resolve_port(c: &Value, port: &Value) -> Option<i64> {
    if let Some(n) = port.as_i64() {
        return Some(n);
    }
    let name = port.as_str()?;
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    seq(&c["ports"])
        .iter()
        .find(|p| p["name"].as_str() == Some(name))
        .and_then(|p| p["containerPort"].as_i64())
}

fn labels(v: &Value) -> BTreeMap<String, String> {
    map_entries(v)
        .into_iter()
        .map(|(k, v)| (k, scalar(v).unwrap_or_default()))
        .collect()
}

fn selects(selector: &BTreeMap<String, String>, pod_labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
}

/// The topic Job's settings: what every service's topic settings must match.
struct TopicJob {
    partitions: i64,
    replication_factor: i64,
    min_insync: i64,
    bootstrap: String,
}

fn topic_job(r: &Rendered) -> TopicJob {
    let pod = &r.must("Job", "kafka-create-topics")["spec"]["template"]["spec"];
    let c = &seq(&pod["containers"])[0];
    let env = literal_env(r, "Job kafka-create-topics", c);
    let num = |k: &str| -> i64 {
        env.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("Job kafka-create-topics: {k} missing or not a number"))
    };
    TopicJob {
        partitions: num("PARTITIONS"),
        replication_factor: num("REPLICATION_FACTOR"),
        min_insync: num("MIN_INSYNC_REPLICAS"),
        bootstrap: env.get("BOOTSTRAP_SERVERS").cloned().unwrap_or_default(),
    }
}

/// The environment of the mongodb-init Job (replica set name, members, users).
fn mongo_init_env(r: &Rendered) -> BTreeMap<String, String> {
    let pod = &r.must("Job", "mongodb-init")["spec"]["template"]["spec"];
    literal_env(r, "Job mongodb-init", &seq(&pod["containers"])[0])
}

/// `host-N.service:port` names of a StatefulSet's pods behind its headless
/// Service, as clients must spell them.
fn stateful_hosts(r: &Rendered, sts_name: &str, port_name: &str) -> Vec<String> {
    let sts = r.must("StatefulSet", sts_name);
    let replicas = sts["spec"]["replicas"].as_i64().unwrap_or(1);
    let svc = sts["spec"]["serviceName"].as_str().expect("serviceName");
    let c = &seq(&sts["spec"]["template"]["spec"]["containers"])[0];
    let port = resolve_port(c, &Value::from(port_name)).expect("named port");
    (0..replicas)
        .map(|i| format!("{sts_name}-{i}.{svc}:{port}"))
        .collect()
}

// ---------------------------------------------------------------------------

/// "A kustomization.yaml that applies everything into one namespace."
#[test]
fn everything_renders_into_one_namespace() {
    let r = rendered_or_skip!();
    let ns = r.must("Namespace", NAMESPACE);
    assert_eq!(ns["metadata"]["name"].as_str(), Some(NAMESPACE));
    let mut errors = Vec::new();
    for d in &r.docs {
        let kind = d["kind"].as_str().unwrap_or("?");
        let name = d["metadata"]["name"].as_str().unwrap_or("?");
        if kind == "Namespace" {
            if name != NAMESPACE {
                errors.push(format!("second Namespace {name}"));
            }
            continue;
        }
        if d["metadata"]["namespace"].as_str() != Some(NAMESPACE) {
            errors.push(format!("{kind} {name} is not in namespace {NAMESPACE}"));
        }
    }
    assert_no_errors("namespace", &errors);
}

/// Every manifest file under k8s/ is applied: a file someone adds but forgets
/// to list in kustomization.yaml would otherwise silently never deploy.
#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = parse_yaml(&read("k8s/kustomization.yaml"));
    let listed: BTreeSet<String> = seq(&kustomization["resources"])
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let root = workspace_root().join("k8s");
    let mut files = Vec::new();
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    walk(&root, &root, &mut files);
    let mut errors = Vec::new();
    for f in files {
        // monitoring/ holds Prometheus and Grafana configuration (checked
        // by monitoring.rs), not manifests to apply.
        let exempt = f == "kustomization.yaml"
            || f == "secrets/booking-secrets.template.yaml"
            || f.starts_with("monitoring/");
        if !exempt && !listed.contains(&f) {
            errors.push(format!(
                "k8s/{f} is not listed in k8s/kustomization.yaml resources"
            ));
        }
    }
    for f in &listed {
        if !root.join(f).exists() {
            errors.push(format!(
                "k8s/kustomization.yaml lists {f}, which does not exist"
            ));
        }
    }
    assert_no_errors("kustomization", &errors);
}

/// "Every variable the binaries read is set": each Deployment's environment
/// (ConfigMap + Secret + env) covers `env_spec`, passes the binary's own
/// parser, and points at the Kafka brokers, topics and MongoDB replica set
/// that the rest of k8s/ actually creates.
#[test]
fn deployments_set_every_variable_the_binaries_read() {
    let r = rendered_or_skip!();
    let job = topic_job(r);
    let mongo = mongo_init_env(r);
    let brokers: BTreeSet<String> = stateful_hosts(r, "kafka", "client").into_iter().collect();
    let members = stateful_hosts(r, "mongodb", "mongodb");
    let mut errors = Vec::new();
    for svc in services() {
        let ctx = format!("Deployment {}", svc.name());
        let c = container(deployment_pod(r, svc.name()), svc.name());
        let env = container_env(r, &ctx, c, &mut errors);
        // MONGODB_PASSWORD only exists to build MONGODB_URI with $(...).
        let Some(cfg) = check_service_env(&ctx, &svc, &env, &["MONGODB_PASSWORD"], &mut errors)
        else {
            continue;
        };

        // Kafka: every bootstrap broker is a real broker pod and port.
        for b in cfg.kafka.brokers.split(',') {
            if !brokers.contains(b.trim()) {
                errors.push(format!(
                    "{ctx}: KAFKA_BROKERS has {b}, not one of the brokers {brokers:?}"
                ));
            }
        }
        if cfg.kafka.topic_partitions as i64 != job.partitions {
            errors.push(format!(
                "{ctx}: KAFKA_TOPIC_PARTITIONS={} but the topic Job creates {} partitions",
                cfg.kafka.topic_partitions, job.partitions
            ));
        }
        if cfg.kafka.topic_replication_factor as i64 != job.replication_factor {
            errors.push(format!(
                "{ctx}: KAFKA_TOPIC_REPLICATION_FACTOR={} but the topic Job uses {}",
                cfg.kafka.topic_replication_factor, job.replication_factor
            ));
        }

        // MongoDB: the URI names the replica set and members that exist, the
        // user that mongodb-init creates for this database, and a password
        // that comes from the Secret.
        if !matches!(
            env.get("MONGODB_URI"),
            Some(Source::Secret(_) | Source::WithSecret(_))
        ) {
            errors.push(format!(
                "{ctx}: MONGODB_URI carries no credentials from {SECRET_NAME}"
            ));
        }
        let Some(uri) = parse_mongo_uri(cfg.mongodb_uri.expose_secret()) else {
            errors.push(format!("{ctx}: MONGODB_URI is not a mongodb:// URI"));
            continue;
        };
        if uri.params.get("replicaSet") != mongo.get("RS_NAME") {
            errors.push(format!(
                "{ctx}: MONGODB_URI replicaSet={:?}, mongodb-init initiates {:?} (owner-service needs transactions)",
                uri.params.get("replicaSet"),
                mongo.get("RS_NAME")
            ));
        }
        let rs_members: Vec<String> = mongo
            .get("RS_MEMBERS")
            .map(|m| m.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        if uri.hosts != members || rs_members != members {
            errors.push(format!(
                "{ctx}: MONGODB_URI hosts {:?} / mongodb-init RS_MEMBERS {rs_members:?} / StatefulSet pods {members:?} differ",
                uri.hosts
            ));
        }
        let prefix = mongo
            .iter()
            .find(|(k, v)| k.ends_with("_MONGODB_DATABASE") && **v == cfg.mongodb_database)
            .map(|(k, _)| k.trim_end_matches("_MONGODB_DATABASE").to_string());
        match prefix {
            None => errors.push(format!(
                "{ctx}: mongodb-init creates no user for database {}",
                cfg.mongodb_database
            )),
            Some(p) => {
                let user = mongo.get(&format!("{p}_MONGODB_USERNAME"));
                if uri.username.as_ref() != user {
                    errors.push(format!(
                        "{ctx}: MONGODB_URI user {:?}, mongodb-init creates {user:?} for {}",
                        uri.username, cfg.mongodb_database
                    ));
                }
                if uri.password.as_deref() != Some(SECRET_PLACEHOLDER) {
                    errors.push(format!(
                        "{ctx}: the MONGODB_URI password is not taken from {SECRET_NAME}"
                    ));
                }
            }
        }
        if uri.params.get("authSource").map(String::as_str) != Some("admin") {
            errors.push(format!(
                "{ctx}: users are created in admin; MONGODB_URI needs authSource=admin"
            ));
        }
    }
    assert_no_errors("service environment", &errors);
}

/// "Ports agree with the code": container port, probes, Service and Ingress
/// all lead to the port the binary listens on.
#[test]
fn ports_probes_services_and_ingress_agree_with_the_code() {
    let r = rendered_or_skip!();
    let mut errors = Vec::new();
    for svc in services() {
        let name = svc.name();
        let port = svc.defaults.port as i64;
        let pod = deployment_pod(r, name);
        let c = container(pod, name);
        let env = literal_env(r, name, c);
        if env.get("PORT").map(String::as_str) != Some(&port.to_string()) {
            errors.push(format!(
                "{name}: PORT={:?}, the code listens on {port}",
                env.get("PORT")
            ));
        }
        let http = resolve_port(c, &Value::from("http"));
        if http != Some(port) {
            errors.push(format!(
                "{name}: container port `http` is {http:?}, the code listens on {port}"
            ));
        }
        for (probe, path) in [
            ("livenessProbe", "/health"),
            ("readinessProbe", "/health/ready"),
            ("startupProbe", "/health"),
        ] {
            let p = &c[probe];
            if p.is_null() {
                if probe != "startupProbe" {
                    errors.push(format!("{name}: no {probe}"));
                }
                continue;
            }
            if p["httpGet"]["path"].as_str() != Some(path) {
                errors.push(format!(
                    "{name}: {probe} path {:?}, expected {path}",
                    p["httpGet"]["path"]
                ));
            }
            if resolve_port(c, &p["httpGet"]["port"]) != Some(port) {
                errors.push(format!("{name}: {probe} does not target port {port}"));
            }
        }

        let service = r.must("Service", name);
        let pod_labels =
            labels(&r.must("Deployment", name)["spec"]["template"]["metadata"]["labels"]);
        if !selects(&labels(&service["spec"]["selector"]), &pod_labels) {
            errors.push(format!(
                "Service {name} does not select the Deployment's pods"
            ));
        }
        let svc_ports = seq(&service["spec"]["ports"]);
        if svc_ports.is_empty() {
            errors.push(format!("Service {name} has no ports"));
        }
        for p in svc_ports {
            if resolve_port(c, &p["targetPort"]) != Some(port) {
                errors.push(format!(
                    "Service {name}: targetPort {:?} is not {port}",
                    p["targetPort"]
                ));
            }
        }
    }

    // Ingress: /api/travelers and /api/owners, Prefix, no rewriting.
    let ingresses: Vec<&Value> = r.all("Ingress").collect();
    assert_eq!(ingresses.len(), 1, "exactly one Ingress");
    let ing = ingresses[0];
    for (k, _) in map_entries(&ing["metadata"]["annotations"]) {
        if k.contains("rewrite") {
            errors.push(format!(
                "Ingress annotation {k}: paths must reach the services unchanged"
            ));
        }
    }
    let mut routes = BTreeMap::new();
    for rule in seq(&ing["spec"]["rules"]) {
        for p in seq(&rule["http"]["paths"]) {
            let path = p["path"].as_str().unwrap_or("").to_string();
            let backend = &p["backend"]["service"];
            let target = backend["name"].as_str().unwrap_or("").to_string();
            if p["pathType"].as_str() != Some("Prefix") {
                errors.push(format!("Ingress {path}: pathType must be Prefix"));
            }
            match r.get("Service", &target) {
                None => errors.push(format!("Ingress {path} -> {target}: no such Service")),
                Some(service) => {
                    let ports = seq(&service["spec"]["ports"]);
                    let ok = ports.iter().any(|sp| {
                        (backend["port"]["name"].is_string()
                            && sp["name"] == backend["port"]["name"])
                            || (backend["port"]["number"].is_number()
                                && sp["port"] == backend["port"]["number"])
                    });
                    if !ok {
                        errors.push(format!(
                            "Ingress {path} -> {target}: port {:?} not on the Service",
                            backend["port"]
                        ));
                    }
                }
            }
            routes.insert(path, target);
        }
    }
    for (path, svc) in [
        ("/api/travelers", traveler_service::DEFAULTS.name),
        ("/api/owners", owner_service::DEFAULTS.name),
    ] {
        if routes.get(path).map(String::as_str) != Some(svc) {
            errors.push(format!(
                "Ingress must route {path} to {svc}, routes are {routes:?}"
            ));
        }
    }
    assert_no_errors("ports", &errors);
}

/// Replicas, rollout, resources, security context, graceful shutdown, PDB
/// and HPA of each service Deployment.
#[test]
fn deployments_are_highly_available_and_shut_down_gracefully() {
    let r = rendered_or_skip!();
    let job = topic_job(r);
    let mut errors = Vec::new();
    for svc in services() {
        let name = svc.name();
        let dep = r.must("Deployment", name);
        let pod = deployment_pod(r, name);
        let c = container(pod, name);
        let env = literal_env(r, name, c);

        let replicas = dep["spec"]["replicas"].as_i64().unwrap_or(1);
        if replicas < 2 {
            errors.push(format!(
                "{name}: {replicas} replica(s); at least 2 so one can go away"
            ));
        }
        let ru = &dep["spec"]["strategy"]["rollingUpdate"];
        if scalar(&ru["maxUnavailable"]).as_deref() != Some("0") {
            errors.push(format!(
                "{name}: rollingUpdate.maxUnavailable must be 0 for zero-downtime upgrades"
            ));
        }

        // Container hardening: read-only root, non-root, no privilege escalation.
        let sc = &c["securityContext"];
        if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
            errors.push(format!("{name}: readOnlyRootFilesystem must be true"));
        }
        let non_root = sc["runAsNonRoot"].as_bool() == Some(true)
            || pod["securityContext"]["runAsNonRoot"].as_bool() == Some(true);
        if !non_root {
            errors.push(format!("{name}: runAsNonRoot must be true"));
        }
        let uid = sc["runAsUser"]
            .as_i64()
            .or(pod["securityContext"]["runAsUser"].as_i64());
        if uid.is_some_and(|u| u == 0) {
            errors.push(format!("{name}: runs as uid 0"));
        }

        // Start-up: the port opens only after the dependencies answered, so a
        // shorter start-up allowance kills pods that would have started.
        let sp = &c["startupProbe"];
        let allowance = sp["initialDelaySeconds"].as_u64().unwrap_or(0)
            + sp["periodSeconds"].as_u64().unwrap_or(10)
                * sp["failureThreshold"].as_u64().unwrap_or(3);
        if allowance <= STARTUP_PATIENCE_SECS {
            errors.push(format!(
                "{name}: startupProbe allows {allowance}s; the binary retries its dependencies for {STARTUP_PATIENCE_SECS}s before listening"
            ));
        }

        // Graceful shutdown: the pod is killed only after the preStop pause
        // (endpoints drain) plus the binary's own shutdown budget.
        let shutdown: u64 = env
            .get("SHUTDOWN_TIMEOUT_SECS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let pre_stop = &c["lifecycle"]["preStop"];
        let pause = if let Some(secs) = pre_stop["sleep"]["seconds"].as_u64() {
            Some(secs)
        } else {
            let cmd: Vec<String> = seq(&pre_stop["exec"]["command"])
                .iter()
                .filter_map(scalar)
                .collect();
            match cmd.as_slice() {
                [sleep, n] if sleep.ends_with("sleep") => n.parse().ok(),
                _ => None,
            }
        };
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
        match pause {
            None | Some(0) => errors.push(format!("{name}: no preStop pause (sleep) before SIGTERM")),
            Some(p) if grace < p + shutdown_budget_secs(shutdown) => errors.push(format!(
                "{name}: terminationGracePeriodSeconds {grace} < preStop {p} + shutdown budget {} (SHUTDOWN_TIMEOUT_SECS {shutdown})",
                shutdown_budget_secs(shutdown)
            )),
            Some(_) => {}
        }

        // PodDisruptionBudget: selects the pods and lets a drain proceed.
        let pod_labels = labels(&dep["spec"]["template"]["metadata"]["labels"]);
        let pdbs: Vec<&Value> = r
            .all("PodDisruptionBudget")
            .filter(|p| selects(&labels(&p["spec"]["selector"]["matchLabels"]), &pod_labels))
            .collect();
        let hpa = r
            .all("HorizontalPodAutoscaler")
            .find(|h| h["spec"]["scaleTargetRef"]["name"].as_str() == Some(name));
        let min = hpa
            .and_then(|h| h["spec"]["minReplicas"].as_i64())
            .unwrap_or(replicas);
        match pdbs.as_slice() {
            [pdb] => {
                let spec = &pdb["spec"];
                let allows = match (int(&spec["minAvailable"]), int(&spec["maxUnavailable"])) {
                    (Some(min_avail), None) => min - min_avail >= 1,
                    (None, Some(max_unavail)) => max_unavail >= 1,
                    _ => false,
                };
                if !allows {
                    errors.push(format!("{name}: PodDisruptionBudget (integer min/maxAvailable) must allow one pod to be evicted at {min} replicas"));
                }
            }
            _ => errors.push(format!(
                "{name}: expected one PodDisruptionBudget, found {}",
                pdbs.len()
            )),
        }

        // HPA: within [2, partitions], so no consumer idles for lack of a partition.
        match hpa {
            None => errors.push(format!("{name}: no HorizontalPodAutoscaler")),
            Some(h) => {
                let target = &h["spec"]["scaleTargetRef"];
                if target["kind"].as_str() != Some("Deployment") {
                    errors.push(format!("{name}: HPA does not target the Deployment"));
                }
                let max = h["spec"]["maxReplicas"].as_i64().unwrap_or(i64::MAX);
                let partitions: i64 = env
                    .get("KAFKA_TOPIC_PARTITIONS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if min < 2 {
                    errors.push(format!("{name}: HPA minReplicas {min} < 2"));
                }
                if max > partitions || max > job.partitions {
                    errors.push(format!(
                        "{name}: HPA maxReplicas {max} exceeds the partition count (KAFKA_TOPIC_PARTITIONS {partitions}, topic Job {})",
                        job.partitions
                    ));
                }
            }
        }
    }
    assert_no_errors("deployments", &errors);
}

/// The namespace enforces the `restricted` Pod Security Standard, so every pod
/// (services, Kafka, MongoDB, Jobs) must meet it or it is never admitted; and
/// every container declares requests and limits.
#[test]
fn every_pod_is_restricted_and_sized() {
    let r = rendered_or_skip!();
    let mut errors = Vec::new();
    for (ctx, pod) in r.workloads() {
        let psc = &pod["securityContext"];
        if psc["seccompProfile"]["type"].as_str() != Some("RuntimeDefault") {
            errors.push(format!("{ctx}: pod seccompProfile must be RuntimeDefault"));
        }
        for flag in ["hostNetwork", "hostPID", "hostIPC"] {
            if pod[flag].as_bool() == Some(true) {
                errors.push(format!("{ctx}: {flag}"));
            }
        }
        for v in seq(&pod["volumes"]) {
            if !v["hostPath"].is_null() {
                errors.push(format!("{ctx}: hostPath volume"));
            }
        }
        let containers = seq(&pod["containers"])
            .iter()
            .chain(seq(&pod["initContainers"]));
        for c in containers {
            let cname = c["name"].as_str().unwrap_or("?");
            let sc = &c["securityContext"];
            let non_root = sc["runAsNonRoot"]
                .as_bool()
                .or(psc["runAsNonRoot"].as_bool());
            if non_root != Some(true) {
                errors.push(format!("{ctx}/{cname}: runAsNonRoot must be true"));
            }
            if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
                errors.push(format!(
                    "{ctx}/{cname}: allowPrivilegeEscalation must be false"
                ));
            }
            if sc["privileged"].as_bool() == Some(true) {
                errors.push(format!("{ctx}/{cname}: privileged"));
            }
            let drops: Vec<String> = seq(&sc["capabilities"]["drop"])
                .iter()
                .filter_map(scalar)
                .collect();
            if !drops.iter().any(|d| d == "ALL") {
                errors.push(format!("{ctx}/{cname}: capabilities must drop ALL"));
            }
            if !seq(&sc["capabilities"]["add"]).is_empty() {
                errors.push(format!("{ctx}/{cname}: adds capabilities"));
            }
            for kind in ["requests", "limits"] {
                for res in ["cpu", "memory"] {
                    if c["resources"][kind][res].is_null() {
                        errors.push(format!("{ctx}/{cname}: resources.{kind}.{res} missing"));
                    }
                }
            }
        }
    }
    assert_no_errors("pod security", &errors);
}

/// "A KRaft StatefulSet with a headless Service, persistent volumes,
/// readiness probe, and settings that keep data safe with three brokers
/// (replication factor 3, min.insync.replicas=2)".
#[test]
fn kafka_is_a_three_broker_kraft_cluster_that_keeps_data() {
    let r = rendered_or_skip!();
    let sts = r.must("StatefulSet", "kafka");
    let spec = &sts["spec"];
    let mut errors = Vec::new();
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    if replicas != 3 {
        errors.push(format!("kafka: {replicas} brokers, expected 3"));
    }
    // OrderedReady would deadlock: no broker is Ready before the quorum is up.
    if spec["podManagementPolicy"].as_str() != Some("Parallel") {
        errors.push("kafka: podManagementPolicy must be Parallel".into());
    }
    let svc_name = spec["serviceName"].as_str().unwrap_or("");
    match r.get("Service", svc_name) {
        Some(svc) if svc["spec"]["clusterIP"].as_str() == Some("None") => {
            if svc["spec"]["publishNotReadyAddresses"].as_bool() != Some(true) {
                errors.push(format!("kafka: Service {svc_name} must publish not-ready addresses (quorum forms before readiness)"));
            }
        }
        _ => errors.push(format!(
            "kafka: serviceName {svc_name} is not a headless Service"
        )),
    }
    if seq(&spec["volumeClaimTemplates"]).is_empty() {
        errors.push("kafka: no volumeClaimTemplates (data would not survive a restart)".into());
    }
    let pod = &spec["template"]["spec"];
    let c = container(pod, "kafka");
    if !c["image"]
        .as_str()
        .unwrap_or("")
        .starts_with("apache/kafka:")
    {
        errors.push(format!(
            "kafka: image {:?} is not the official apache/kafka",
            c["image"]
        ));
    }
    if c["readinessProbe"].is_null() {
        errors.push("kafka: no readinessProbe".into());
    }
    let data_mount = seq(&c["volumeMounts"])
        .iter()
        .find(|m| {
            seq(&spec["volumeClaimTemplates"])
                .iter()
                .any(|t| t["metadata"]["name"] == m["name"])
        })
        .and_then(|m| m["mountPath"].as_str().map(str::to_string));
    let env = literal_env(r, "kafka", c);
    if pod["enableServiceLinks"].as_bool() != Some(false) {
        errors.push("kafka: enableServiceLinks must be false (the image turns KAFKA_* variables into settings)".into());
    }
    let want = [
        ("KAFKA_DEFAULT_REPLICATION_FACTOR", "3"),
        ("KAFKA_MIN_INSYNC_REPLICAS", "2"),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "3"),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "2"),
        ("KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE", "false"),
    ];
    for (k, v) in want {
        if env.get(k).map(String::as_str) != Some(v) {
            errors.push(format!("kafka: {k}={:?}, expected {v}", env.get(k)));
        }
    }
    if !env
        .get("KAFKA_PROCESS_ROLES")
        .is_some_and(|r| r.contains("controller") && r.contains("broker"))
    {
        errors.push("kafka: KAFKA_PROCESS_ROLES must be broker,controller (KRaft)".into());
    }
    if env.keys().any(|k| k.contains("ZOOKEEPER")) {
        errors.push("kafka: ZooKeeper settings present".into());
    }
    let voters: Vec<&str> = env
        .get("KAFKA_CONTROLLER_QUORUM_VOTERS")
        .map(|v| v.split(',').collect())
        .unwrap_or_default();
    let expected_voters: Vec<String> = (0..replicas)
        .map(|i| {
            format!(
                "{i}@kafka-{i}.{svc_name}:{}",
                resolve_port(c, &Value::from("controller")).unwrap_or(0)
            )
        })
        .collect();
    if voters != expected_voters {
        errors.push(format!(
            "kafka: quorum voters {voters:?}, expected {expected_voters:?}"
        ));
    }
    match (env.get("KAFKA_LOG_DIRS"), data_mount) {
        (Some(dir), Some(mount)) if dir.starts_with(&mount) => {}
        (dir, mount) => errors.push(format!(
            "kafka: KAFKA_LOG_DIRS {dir:?} is not on the data volume {mount:?}"
        )),
    }
    let pdb_ok = r.all("PodDisruptionBudget").any(|p| {
        selects(
            &labels(&p["spec"]["selector"]["matchLabels"]),
            &labels(&spec["template"]["metadata"]["labels"]),
        ) && int(&p["spec"]["maxUnavailable"]) == Some(1)
    });
    if !pdb_ok {
        errors.push("kafka: needs a PodDisruptionBudget with maxUnavailable 1".into());
    }

    // The topic Job matches the cluster: RF 3 needs 3 brokers, min ISR 2 < RF.
    let job = topic_job(r);
    if job.replication_factor != 3 || job.min_insync != 2 {
        errors.push(format!(
            "topic Job: replication factor {} / min.insync.replicas {}, expected 3 / 2",
            job.replication_factor, job.min_insync
        ));
    }
    if job.replication_factor > replicas {
        errors.push("topic Job: replication factor above the broker count".into());
    }
    let brokers: BTreeSet<String> = stateful_hosts(r, "kafka", "client").into_iter().collect();
    for b in job.bootstrap.split(',') {
        if !brokers.contains(b) {
            errors.push(format!("topic Job: bootstrap {b} is not a broker"));
        }
    }
    assert_no_errors("kafka", &errors);
}

/// The topic Job runs the repository's script (via the generated ConfigMap),
/// so the topic names checked in `topics.rs` are the ones created in k8s.
#[test]
fn topic_job_runs_the_repository_script() {
    let r = rendered_or_skip!();
    let pod = &r.must("Job", "kafka-create-topics")["spec"]["template"]["spec"];
    let c = &seq(&pod["containers"])[0];
    let cmd: Vec<String> = seq(&c["command"])
        .iter()
        .chain(seq(&c["args"]))
        .filter_map(scalar)
        .collect();
    let script_path = cmd
        .iter()
        .find(|a| a.ends_with("create-topics.sh"))
        .expect("topic Job runs create-topics.sh");
    let mount = seq(&c["volumeMounts"])
        .iter()
        .find(|m| script_path.starts_with(m["mountPath"].as_str().unwrap_or("\0")))
        .expect("the script's directory is a volume");
    let volume = seq(&pod["volumes"])
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("volume");
    let cm = volume["configMap"]["name"]
        .as_str()
        .expect("a ConfigMap volume");
    let data = r.config_map(cm).expect("the ConfigMap is rendered");
    assert_eq!(
        data.get("create-topics.sh").map(String::as_str),
        Some(read(TOPICS_SCRIPT).as_str()),
        "ConfigMap {cm} must carry {TOPICS_SCRIPT}"
    );
    // The same holds for the MongoDB initialisation.
    let pod = &r.must("Job", "mongodb-init")["spec"]["template"]["spec"];
    let cm_names: Vec<&str> = seq(&pod["volumes"])
        .iter()
        .filter_map(|v| v["configMap"]["name"].as_str())
        .collect();
    assert!(
        cm_names.iter().any(|n| r
            .config_map(n)
            .and_then(|d| d.get("init-replica-set.sh").cloned())
            == Some(read(MONGO_INIT_SCRIPT))),
        "mongodb-init must mount {MONGO_INIT_SCRIPT}"
    );
}

/// "MongoDB: a StatefulSet with a persistent volume and probes (replica set
/// if transactions are used)" - owner-service uses transactions.
#[test]
fn mongodb_is_a_persistent_probed_replica_set() {
    let r = rendered_or_skip!();
    let sts = r.must("StatefulSet", "mongodb");
    let spec = &sts["spec"];
    let mut errors = Vec::new();
    if seq(&spec["volumeClaimTemplates"]).is_empty() {
        errors.push("mongodb: no volumeClaimTemplates".into());
    }
    let c = container(&spec["template"]["spec"], "mongodb");
    if !c["image"].as_str().unwrap_or("").starts_with("mongo:") {
        errors.push(format!(
            "mongodb: image {:?} is not the official mongo image",
            c["image"]
        ));
    }
    for probe in ["readinessProbe", "livenessProbe"] {
        if c[probe].is_null() {
            errors.push(format!("mongodb: no {probe}"));
        }
    }
    let init = mongo_init_env(r);
    let rs = init.get("RS_NAME").cloned().unwrap_or_default();
    let cmdline: String = seq(&c["command"])
        .iter()
        .chain(seq(&c["args"]))
        .filter_map(scalar)
        .collect::<Vec<_>>()
        .join(" ");
    if rs.is_empty() || !cmdline.contains(&format!("--replSet {rs}")) {
        errors.push(format!(
            "mongodb: mongod is not started with --replSet {rs:?}"
        ));
    }
    let svc_name = spec["serviceName"].as_str().unwrap_or("");
    if r.get("Service", svc_name)
        .map(|s| s["spec"]["clusterIP"].as_str())
        != Some(Some("None"))
    {
        errors.push(format!(
            "mongodb: serviceName {svc_name} is not a headless Service"
        ));
    }
    let replicas = spec["replicas"].as_i64().unwrap_or(1);
    if replicas % 2 == 0 {
        errors.push(format!(
            "mongodb: {replicas} members cannot always elect a majority; use an odd count"
        ));
    }
    let pdb_ok = r.all("PodDisruptionBudget").any(|p| {
        selects(
            &labels(&p["spec"]["selector"]["matchLabels"]),
            &labels(&spec["template"]["metadata"]["labels"]),
        )
    });
    if !pdb_ok {
        errors.push("mongodb: no PodDisruptionBudget".into());
    }
    assert_no_errors("mongodb", &errors);
}

/// "Secrets (JWT_SECRET, MongoDB credentials) from a Secret whose committed
/// form is a template with no real value": the rendered output contains no
/// Secret at all, every reference points at a key the template documents,
/// the template holds only empty values, and it has no unused keys.
#[test]
fn secrets_are_referenced_but_never_committed() {
    let r = rendered_or_skip!();
    let mut errors = Vec::new();
    for s in r.all("Secret") {
        errors.push(format!(
            "k8s/ renders Secret {:?}: secret values must not be applied from the repository",
            s["metadata"]["name"]
        ));
    }
    let (doc, template) = secret_template();
    if doc["metadata"]["name"].as_str() != Some(SECRET_NAME)
        || doc["metadata"]["namespace"].as_str() != Some(NAMESPACE)
    {
        errors.push(format!(
            "{SECRET_TEMPLATE} must describe {NAMESPACE}/{SECRET_NAME}"
        ));
    }
    for (k, v) in &template {
        if !v.is_empty() {
            errors.push(format!(
                "{SECRET_TEMPLATE}: {k} has a value; the template must stay empty"
            ));
        }
    }
    let mut used = BTreeSet::new();
    for (ctx, pod) in r.workloads() {
        for c in seq(&pod["containers"])
            .iter()
            .chain(seq(&pod["initContainers"]))
        {
            for (name, src) in container_env(r, &ctx, c, &mut errors) {
                match src {
                    Source::Secret(key) => {
                        used.insert(key);
                    }
                    _ if name == "JWT_SECRET" => {
                        errors.push(format!("{ctx}: JWT_SECRET not from {SECRET_NAME}"))
                    }
                    _ => {}
                }
            }
        }
    }
    for k in template.keys() {
        if !used.contains(k) {
            errors.push(format!("{SECRET_TEMPLATE}: key {k} is used by no workload"));
        }
    }
    assert_no_errors("secrets", &errors);
}

/// Every rendered object is valid against the Kubernetes OpenAPI schema, in
/// strict mode (unknown fields rejected), for the oldest and the newest
/// Kubernetes version we expect. A misspelt field such as
/// `terminationGracePeriodSecond` would otherwise be dropped silently by
/// `kubectl apply` and the semantic checks above would only see its default.
#[test]
fn manifests_match_the_kubernetes_schema() {
    let r = rendered_or_skip!();
    let Some(validate) = kubernetes_validate() else {
        return;
    };
    let file = std::env::temp_dir().join(format!(
        "deploy-checks-rendered-{}.yaml",
        std::process::id()
    ));
    std::fs::write(&file, &r.text).unwrap();
    for version in ["1.27.0", "1.37.0"] {
        run(Command::new(&validate)
            .args(["--strict", "--quiet", "--kubernetes-version", version])
            .arg(&file));
    }
    let _ = std::fs::remove_file(&file);
}

/// "GET /metrics ... kept off the public Ingress", and the pods say where
/// Prometheus scrapes it: every Ingress path is under the services' `/api/`
/// prefixes (so no rule can reach `/metrics`, `/health` or `/`), and each
/// Deployment's pods carry the `prometheus.io/*` annotations with the port
/// the code listens on.
#[test]
fn metrics_are_scraped_from_pods_and_stay_off_the_public_ingress() {
    let r = rendered_or_skip!();
    let mut errors = Vec::new();
    for ing in r.all("Ingress") {
        if !ing["spec"]["defaultBackend"].is_null() {
            errors.push("Ingress: a defaultBackend would expose every path".into());
        }
        for rule in seq(&ing["spec"]["rules"]) {
            for p in seq(&rule["http"]["paths"]) {
                let path = p["path"].as_str().unwrap_or("");
                if !path.starts_with("/api/") || path.contains("metrics") {
                    errors.push(format!(
                        "Ingress path {path:?} is not under /api/: it could expose /metrics"
                    ));
                }
            }
        }
    }
    for svc in services() {
        let name = svc.name();
        let d = r.must("Deployment", name);
        let annotations = &d["spec"]["template"]["metadata"]["annotations"];
        let want = [
            ("prometheus.io/scrape", "true".to_string()),
            ("prometheus.io/port", svc.defaults.port.to_string()),
            ("prometheus.io/path", "/metrics".to_string()),
        ];
        for (key, value) in want {
            if scalar(&annotations[key]).as_deref() != Some(value.as_str()) {
                errors.push(format!(
                    "{name}: pod annotation {key} is {:?}, expected {value:?}",
                    scalar(&annotations[key])
                ));
            }
        }
    }
    assert_no_errors("metrics exposure", &errors);
}
