#!/usr/bin/env bash
# Supply-chain checks; CI (.ci/run) runs them after clippy:
#
#   cargo deny check bans licenses sources   licenses we accept, no duplicate
#                                            versions of security crates,
#                                            crates.io only (deny.toml); needs
#                                            no network
#   cargo machete                            dependencies that no crate uses
#   cargo deny check advisories              known vulnerabilities, against the
#                                            RustSec advisory database: only when
#                                            a copy of it can be had (below)
#
# Installs cargo-deny and cargo-machete (pinned, `cargo install --locked`, into
# ~/.cargo/bin) when the pinned version is missing: the first time takes
# minutes (see the README), later runs seconds.
#
# The advisory database is a git repository (github.com/RustSec/advisory-db).
# It is fetched when it can be reached; if not, and RUSTSEC_ADVISORY_DB names a
# local copy of it (a clone, or any git repository with its history), that
# copy is used; otherwise a line says the advisories were NOT checked and why,
# and the script does not fail for that.
#
# Usage: scripts/supply-chain.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2
CARGO_MACHETE_VERSION=0.9.2
# How long fetching the advisory database may take before it counts as
# unreachable.
FETCH_TIMEOUT_SECS=${FETCH_TIMEOUT_SECS:-120}
# Where cargo-deny keeps the default database: $CARGO_HOME/advisory-dbs/ plus
# the URL's last segment and a hash of the URL (cargo-deny's naming, stable
# for the pinned version).
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
ADVISORY_DB_DIR="$CARGO_HOME/advisory-dbs/advisory-db-3157b0e258782691"

log() { echo "supply-chain: $*" >&2; }

# install_tool CRATE VERSION: cargo install CRATE@VERSION unless that version is
# already on PATH (`cargo-deny --version` prints "cargo-deny 0.20.2",
# `cargo-machete --version` just "0.9.2").
install_tool() {
  local crate=$1 version=$2
  if command -v "$crate" >/dev/null 2>&1 \
    && "$crate" --version 2>/dev/null | grep -qw -- "$version"; then
    return
  fi
  log "installing $crate $version (cargo install --locked; minutes the first time)"
  local start=$SECONDS
  # Not into the project's target directory: the tools are not part of it.
  env -u CARGO_TARGET_DIR cargo install --locked --quiet "$crate" --version "$version"
  log "$crate $version installed in $((SECONDS - start)) s"
}

install_tool cargo-deny "$CARGO_DENY_VERSION"
install_tool cargo-machete "$CARGO_MACHETE_VERSION"

# cargo-deny reads every package of the lock file, for every platform, while
# a build downloads only the host's: fetch the rest from crates.io first
# (seconds). The check itself then runs --offline: it needs no advisory
# database and nothing else from the network.
cargo fetch --locked --quiet
log "cargo deny check bans licenses sources"
# Without the inclusion graphs: the tolerated duplicate versions would print a
# thousand lines of them. On a failure, again with them, to show the way in.
if ! cargo deny --locked --offline check --hide-inclusion-graph bans licenses sources; then
  cargo deny --locked --offline check bans licenses sources || true
  exit 1
fi

log "cargo machete"
cargo machete

# cargo machete reads [dependencies] only; dev- and build-dependencies get
# the same test here: a crate that no source file of its package names.
log "unused dev- and build-dependencies"
python3 - <<'PY'
import pathlib, re, sys, tomllib

unused = []
for manifest in sorted(pathlib.Path("crates").glob("*/Cargo.toml")):
    package = manifest.parent
    sources = "\n".join(p.read_text() for p in package.rglob("*.rs"))
    deps = tomllib.loads(manifest.read_text())
    for section in ("dev-dependencies", "build-dependencies"):
        for name in deps.get(section, {}):
            if not re.search(rf"\b{name.replace('-', '_')}\b", sources):
                unused.append(f"{manifest} [{section}] {name}")
for line in unused:
    print(f"unused: {line}")
sys.exit(1 if unused else 0)
PY

# --- advisories ---------------------------------------------------------------
fetch_log=$(mktemp)
trap 'rm -f "$fetch_log"' EXIT
if timeout "$FETCH_TIMEOUT_SECS" cargo deny --locked fetch db >"$fetch_log" 2>&1; then
  source_line="fetched now"
elif [ -n "${RUSTSEC_ADVISORY_DB:-}" ]; then
  # A local copy: put it where cargo-deny looks, as a fresh clone whose
  # origin is the real database again, so that no later run mistakes a
  # fetch from the copy for a fetch from upstream.
  rm -rf "$ADVISORY_DB_DIR"
  mkdir -p "$(dirname "$ADVISORY_DB_DIR")"
  git clone --quiet "$RUSTSEC_ADVISORY_DB" "$ADVISORY_DB_DIR"
  git -C "$ADVISORY_DB_DIR" remote set-url origin https://github.com/RustSec/advisory-db
  source_line="the copy in $RUSTSEC_ADVISORY_DB"
else
  reason=$(grep -m1 '^fatal:' "$fetch_log" || grep -m1 -i 'error' "$fetch_log" || true)
  [ -n "$reason" ] || reason="no answer within ${FETCH_TIMEOUT_SECS} s"
  echo "supply-chain: ADVISORIES NOT CHECKED: the RustSec advisory database could not be fetched (${reason}); set RUSTSEC_ADVISORY_DB to a local copy to check against it"
  exit 0
fi
log "cargo deny check advisories (database: $source_line, newest advisory commit $(git -C "$ADVISORY_DB_DIR" log -1 --format=%cs))"
cargo deny --locked --offline check advisories
