#!/usr/bin/env bash
# Runs every test in the workspace, the way CI does:
#   1. installs what the tests need, if missing: Apache Kafka 4.1.1 (from
#      Maven Central) and SecantusDB (MongoDB protocol, from PyPI) into
#      ~/.cache/booking-test-servers, and the
#      deployment tools (docker-compose, kubectl) the manifest checks use,
#      the headless browser (chromium, chromedriver) the web-app tests drive,
#      and Schemathesis, which the OpenAPI fuzz test runs;
#   2. starts the two servers on free loopback ports;
#   3. builds the binaries (the end-to-end tests run them as processes);
#   4. runs `cargo test --workspace`, then stops the servers, and prints how
#      long all of it took (installs included).
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p owner-service`).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
took() { echo "scripts/test.sh: $1 after $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s (installs included)" >&2; }
trap 'took "ended (exit $?)"' EXIT

scripts/test-servers.sh install
bash scripts/install-deploy-tools.sh >/dev/null
bash scripts/install-browser.sh >/dev/null
bash scripts/install-schemathesis.sh >/dev/null

scripts/test-servers.sh start
trap 'status=$?; scripts/test-servers.sh stop; took "ended (exit $status)"' EXIT
# shellcheck disable=SC1091
. .test-servers/env

cargo build --workspace --bins
cargo test --workspace "$@"
