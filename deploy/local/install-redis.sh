#!/usr/bin/env bash
# Makes sure a `redis-server` binary is on PATH, from Debian's redis-server package, and the
# `openssl` command, which the tests of TLS use to make a test CA and server certificate.
#
# The local stack starts its own redis-server process on 127.0.0.1 (its own port and data
# folder); the package is only the binary. Idempotent: does nothing when both are there.
#
# usage: deploy/local/install-redis.sh
set -euo pipefail

die() {
    echo "install-redis: $*" >&2
    exit 1
}

packages=()
command -v redis-server >/dev/null 2>&1 || packages+=(redis-server)
command -v openssl >/dev/null 2>&1 || packages+=(openssl)
if [[ ${#packages[@]} -eq 0 ]]; then
    echo "redis-server already installed: $(redis-server --version)"
    exit 0
fi

command -v apt-get >/dev/null 2>&1 \
    || die "${packages[*]} not on PATH and there is no apt-get here;" \
        "install them (Redis 7) with your system's package manager"

sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 \
        || die "installing ${packages[*]} needs root (apt-get) and sudo is not available"
    sudo=(sudo)
fi

apt_install() {
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${packages[@]}"
}

echo "installing Debian's ${packages[*]} package(s)..."
if ! apt_install; then
    # A fresh machine has no package lists yet: fetch them once and try again.
    echo "apt-get install failed; running apt-get update once and retrying..."
    "${sudo[@]}" apt-get update
    apt_install || die "apt-get could not install ${packages[*]}"
fi

command -v redis-server >/dev/null 2>&1 || die "redis-server still not on PATH after install"
command -v openssl >/dev/null 2>&1 || die "openssl still not on PATH after install"
echo "installed $(redis-server --version)"
# Debian's package may also start its own service on port 6379; the local stack then reports
# that one as "external" and leaves it alone (or set BESTAND_REDIS_URL to another port).
