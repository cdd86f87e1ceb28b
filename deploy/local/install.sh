#!/usr/bin/env bash
# Install what the local stack needs, skipping whatever is already there:
#   - Debian packages: postgresql, redis-server, nginx (+ curl, gettext-base
#     for envsubst, wrk for `make bench`, shellcheck and prometheus's promtool for
#     `make lint` and the rules' tests; a JRE and Maven if missing). Only the
#     binaries are used: the system-wide services are never started or configured.
#   - Kafka: the broker, storage tool, CLI tools and a log4j2 backend, resolved
#     from Maven Central with deploy/local/kafka/pom.xml into
#     $STACK_DIR/kafka/libs (skipped when already done for this KAFKA_VERSION
#     and this pom).
# Safe to run again at any time.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

t0="$(date +%s)"
ensure_stack_dirs

# ----------------------------------------------------------------------------
# Debian packages
# ----------------------------------------------------------------------------
pkg_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

# wrk: the load generator of `make bench`; shellcheck: `make lint`; prometheus: its
# promtool checks and tests the alerting rules (deploy/observability/alerts.yml)
want=(postgresql redis-server nginx curl gettext-base wrk shellcheck prometheus)
# Java and Maven are normally there already; install Debian's if not.
command -v java >/dev/null 2>&1 || want+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || want+=(maven)

missing=()
for p in "${want[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done

if [ "${#missing[@]}" -eq 0 ]; then
  say "apt: all present (${want[*]})"
else
  [ "$(id -u)" = 0 ] || die "need root to apt-get install: ${missing[*]}"
  # Debian's postinst scripts try to start each service through invoke-rc.d.
  # There is no systemd here, so invoke-rc.d would run the SysV init scripts
  # and really start the system nginx/redis/postgres (or fail the install). A
  # policy-rc.d that exits 101 ("action forbidden") makes invoke-rc.d skip
  # that. If one exists already (e.g. Docker base images ship one) we leave
  # it; otherwise ours is removed again on exit.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from deploy/local/install.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt_opts=(-o DPkg::Lock::Timeout=300 -o Acquire::Retries=3)
  say "apt-get update"
  apt-get "${apt_opts[@]}" update -q
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y -q \
    --no-install-recommends "${missing[@]}"
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "package $p did not install"
  done
fi

# Java 17+ is required by Kafka 4.
java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
[ "${java_major:-0}" -ge 17 ] || die "Kafka $KAFKA_VERSION needs Java 17+, found: $(java -version 2>&1 | head -n 1)"

# ----------------------------------------------------------------------------
# Kafka jars
# ----------------------------------------------------------------------------
KAFKA_DIR="$STACK_DIR/kafka"
LIBS="$KAFKA_DIR/libs"
POM="$HERE/kafka/pom.xml"
# The marker records the version and a hash of the pom, so editing the pom
# (e.g. adding a dependency) or changing KAFKA_VERSION triggers a re-resolve.
marker="$LIBS/.installed"
stamp="kafka=$KAFKA_VERSION pom=$(sha256sum "$POM" | cut -c1-16)"

if [ -f "$marker" ] && [ "$(cat "$marker")" = "$stamp" ]; then
  say "kafka $KAFKA_VERSION jars already in $LIBS ($(find "$LIBS" -name '*.jar' | wc -l) jars)"
else
  say "resolving kafka $KAFKA_VERSION from Maven Central into $LIBS"
  mkdir -p "$KAFKA_DIR" "$STACK_DIR/m2"
  # Copy into a scratch dir and swap it in at the end, so an interrupted run
  # never leaves a half-filled libs/ that looks complete.
  tmp="$KAFKA_DIR/libs.tmp"
  rm -rf "$tmp"
  # Progress: one line per jar downloaded (a warm $STACK_DIR/m2 prints none);
  # the full Maven output goes to the log. includeScope=runtime: no
  # test/provided jars. pipefail makes the pipeline fail when mvn does.
  mvn_log="$LOG_DIR/install-kafka-mvn.log"
  if ! mvn -B -Dstyle.color=never -f "$POM" \
      -Dmaven.repo.local="$STACK_DIR/m2" \
      -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies \
      -DincludeScope=runtime \
      -DoutputDirectory="$tmp" 2>&1 \
      | tee "$mvn_log" \
      | { grep -E --line-buffered 'Downloaded from .*\.jar|BUILD|ERROR' || true; } \
      | sed -u -E 's#^.*/([^/]+\.jar) \((.*)\)$#downloaded \1 (\2)#; s/^/    mvn: /' >&2; then
    die "maven could not resolve kafka $KAFKA_VERSION (full output: $mvn_log)"
  fi
  for must in "kafka_2.13-$KAFKA_VERSION.jar" "kafka-tools-$KAFKA_VERSION.jar"; do
    [ -f "$tmp/$must" ] || die "expected $must in resolved jars"
  done
  rm -rf "$LIBS"
  mv "$tmp" "$LIBS"
  printf '%s\n' "$stamp" >"$marker"
  say "kafka $KAFKA_VERSION: $(find "$LIBS" -name '*.jar' | wc -l) jars in $LIBS"
fi

say "install done in $(( $(date +%s) - t0 ))s"
