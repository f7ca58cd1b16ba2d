#!/usr/bin/env bash
# Installs the headless browser the web-app tests (crates/system-tests/tests/
# web_app.rs) drive over WebDriver: Debian's `chromium` and `chromium-driver`
# (which provides `chromedriver`).
#
# Idempotent: does nothing when both are already on PATH. Prints the
# chromedriver path as its last line. The test finds the tools by
# $CHROMEDRIVER_BIN / $CHROMIUM_BIN, then PATH; with CI set and either
# missing, it fails rather than skips.
#
# Usage: scripts/install-browser.sh
set -euo pipefail

log() { echo "install-browser: $*" >&2; }

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  log "chromium and chromedriver present: $(command -v chromium), $(command -v chromedriver)"
else
  log "installing chromium and chromium-driver with apt-get"
  if ! command -v apt-get >/dev/null 2>&1; then
    log "apt-get is not available: install chromium and chromedriver yourself"
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium chromium-driver >/dev/null
  log "installed: $(chromium --version 2>/dev/null || echo chromium), $(chromedriver --version)"
fi

command -v chromedriver
