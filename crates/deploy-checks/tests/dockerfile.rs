//! Checks the `Dockerfile` against the workspace without building it (there
//! is no Docker engine here): stages, ports, user, health check and the
//! dependency-caching layer, plus `hadolint` when it is installed.

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::*;

/// A stage: its base, and its instructions as (keyword, rest of line) with
/// continuation lines joined.
struct Stage {
    base: String,
    instructions: Vec<(String, String)>,
}

fn stages() -> BTreeMap<String, Stage> {
    let text = read("Dockerfile");
    let mut logical = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') && current.is_empty() {
            continue;
        }
        if t.starts_with('#') {
            continue; // comment inside a continued instruction
        }
        if let Some(body) = t.strip_suffix('\\') {
            current.push_str(body);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        if !current.trim().is_empty() {
            logical.push(current.trim().to_string());
        }
        current.clear();
    }
    let mut stages = BTreeMap::new();
    let mut name = String::new();
    for l in logical {
        let (kw, rest) = l.split_once(char::is_whitespace).unwrap_or((&l, ""));
        let kw = kw.to_ascii_uppercase();
        if kw == "FROM" {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            name = match words.as_slice() {
                [_, as_kw, n] if as_kw.eq_ignore_ascii_case("as") => n.to_string(),
                _ => format!("#{}", stages.len()),
            };
            stages.insert(
                name.clone(),
                Stage {
                    base: words.first().unwrap_or(&"").to_string(),
                    instructions: Vec::new(),
                },
            );
        } else if let Some(stage) = stages.get_mut(&name) {
            stage.instructions.push((kw, rest.trim().to_string()));
        }
    }
    stages
}

/// Instructions of a stage including those inherited from its parent stages.
fn effective(stages: &BTreeMap<String, Stage>, name: &str) -> Vec<(String, String)> {
    let stage = &stages[name];
    let mut out = if stages.contains_key(&stage.base) {
        effective(stages, &stage.base)
    } else {
        Vec::new()
    };
    out.extend(stage.instructions.iter().cloned());
    out
}

fn last<'a>(instr: &'a [(String, String)], kw: &str) -> Option<&'a str> {
    instr
        .iter()
        .rev()
        .find(|(k, _)| k == kw)
        .map(|(_, v)| v.as_str())
}

/// `cargo metadata` for the workspace: member manifests and binary targets.
fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = run(Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(workspace_root()));
    serde_json::from_str(&out).unwrap()
}

