# shellcheck shell=bash
# Settings of the local (no-Docker) stack. Sourced by every script in
# deploy/local/ and meant to be sourced by anything that talks to the stack:
#
#   source deploy/local/env.sh
#
# Every value is a default only: a variable that is already set in the
# environment wins (`: "${X:=default}"`). Note that the derived connection
# strings (USERS_SHARD_DSNS, ...) are computed from the values in force at the
# first `source`; if you change PG_PORT in a shell that already sourced this
# file, unset the derived variables too.
#
# This file must not change shell options: it is also sourced by interactive
# shells.

# The repository root is a fact, not a default: always derived from where this
# file lives (deploy/local/env.sh -> ../..).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT

# All state (data dirs, pid files, logs, the Kafka jars and their Maven repo)
# lives here. It is created with a `.gitignore` of `*` so git never sees it.
: "${STACK_DIR:=$ROOT/.local}"; export STACK_DIR

# Every port here is below 32768: Linux hands out 32768-60999 (ip_local_port_range) to
# outgoing connections, and a client that keeps retrying a closed local port in that
# range can be given that very port and connect to itself, so the crashed server can
# never bind it again (docs/decisions/0013). infra.sh refuses a port in that range.

# --- PostgreSQL: one server, one physical database per users shard ----------
: "${PG_PORT:=15432}"; export PG_PORT
: "${PG_USER:=timeline}"; export PG_USER            # superuser made by initdb
: "${PG_SHARD_DBS:=users_shard_0 users_shard_1}"; export PG_SHARD_DBS
: "${PG_MAX_CONNECTIONS:=300}"; export PG_MAX_CONNECTIONS  # ~10 pools x 20-30
# PostgreSQL's default (128MB) holds only a small part of a loaded bench's databases:
# every rebuild then reads pages through the kernel (docs/decisions/0018; the figures in
# docs/benchmarks.md, "rebuilds in groups"). Allocated as used.
: "${PG_SHARED_BUFFERS:=1GB}"; export PG_SHARED_BUFFERS
# A streaming replica of the whole server (pg_basebackup), for the Users Service's
# internal reads (USERS_REPLICA_DSNS below); 0 runs none.
: "${PG_REPLICA_PORT:=15433}"; export PG_REPLICA_PORT

# --- Redis --------------------------------------------------------------------
: "${REDIS_PORT:=16379}"; export REDIS_PORT

# --- Kafka (KRaft brokers, each its own controller too; jars from Maven Central) --
# One broker by default (memory); 3 make a cluster (make test runs one): topics
# replicated three ways, two in sync for a write. Broker i (from 1) listens on
# KAFKA_PORT + 2(i-1) and its controller on KAFKA_CONTROLLER_PORT + 2(i-1).
: "${KAFKA_BROKERS:=1}"; export KAFKA_BROKERS
: "${KAFKA_PORT:=19092}"; export KAFKA_PORT
: "${KAFKA_CONTROLLER_PORT:=19093}"; export KAFKA_CONTROLLER_PORT
if [ "$KAFKA_BROKERS" -ge 3 ]; then _kafka_rf=3 _kafka_isr=2; else _kafka_rf=1 _kafka_isr=1; fi
: "${KAFKA_REPLICATION_FACTOR:=$_kafka_rf}"; export KAFKA_REPLICATION_FACTOR
: "${KAFKA_MIN_INSYNC_REPLICAS:=$_kafka_isr}"; export KAFKA_MIN_INSYNC_REPLICAS
unset _kafka_rf _kafka_isr
# The release docker-compose.yml (apache/kafka) and the Kubernetes manifests (Strimzi)
# run too, so every way of running the stack tests the same broker: the newest that the
# Strimzi operator supports (4.4.0 is out, but not yet supported there). Runs on Java 17.
# tests/unit/test_same_everywhere.py fails when the four places disagree.
: "${KAFKA_VERSION:=4.3.1}"; export KAFKA_VERSION
: "${KAFKA_HEAP_OPTS:=-Xmx512m -Xms256m}"; export KAFKA_HEAP_OPTS
# The brokers' other JVM flags: none here, the JVM's own JIT (C2), whose code serves a
# broker that runs for long at least cost. The test stack's brokers, which live minutes,
# run the quick compiler only (test-env.sh; docs/benchmarks.md, session 27).
: "${KAFKA_JVM_PERFORMANCE_OPTS:=}"; export KAFKA_JVM_PERFORMANCE_OPTS

