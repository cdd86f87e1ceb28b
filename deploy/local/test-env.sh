# shellcheck shell=bash
# The test stack: its own state folder and ports, so `make test` never disturbs a stack
# started by `make run`. Sourced before env.sh. Locations and ports are assigned
# outright (a shell that sourced env.sh for the dev stack must not point the tests at
# it); the service settings below are defaults that the caller's environment overrides.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
unset USERS_SHARD_DSNS USERS_REPLICA_DSNS KAFKA_BOOTSTRAP_SERVERS KAFKA_REPLICATION_FACTOR KAFKA_MIN_INSYNC_REPLICAS TIMELINE_REDIS_URL TIMELINE_USERS_API_URL USERS_TIMELINE_API_URL USERS_UPSTREAM TIMELINE_UPSTREAM
export STACK_DIR="$ROOT/.local/test"
export PG_PORT="15532"
export PG_REPLICA_PORT="15533"
export REDIS_PORT="16479"
export KAFKA_PORT="19192"
export KAFKA_CONTROLLER_PORT="19193"
# A cluster of three brokers: the tests kill one of them (tests/faults).
export KAFKA_BROKERS="3"
export GATEWAY_PORT="18080"
export USERS_API_PORT="18001"
export TIMELINE_API_PORT="18002"
export USERS_RELAY_METRICS_BASE_PORT="19101"
export TIMELINE_WORKER_METRICS_BASE_PORT="19111"
# Low, so the tests can make a celebrity with a handful of follows.
: "${TIMELINE_CELEBRITY_THRESHOLD:=3}"; export TIMELINE_CELEBRITY_THRESHOLD
# Small, so the tests also page past the cached window into PostgreSQL.
: "${TIMELINE_MAX_ITEMS:=40}"; export TIMELINE_MAX_ITEMS
# A store that comes back is retried within 5 s (30 s in production): the fault suite's
# outages then converge soon after they end.
: "${TIMELINE_RETRY_MAX_BACKOFF_SECONDS:=5}"; export TIMELINE_RETRY_MAX_BACKOFF_SECONDS
# Low, so a test can reach the following limit (409) with a few dozen follows.
: "${USERS_MAX_FOLLOWING:=30}"; export USERS_MAX_FOLLOWING
# The whole suite runs from one address, faster than any one client would: the
# per-address limits are raised for it (the hostile-input test puts the defaults back
# while it shows them at work).
: "${GATEWAY_ADDRESS_RATE_LIMIT:=5000r/s}"; export GATEWAY_ADDRESS_RATE_LIMIT
: "${GATEWAY_ADDRESS_RATE_BURST:=10000}"; export GATEWAY_ADDRESS_RATE_BURST
: "${GATEWAY_CONNECTIONS_PER_ADDRESS:=512}"; export GATEWAY_CONNECTIONS_PER_ADDRESS
# Two of each, so the tests run the consumer group and the relays the way production does.
: "${TIMELINE_WORKER_COUNT:=2}"; export TIMELINE_WORKER_COUNT
: "${USERS_RELAY_COUNT:=2}"; export USERS_RELAY_COUNT
# Two API worker processes each, as production runs several (and the stack runs one
# Users API process: the tests keep two, so that what crosses processes is tested).
: "${USERS_API_WORKERS:=2}"; export USERS_API_WORKERS
: "${TIMELINE_API_WORKERS:=2}"; export TIMELINE_API_WORKERS
# A three-node Redis Cluster beside the plain Redis: the feed tests run on both.
# (Below 22768: a cluster node also listens on its port + 10000, and that one too must
# stay below Linux's ephemeral range; see env.sh.)
: "${REDIS_CLUSTER_PORTS:=16501 16502 16503}"; export REDIS_CLUSTER_PORTS
# The brokers on the quick compiler only (C1): a test stack's three brokers, and those
# the fault suites restart, live minutes, which C2 spends compiling on two cores (about
# 10 s of CPU a broker in its first quarter hour, against 2 s: docs/benchmarks.md,
# session 27).
: "${KAFKA_JVM_PERFORMANCE_OPTS:=-XX:TieredStopAtLevel=1}"; export KAFKA_JVM_PERFORMANCE_OPTS
# A keep-alive every 2 s, so the stream tests see several within seconds.
: "${TIMELINE_STREAM_KEEPALIVE_SECONDS:=2}"; export TIMELINE_STREAM_KEEPALIVE_SECONDS
