#!/usr/bin/env bash
# Makes sure `promtool` is on PATH, from Debian's prometheus package.
#
# The tests use promtool to check the alert rules (`promtool check rules`, `promtool test
# rules`) and the metrics that the worker and the API expose (`promtool check metrics`). Only
# the binary is needed: the package's own Prometheus service is not started (policy-rc.d).
# Idempotent: does nothing when promtool is there.
#
# usage: deploy/local/install-promtool.sh
set -euo pipefail

die() {
    echo "install-promtool: $*" >&2
    exit 1
}

if command -v promtool >/dev/null 2>&1; then
    echo "promtool already installed: $(promtool --version 2>&1 | head -1)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || die "promtool is not on PATH and there is no apt-get here;" \
        "install Prometheus (it ships promtool) with your system's package manager"

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
        || die "installing promtool needs root (apt-get) and sudo is not available"
    sudo=(sudo)
fi

# Keep the package from starting its Prometheus service while installing.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    made_policy=1
fi
cleanup() {
    if [[ "$made_policy" -eq 1 ]]; then "${sudo[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT

apt_install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends prometheus
}

echo "installing Debian's prometheus package (for promtool)..."
if ! apt_install; then
    echo "apt-get install failed; running apt-get update once and retrying..."
    "${sudo[@]}" apt-get update
    apt_install || die "apt-get could not install prometheus"
fi

command -v promtool >/dev/null 2>&1 || die "promtool still not on PATH after install"
echo "installed $(promtool --version 2>&1 | head -1)"
