#!/usr/bin/env bash
# Puts the Apache Kafka broker jars pinned in deploy/local/kafka/pom.xml into <libs-dir>.
#
# Why Maven: Maven Central is a registry every machine of the project reaches, and the pom
# pins the exact broker version; the jars are cached in ~/.m2, so later runs work offline.
# Idempotent: does nothing when <libs-dir> already holds the pinned version (see its stamp).
#
# usage: deploy/local/install-kafka.sh <libs-dir>
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/kafka/pom.xml"

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 <libs-dir>" >&2
    exit 2
fi
mkdir -p "$(dirname "$1")"
# Absolute: mvn resolves a relative outputDirectory against the pom's folder, not ours.
libs="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
stamp="$libs/KAFKA_VERSION"

die() {
    echo "install-kafka: $*" >&2
    exit 1
}

[[ -f "$pom" ]] || die "missing $pom"
version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n 1)"
[[ -n "$version" ]] || die "no <kafka.version> in $pom"

installed() {
    compgen -G "$libs/kafka_2.13-*.jar" >/dev/null \
        && compgen -G "$libs/kafka-tools-$version.jar" >/dev/null \
        && [[ -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$version" ]]
}

# --- a Java 17+ runtime, checked every time: the broker needs it ----------------------------
java_bin="java"
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java_bin="$JAVA_HOME/bin/java"
fi
command -v "$java_bin" >/dev/null 2>&1 \
    || die "java not found; Kafka $version needs Java 17 or newer" \
        "(Debian: apt-get install -y openjdk-17-jre-headless)"
java_version="$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n 1)"
java_major="${java_version%%.*}"
if [[ "$java_major" == "1" ]]; then  # old style "1.8.0_392"
    java_major="$(echo "$java_version" | cut -d. -f2)"
fi
if ! [[ "$java_major" =~ ^[0-9]+$ ]] || (( java_major < 17 )); then
    die "Kafka $version needs Java 17 or newer, found '${java_version:-unknown}' ($java_bin)"
fi
if installed; then
    echo "Kafka $version jars already in $libs"
    exit 0
fi

# Maven only when there is something to download.
command -v mvn >/dev/null 2>&1 \
    || die "mvn not found; it downloads the Kafka jars from Maven Central" \
        "(Debian: apt-get install -y maven)"

# --- download into a fresh folder next to <libs-dir>, then swap it in --------------------------
# A half-finished copy never looks installed: the stamp is written last, and the lock keeps two
# installs (two terminals, parallel test sessions) from writing the same folder.
parent="$(dirname "$libs")"
exec 9>"$parent/.install-kafka.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi
if installed; then  # another install finished while we waited for the lock
    echo "Kafka $version jars already in $libs"
    exit 0
fi

tmp="$(mktemp -d "$parent/.libs-partial.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "installing Kafka $version jars into $libs via Maven..."
# -q prints errors only, plus terminal colour resets: keep its output for the failure case.
if ! mvn_out="$(mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1)"; then
    echo "$mvn_out" >&2
    die "mvn could not fetch the Kafka $version jars (Maven Central unreachable, no ~/.m2 cache?)"
fi
compgen -G "$tmp/kafka_2.13-$version.jar" >/dev/null \
    || die "mvn finished but kafka_2.13-$version.jar is missing in its output"
# Only jars and the stamp are replaced, never the folder itself: <libs-dir> is the caller's path.
mkdir -p "$libs"
rm -f "$stamp" "$libs"/*.jar
mv "$tmp"/*.jar "$libs"/
echo "$version" >"$stamp"
echo "installed Kafka $version ($(find "$libs" -name '*.jar' | wc -l) jars) into $libs"
