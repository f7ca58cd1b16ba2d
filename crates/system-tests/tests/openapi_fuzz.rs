//! Property-based fuzzing of both services from their own OpenAPI
//! documents, with Schemathesis (from PyPI; `scripts/install-schemathesis.sh`
//! installs it, and `scripts/test.sh` runs that first).
//!
//! Both binaries run as processes on the real servers. Schemathesis reads
//! each service's `GET /openapi.json`, and for every operation sends
//! requests generated from it — valid ones, and ones that break the schema
//! (examples, boundary values, random data, and sequences that create a
//! resource and use it) — authenticated with a bearer token of a user
//! signed up here. It checks that no answer is a 5xx, that every status,
//! content type, header and body is one the document declares, that
//! invalid input is refused, that the authentication the document requires
//! is enforced, and that undeclared methods get 405 with `Allow`.
//!
//! Two of its checks are left out, each because the document cannot say
//! what it would need: `positive_data_acceptance` (whether schema-valid
//! input is accepted depends on state the schema cannot express: dates
//! relative to today, cursors the server issued, a property's `max_guests`,
//! text that is blank once trimmed) and `use_after_free` (`DELETE
//! /properties/{id}` delists a property, which stays readable to its owner
//! by design).
//!
//! The seed is fixed so a failure reproduces; `OPENAPI_FUZZ_SEED` picks
//! another, `OPENAPI_FUZZ_EXAMPLES` another number of examples per
//! operation. `SCHEMATHESIS_BIN` names the `st` executable; without it, the
//! one `scripts/install-schemathesis.sh` installed is used. Under `CI`, a
//! missing Schemathesis or missing servers fail the test.

mod support;

use std::path::PathBuf;

use support::{System, User};
use test_support::{is_ci, real_servers};

/// The Schemathesis version `scripts/install-schemathesis.sh` installs.
const VERSION: &str = "4.32.5";

/// Where `st` is, or `None` (with a loud SKIPPED line) outside CI.
fn schemathesis() -> Option<PathBuf> {
    let path = std::env::var_os("SCHEMATHESIS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("BOOKING_TOOLS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/booking-test-servers")
                });
            tools.join(format!("schemathesis-{VERSION}/bin/st"))
        });
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "Schemathesis is not installed at {}: run scripts/install-schemathesis.sh \
         (scripts/test.sh does)",
        path.display()
    );
    assert!(!is_ci(), "{message}");
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED openapi_fuzz: {message}");
    None
}

/// Runs Schemathesis against the service at `base` as `user`; returns
/// whether it passed, and what it printed.
async fn fuzz(st: &PathBuf, base: &str, user: &User) -> (bool, String) {
    let seed = std::env::var("OPENAPI_FUZZ_SEED").unwrap_or_else(|_| "20261130".into());
    let examples = std::env::var("OPENAPI_FUZZ_EXAMPLES").unwrap_or_else(|_| "15".into());
    let output = tokio::process::Command::new(st)
        .arg("run")
        .arg(format!("{base}/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {}", user.token)])
        .args(["--max-examples", &examples])
        .args(["--seed", &seed])
        .args(["--checks", "all"])
        .args([
            "--exclude-checks",
            "positive_data_acceptance,use_after_free",
        ])
        // A stream stays open until the client leaves: nothing to check
        // in a response that never ends (its refusals are tested in
        // notification_streams.rs).
        .args(["--exclude-path-regex", "/notifications/stream$"])
        .args(["--request-timeout", "10"])
        .env("NO_COLOR", "1")
        // Schemathesis keeps a `.schemathesis/` cache in its working
        // directory: not in the checkout.
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", st.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The summary lines of a run: operations, test cases, failures.
fn summary(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Tested:")
                || l.starts_with("Selected:")
                || l.contains("generated,")
                || l.starts_with('❌')
                || l.starts_with('✅')
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn both_services_answer_as_their_documents_say() {
    let Some(st) = schemathesis() else { return };
    let Some(servers) = real_servers("openapi_fuzz") else {
        return;
    };
    let sys = System::processes(&servers).await;
    let traveler = sys.traveler_signup("fuzz-traveler").await;
    let owner = sys.owner_signup("fuzz-owner").await;
    // Something for the reads to find: a listed property.
    sys.create_property(&owner, "Lisbon").await;

    let (t, o) = tokio::join!(
        fuzz(&st, &sys.traveler, &traveler),
        fuzz(&st, &sys.owner, &owner)
    );
    for (name, (passed, text)) in [("traveler-service", t), ("owner-service", o)] {
        // Shown with --nocapture, and with a failure.
        println!("{name}:\n{}", summary(&text));
        assert!(passed, "Schemathesis found failures in {name}:\n{text}");
        let cases = text
            .lines()
            .find(|l| l.contains("generated,"))
            .unwrap_or_else(|| panic!("{name}: no test-case count in:\n{text}"));
        let generated: u32 = cases
            .split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name}: cannot read {cases:?}"));
        assert!(generated >= 100, "{name}: only {generated} test cases ran");
    }
}
