#!/usr/bin/env bash
# Makes sure a headless Chromium is on PATH, from Debian's chromium package.
#
# The widget's test loads a shop's page with bestand's widget snippet in headless Chromium
# (`chromium --headless --dump-dom`), and `make widget-screenshot` takes the README's picture.
# Idempotent: does nothing when chromium is there.
#
# usage: deploy/local/install-chromium.sh
set -euo pipefail

die() {
    echo "install-chromium: $*" >&2
    exit 1
}

if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null | head -1)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || die "chromium is not on PATH and there is no apt-get here;" \
        "install Chromium with your system's package manager"

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
        || die "installing chromium needs root (apt-get) and sudo is not available"
    sudo=(sudo)
fi

apt_install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends chromium fonts-dejavu-core
}

echo "installing Debian's chromium package (headless browser for the widget's test)..."
if ! apt_install; then
    echo "apt-get install failed; running apt-get update once and retrying..."
    "${sudo[@]}" apt-get update
    apt_install || die "apt-get could not install chromium"
fi

command -v chromium >/dev/null 2>&1 || die "chromium still not on PATH after install"
echo "installed $(chromium --version 2>/dev/null | head -1)"
