#!/usr/bin/env bash
# Installs Schemathesis (from PyPI), the property-based API fuzzer the
# OpenAPI test (crates/system-tests/tests/openapi_fuzz.rs) runs against both
# services, into its own virtualenv beside the test servers' tools.
#
# Idempotent: does nothing when that version is already installed. Prints the
# `st` path as its last line. The test finds it by $SCHEMATHESIS_BIN, then in
# this venv; with CI set and it missing, the test fails rather than skips.
#
# Usage: scripts/install-schemathesis.sh
set -euo pipefail

VERSION=4.32.5
TOOLS=${BOOKING_TOOLS_DIR:-$HOME/.cache/booking-test-servers}
VENV=$TOOLS/schemathesis-$VERSION
ST=$VENV/bin/st

log() { echo "install-schemathesis: $*" >&2; }

if [ -x "$ST" ]; then
  log "schemathesis $VERSION already installed"
else
  log "installing schemathesis $VERSION into $VENV"
  mkdir -p "$TOOLS"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION" >&2
fi

echo "$ST"