# --- Services and the nginx gateway in front of them ------------------------
: "${GATEWAY_PORT:=8080}"; export GATEWAY_PORT
: "${USERS_API_PORT:=8001}"; export USERS_API_PORT
: "${TIMELINE_API_PORT:=8002}"; export TIMELINE_API_PORT
# Server processes per API (deploy/local/api-server.sh). Here rather than in stack.sh,
# so `make bench` sees the count the stack runs. The Timeline API: two, which serve
# more pages than one on a 2-core machine (docs/benchmarks.md). The Users API: one,
# whose groups of a tweet's writes and calls (0021) are twice as large as two
# processes' each, which makes a tweet cheaper in all (decision 0024).
: "${USERS_API_WORKERS:=1}"; export USERS_API_WORKERS
: "${TIMELINE_API_WORKERS:=2}"; export TIMELINE_API_WORKERS
# nginx limit_req syntax: rate per client key, and the burst allowed above it
# (served without delay, then 429).
: "${GATEWAY_RATE_LIMIT:=50r/s}"; export GATEWAY_RATE_LIMIT
: "${GATEWAY_RATE_BURST:=100}"; export GATEWAY_RATE_BURST
# The same per client address, always (so rotating X-User-IDs escapes nothing), and the
# connections one address may hold open.
: "${GATEWAY_ADDRESS_RATE_LIMIT:=100r/s}"; export GATEWAY_ADDRESS_RATE_LIMIT
: "${GATEWAY_ADDRESS_RATE_BURST:=200}"; export GATEWAY_ADDRESS_RATE_BURST
: "${GATEWAY_CONNECTIONS_PER_ADDRESS:=64}"; export GATEWAY_CONNECTIONS_PER_ADDRESS
# host:port of the upstreams as written into the gateway config (docker uses
# service names here; locally the services run on loopback).
: "${USERS_UPSTREAM:=127.0.0.1:$USERS_API_PORT}"; export USERS_UPSTREAM
: "${TIMELINE_UPSTREAM:=127.0.0.1:$TIMELINE_API_PORT}"; export TIMELINE_UPSTREAM

# A local stack: the services accept the public default cursor secrets (anywhere
# else they refuse to start with them).
: "${LOCAL_STACK:=true}"; export LOCAL_STACK

# --- Connection strings read by the Python services --------------------------
_pg_dsns() {  # _pg_dsns PORT: PG_SHARD_DBS on the server at PORT, comma-separated, in order
  local sep="" db
  for db in $PG_SHARD_DBS; do
    printf '%spostgresql+asyncpg://%s@127.0.0.1:%s/%s' "$sep" "$PG_USER" "$1" "$db"
    sep=","
  done
}
# Database id = position; the first (database 0) holds the shard catalog.
[ -n "${USERS_SHARD_DSNS:-}" ] || USERS_SHARD_DSNS="$(_pg_dsns "$PG_PORT")"
export USERS_SHARD_DSNS
# The same databases on the replica server, in the same order.
if [ -z "${USERS_REPLICA_DSNS:-}" ] && [ "$PG_REPLICA_PORT" != 0 ]; then
  USERS_REPLICA_DSNS="$(_pg_dsns "$PG_REPLICA_PORT")"
fi
export USERS_REPLICA_DSNS
if [ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; then
  KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
  for ((_kafka_i = 1; _kafka_i < KAFKA_BROKERS; _kafka_i++)); do
    KAFKA_BOOTSTRAP_SERVERS="$KAFKA_BOOTSTRAP_SERVERS,127.0.0.1:$((KAFKA_PORT + 2 * _kafka_i))"
  done
fi
unset _kafka_i
export KAFKA_BOOTSTRAP_SERVERS
: "${TIMELINE_REDIS_URL:=redis://127.0.0.1:$REDIS_PORT/0}"; export TIMELINE_REDIS_URL
: "${TIMELINE_USERS_API_URL:=http://127.0.0.1:$USERS_API_PORT}"; export TIMELINE_USERS_API_URL
: "${USERS_TIMELINE_API_URL:=http://127.0.0.1:$TIMELINE_API_PORT}"; export USERS_TIMELINE_API_URL