/// Each service has its own stage, named like the service, that exposes and
/// health-checks the port from the code, runs the service's binary and
/// (through the runtime stage) a non-root user.
#[test]
fn service_stages_match_the_code() {
    let stages = stages();
    let meta = metadata();
    let mut errors = Vec::new();
    for svc in services() {
        let name = svc.name();
        let Some(_) = stages.get(name) else {
            errors.push(format!("no stage `AS {name}`"));
            continue;
        };
        let instr = effective(&stages, name);
        let port = svc.defaults.port.to_string();
        if last(&instr, "EXPOSE") != Some(port.as_str()) {
            errors.push(format!(
                "{name}: EXPOSE {:?}, the code listens on {port}",
                last(&instr, "EXPOSE")
            ));
        }
        if last(&instr, "ENV").map(|e| e.contains(&format!("PORT={port}"))) != Some(true) {
            errors.push(format!(
                "{name}: ENV PORT={port} missing (HEALTHCHECK uses it)"
            ));
        }
        match last(&instr, "HEALTHCHECK") {
            Some(h) if h.contains("/health") && h.contains("127.0.0.1:${PORT}") => {}
            h => errors.push(format!(
                "{name}: HEALTHCHECK {h:?} must call http://127.0.0.1:${{PORT}}/health"
            )),
        }
        match last(&instr, "USER") {
            Some(u)
                if u.split(':')
                    .next()
                    .and_then(|uid| uid.parse::<u32>().ok())
                    .is_some_and(|uid| uid > 0) => {}
            u => errors.push(format!("{name}: USER {u:?} must be a numeric non-root uid")),
        }
        // The binary the stage runs is a [[bin]] target of the service's package.
        let bins: Vec<String> = meta["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == name)
            .flat_map(|p| p["targets"].as_array().unwrap().iter())
            .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect();
        let entry = last(&instr, "ENTRYPOINT").unwrap_or("");
        if !bins
            .iter()
            .any(|b| entry.contains(&format!("/usr/local/bin/{b}\"")))
        {
            errors.push(format!(
                "{name}: ENTRYPOINT {entry:?} runs none of the package's binaries {bins:?}"
            ));
        }
        if !entry.trim_start().starts_with('[') {
            errors.push(format!(
                "{name}: ENTRYPOINT must be exec form so the binary gets SIGTERM"
            ));
        }
    }
    let runtime_bases: Vec<&str> = stages.values().map(|s| s.base.as_str()).collect();
    if !runtime_bases.contains(&"debian:bookworm-slim") {
        errors.push("runtime stage should be debian:bookworm-slim".into());
    }
    if !runtime_bases
        .iter()
        .any(|b| b.starts_with("rust:") && b.ends_with("-bookworm"))
    {
        errors.push("builder stage should be rust:*-bookworm (same Debian as the runtime)".into());
    }
    assert_no_errors("Dockerfile stages", &errors);
}

/// The cached dependency layer copies every workspace member's Cargo.toml
/// before the sources. A new crate that is missing there would make the
/// stub build fail (Cargo cannot load the workspace), so it fails here first.
#[test]
fn dependency_layer_copies_every_workspace_manifest() {
    let text = read("Dockerfile");
    let root = workspace_root();
    let meta = metadata();
    let first_source_copy = text.find("COPY crates crates").expect("COPY crates crates");
    let manifest_part = &text[..first_source_copy];
    assert!(
        manifest_part.contains("COPY Cargo.toml Cargo.lock"),
        "root manifest and lock file first"
    );
    let mut errors = Vec::new();
    for p in meta["packages"].as_array().unwrap() {
        let manifest = std::path::Path::new(p["manifest_path"].as_str().unwrap());
        let rel = manifest
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if !manifest_part.contains(&format!("COPY {rel} ")) {
            errors.push(format!("Dockerfile does not COPY {rel} before the sources"));
        }
    }
    assert!(
        text.contains("--locked"),
        "builds must use Cargo.lock (--locked)"
    );
    assert_no_errors("dependency layer", &errors);
}

/// ".dockerignore keeps target/ and local data out of the build context",
/// while keeping everything the Dockerfile copies.
#[test]
fn dockerignore_keeps_build_output_and_local_data_out() {
    let rules: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    // Either an allow-list (`*` then `!path`) or explicit exclusions.
    let allow_list = rules.first().map(String::as_str) == Some("*");
    let excluded = |p: &str| {
        allow_list
            || rules
                .iter()
                .any(|r| r.trim_start_matches("**/").trim_end_matches('/') == p)
    };
    for p in ["target", ".env", ".git"] {
        assert!(excluded(p), ".dockerignore must exclude {p}");
    }
    assert!(
        rules.iter().any(|r| r.contains("target")),
        ".dockerignore must name target/ explicitly (nested crates too)"
    );
    if allow_list {
        for needed in ["Cargo.toml", "Cargo.lock", "crates/"] {
            assert!(
                rules.contains(&format!("!{needed}")),
                ".dockerignore must re-include {needed}"
            );
        }
    }
}

/// hadolint catches Dockerfile mistakes (syntax, shell pitfalls) without an
/// engine. Warnings the file deliberately accepts are ignored inline there.
#[test]
fn hadolint_passes() {
    let Some(hadolint) = hadolint() else { return };
    run(Command::new(hadolint)
        .arg("--no-color")
        .arg(workspace_root().join("Dockerfile")));
}
