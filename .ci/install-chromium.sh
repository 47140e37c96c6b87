#!/usr/bin/env bash
# Installs Debian's Chromium and its chromedriver for the `browser` tests (tests/render/test_browser.py,
# tests/atlas/test_atlas_browser.py; selenium, from the test extra, drives /usr/bin/chromedriver).
# Safe to run again: does nothing when both are already there.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    echo "chromium already installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
