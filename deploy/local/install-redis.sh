#!/usr/bin/env bash
# Makes sure a `redis-server` binary is on PATH, from Debian's redis-server package.
#
# The local stack starts its own redis-server process on 127.0.0.1 (its own port and data
# folder); the package is only the binary. Idempotent: does nothing when redis-server is there.
#
# usage: deploy/local/install-redis.sh
set -euo pipefail

die() {
    echo "install-redis: $*" >&2
    exit 1
}

if command -v redis-server >/dev/null 2>&1; then
    echo "redis-server already installed: $(redis-server --version)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || die "redis-server is not on PATH and there is no apt-get here;" \
        "install Redis 7 with your system's package manager"

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
        || die "installing redis-server needs root (apt-get) and sudo is not available"
    sudo=(sudo)
fi

apt_install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends redis-server
}

echo "installing Debian's redis-server package..."
if ! apt_install; then
    # A fresh machine has no package lists yet: fetch them once and try again.
    echo "apt-get install failed; running apt-get update once and retrying..."
    "${sudo[@]}" apt-get update
    apt_install || die "apt-get could not install redis-server"
fi

command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after install"
echo "installed $(redis-server --version)"
# Debian's package may also start its own service on port 6379; the local stack then reports
# that one as "external" and leaves it alone (or set BESTAND_REDIS_URL to another port).
