#!/usr/bin/env bash
# Installs the headless browser of the end-to-end tests (tests/tests/e2e.rs): Debian's
# `chromium` at /usr/bin/chromium. Idempotent: does nothing when it is already there.
# Needs root (or sudo) and the Debian package registry.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present) (/usr/bin/chromium)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser.sh: /usr/bin/chromium is missing and this is not root; run as root: apt-get install -y chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
echo "==> apt-get update"
$SUDO apt-get update -q
echo "==> apt-get install -y chromium"
$SUDO apt-get install -y -q --no-install-recommends chromium

if [ ! -x /usr/bin/chromium ]; then
    echo "install-browser.sh: apt-get installed chromium but /usr/bin/chromium is missing" >&2
    exit 1
fi
echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo installed)"
