#!/usr/bin/env bash
# Run the local infrastructure as plain processes, all state in $STACK_DIR:
#   postgres  127.0.0.1:$PG_PORT       databases $PG_SHARD_DBS, superuser $PG_USER
#   postgres-replica 127.0.0.1:$PG_REPLICA_PORT  a streaming replica of it (0: none)
#   redis     127.0.0.1:$REDIS_PORT
#   kafka     127.0.0.1:$KAFKA_PORT    KRaft broker+controller; a cluster of KAFKA_BROKERS is
#                                      kafka-1..N at KAFKA_PORT + 2(i-1)
#   nginx     127.0.0.1:$GATEWAY_PORT  the API gateway (deploy/nginx/gateway.conf.template)
#
# Usage: deploy/local/infra.sh start|stop|status|replica-delay DELAY
#   start   starts what is not running and waits until each one answers;
#           running it again is harmless (it also re-renders the gateway
#           config and reloads nginx if that changed).
#   stop    stops what start started (by pid file), in reverse order.
#   status  one line per component; exit 0 if all are up, 3 otherwise.
# Run deploy/local/install.sh first.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

REDIS_DIR="$STACK_DIR/redis"
KAFKA_DIR="$STACK_DIR/kafka"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
NGINX_DIR="$STACK_DIR/nginx"
KAFKA_CLI="$HERE/kafka-cli.sh"

# Services are started from a directory every user can enter (postgres runs
# as the postgres user, who may not be allowed into the caller's cwd).
cd "$STACK_DIR" 2>/dev/null || { ensure_stack_dirs; cd "$STACK_DIR"; }

# ----------------------------------------------------------------------------
# PostgreSQL
# ----------------------------------------------------------------------------
pg_bin_dir() {
  # Debian keeps the server binaries out of PATH, in /usr/lib/postgresql/N/bin.
  local d
  d="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
  if [ -n "$d" ] && [ -x "$d/postgres" ]; then
    printf '%s\n' "$d"
  elif command -v postgres >/dev/null 2>&1; then
    dirname "$(command -v postgres)"
  else
    die "no postgres binaries found: run deploy/local/install.sh"
  fi
}

# postgres and initdb refuse to run as root: as root, run them as the OS
# user `postgres` (created by Debian's package). setpriv execs directly (no
# su/runuser parent that would SIGKILL postgres 2 s after forwarding a signal),
# so the pid start_bg records is the postmaster itself.
AS_PG=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || die "OS user postgres missing: run deploy/local/install.sh"
  AS_PG=(setpriv --reuid=postgres --regid=postgres --init-groups)
fi

# postgres runs as the OS user `postgres`, which must be able to walk down to its
# data directory. A checkout under a private folder (`mktemp -d` makes mode 700, and
# CI may clone into one) shuts it out; then the cluster lives in a per-checkout
# folder under /var/tmp instead, and $STACK_DIR/pg is a symlink to it, so there is
# still one place to look. Nothing outside that folder changes permissions.
PG_DIR="$STACK_DIR/pg"
ensure_stack_dirs
if [ "${#AS_PG[@]}" -gt 0 ] && [ ! -L "$PG_DIR" ] && ! "${AS_PG[@]}" test -x "$STACK_DIR"; then
  outside="/var/tmp/timeline-pg-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)"
  mkdir -p "$outside"
  chmod 755 "$outside"
  rm -rf "$PG_DIR"
  ln -s "$outside" "$PG_DIR"
fi
[ -L "$PG_DIR" ] && PG_DIR="$(readlink "$PG_DIR")"
PGDATA="$PG_DIR/data"

# Unix sockets paths are limited to ~107 bytes; a deep checkout (CI clones
# elsewhere) could exceed that, so fall back to a short per-checkout dir.
PG_SOCKET_DIR="$PG_DIR/run"
if [ "${#PG_SOCKET_DIR}" -gt 80 ]; then
  PG_SOCKET_DIR="/tmp/stack-pg-$(printf '%s' "$STACK_DIR" | sha256sum | cut -c1-12)"
fi


psql_q() {  # psql_q DB SQL: run SQL, print unaligned tuples
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" \
    -U "$PG_USER" -d "$1" -tAc "$2"
}

# A killed postmaster must be gone before a new one starts on its data directory, or
# the new one exits at once ("lock file already exists"): PostgreSQL asks whether the
# old pid still exists, and a killed process lingers as a zombie until whoever adopted
# it reaps it (here a VM's init, which takes its time). Its children leave its process
# group (PostgreSQL's children call setsid) and exit on their own moments later; until
# the last has, the interlock segment (postmaster.pid line 7) is still attached.
wait_pg_data_free() {  # wait_pg_data_free DATADIR
  local pidfile="$1/postmaster.pid" old shmid i
  [ -f "$pidfile" ] || return 0
  old="$(head -n 1 "$pidfile")"
  shmid="$(sed -n 7p "$pidfile" | awk '{print $2}')"
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$old" 2>/dev/null \
      && { [ -z "$shmid" ] || ! ipcs -m -i "$shmid" 2>/dev/null | grep -q 'nattch=[1-9]'; }; then
      return 0
    fi
    sleep 0.1
  done
}

start_postgres() {
  PG_BIN="$(pg_bin_dir)"
  mkdir -p "$PG_DIR" "$PG_SOCKET_DIR"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    # No PG_VERSION: never initialised, or an initdb was interrupted.
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    chmod 700 "$PGDATA"
    if [ "${#AS_PG[@]}" -gt 0 ]; then
      chown postgres:postgres "$PGDATA"
      "${AS_PG[@]}" test -w "$PGDATA" \
        || die "user postgres cannot reach $PGDATA (a parent directory is not world-executable?)"
    fi
    say "postgres: initdb $PGDATA (superuser $PG_USER)"
    # -U: the bootstrap superuser is $PG_USER (there is no `postgres` role).
    # Trust auth; pg_hba.conf below narrows TCP to 127.0.0.1.
    "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PGDATA" -U "$PG_USER" -A trust -E UTF8 --locale=C \
      >>"$LOG_DIR/postgres-initdb.log" 2>&1 \
      || { show_log_tail postgres-initdb; die "initdb failed"; }
    cat >"$PGDATA/pg_hba.conf" <<'EOF'
# Local dev stack (deploy/local/infra.sh): trust, loopback IPv4 only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   trust
host    replication all 127.0.0.1/32   trust
EOF
    [ "${#AS_PG[@]}" -eq 0 ] || chown postgres:postgres "$PGDATA/pg_hba.conf"
  fi
  [ "${#AS_PG[@]}" -eq 0 ] || chown postgres:postgres "$PG_SOCKET_DIR"

  if ! is_running postgres && port_open 127.0.0.1 "$PG_PORT"; then
    die "port $PG_PORT is in use by something that is not our postgres"
  fi
  is_running postgres || wait_pg_data_free "$PGDATA"
  # Settings go on the command line (they override postgresql.conf), so a
  # changed PG_PORT etc. applies at the next start without editing files.
  start_bg postgres "${AS_PG[@]}" "$PG_BIN/postgres" -D "$PGDATA" \
    -c listen_addresses=127.0.0.1 \
    -c port="$PG_PORT" \
    -c unix_socket_directories="$PG_SOCKET_DIR" \
    -c max_connections="$PG_MAX_CONNECTIONS" \
    -c shared_buffers="$PG_SHARED_BUFFERS"
  wait_tcp 127.0.0.1 "$PG_PORT" 60 postgres
  # Accepting TCP is not the same as accepting queries (startup/recovery).
  wait_cmd 60 postgres psql_q postgres 'SELECT 1'

  local db
  for db in $PG_SHARD_DBS; do
    [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "bad database name in PG_SHARD_DBS: $db"
    if [ "$(psql_q postgres "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
      say "postgres: creating database $db"
      psql_q postgres "CREATE DATABASE \"$db\"" >/dev/null
    fi
    [ "$(psql_q "$db" 'SELECT 1')" = 1 ] || die "postgres: cannot query database $db"
  done
  say "postgres ready: databases $PG_SHARD_DBS"
}

# A hot standby of the whole server: made once with pg_basebackup (-R: it follows the
# primary by streaming replication, and reconnects by itself when the primary
# restarts). Every database the primary has or creates later is on it.
start_postgres_replica() {
  [ "$PG_REPLICA_PORT" != 0 ] || return 0
  PG_BIN="$(pg_bin_dir)"
  local data="$PG_DIR/replica"
  if [ ! -s "$data/PG_VERSION" ]; then
    if ! grep -q '^host *replication' "$PGDATA/pg_hba.conf"; then  # a primary made before replicas
      echo 'host    replication all 127.0.0.1/32   trust' >>"$PGDATA/pg_hba.conf"
      psql_q postgres 'SELECT pg_reload_conf()' >/dev/null
    fi
    rm -rf "$data"
    mkdir -p "$data"
    chmod 700 "$data"
    [ "${#AS_PG[@]}" -eq 0 ] || chown postgres:postgres "$data"
    say "postgres-replica: pg_basebackup from :$PG_PORT into $data"
    "${AS_PG[@]}" "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -D "$data" -R -X stream \
      -c fast >>"$LOG_DIR/postgres-replica-basebackup.log" 2>&1 \
      || { show_log_tail postgres-replica-basebackup; die "pg_basebackup failed"; }
  fi
  if ! is_running postgres-replica && port_open 127.0.0.1 "$PG_REPLICA_PORT"; then
    die "port $PG_REPLICA_PORT is in use by something that is not our postgres replica"
  fi
  is_running postgres-replica || wait_pg_data_free "$data"
  start_bg postgres-replica "${AS_PG[@]}" "$PG_BIN/postgres" -D "$data" \
    -c listen_addresses=127.0.0.1 \
    -c port="$PG_REPLICA_PORT" \
    -c unix_socket_directories="$PG_SOCKET_DIR" \
    -c max_connections="$PG_MAX_CONNECTIONS" \
    -c shared_buffers="$PG_SHARED_BUFFERS" \
    -c hot_standby=on
  wait_tcp 127.0.0.1 "$PG_REPLICA_PORT" 60 postgres-replica
  wait_cmd 60 postgres-replica psql_replica 'SELECT 1'
  say "postgres-replica ready: streaming from :$PG_PORT"
}

psql_replica() {  # psql_replica SQL: run SQL on the replica's postgres database
  PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_REPLICA_PORT" \
    -U "$PG_USER" -d postgres -tAc "$1"
}

# The replica's apply delay (recovery_min_apply_delay): `infra.sh replica-delay 5s`
# makes it lag on purpose, `replica-delay 0` catches it up (a reload, no restart).
cmd_replica_delay() {
  [ "$PG_REPLICA_PORT" != 0 ] || die "no replica in this stack (PG_REPLICA_PORT=0)"
  PG_BIN="$(pg_bin_dir)"
  psql_replica "ALTER SYSTEM SET recovery_min_apply_delay = '${1:?usage: replica-delay 5s|0}'" >/dev/null
  psql_replica 'SELECT pg_reload_conf()' >/dev/null
}

# ----------------------------------------------------------------------------
# Redis
# ----------------------------------------------------------------------------
redis_pong() {
  [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

start_redis() {
  command -v redis-server >/dev/null 2>&1 || die "redis-server missing: run deploy/local/install.sh"
  mkdir -p "$REDIS_DIR"
  if ! is_running redis && port_open 127.0.0.1 "$REDIS_PORT"; then
    die "port $REDIS_PORT is in use by something that is not our redis"
  fi
  # A cache: no RDB snapshots, no AOF. logfile "" = stdout (-> logs/redis.log).
  # Lists in nodes of 4 KB, not 8: a delivery into a cold home costs less, and an entry
  # takes fewer bytes (docs/benchmarks.md, "Smaller list nodes").
  start_bg redis redis-server \
    --port "$REDIS_PORT" \
    --bind 127.0.0.1 \
    --protected-mode yes \
    --dir "$REDIS_DIR" \
    --save "" \
    --appendonly no \
    --list-max-listpack-size -1 \
    --daemonize no \
    --logfile ""
  wait_cmd 30 redis redis_pong
}

# A small Redis Cluster (three primaries, no replicas), only when
# REDIS_CLUSTER_PORTS is set (the test stack sets it): the tests run the feed code
# against it to show that the same code runs on Redis Cluster.
start_redis_cluster() {
  [ -n "${REDIS_CLUSTER_PORTS:-}" ] || return 0
  local port nodes=()
  for port in $REDIS_CLUSTER_PORTS; do
    mkdir -p "$REDIS_DIR/cluster-$port"
    if ! is_running "redis-cluster-$port" && port_open 127.0.0.1 "$port"; then
      die "port $port is in use by something that is not our redis"
    fi
    start_bg "redis-cluster-$port" redis-server --port "$port" --bind 127.0.0.1 \
      --dir "$REDIS_DIR/cluster-$port" --cluster-enabled yes --cluster-config-file nodes.conf \
      --save "" --appendonly no --list-max-listpack-size -1 --daemonize no --logfile ""
    nodes+=("127.0.0.1:$port")
  done
  for port in $REDIS_CLUSTER_PORTS; do
    wait_cmd 30 "redis-cluster-$port" redis-cli -p "$port" ping
  done
  port="${REDIS_CLUSTER_PORTS%% *}"
  # Restarted nodes remember their cluster (nodes.conf) and only need a moment to agree;
  # nodes that know nobody else are new: create the cluster.
  if redis-cli -p "$port" cluster info | grep -q "cluster_known_nodes:1"; then
    say "creating the Redis Cluster on ${nodes[*]}"
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >>"$LOG_DIR/redis-cluster-create.log" 2>&1 \
      || die "redis cluster create failed (see $LOG_DIR/redis-cluster-create.log)"
  fi
  wait_cmd 30 "redis-cluster-$port" bash -c "redis-cli -p $port cluster info | grep -q cluster_state:ok"
}

stop_redis_cluster() {
  local port
  for port in ${REDIS_CLUSTER_PORTS:-}; do stop_bg "redis-cluster-$port" 10 TERM; done
}

# ----------------------------------------------------------------------------
# Kafka
# ----------------------------------------------------------------------------
# The Kafka nodes: "kafka" alone, or kafka-1..kafka-N for a cluster (KAFKA_BROKERS),
# each a broker and a controller in one JVM (KRaft combined mode).
kafka_names() {
  if [ "$KAFKA_BROKERS" -le 1 ]; then echo kafka; return; fi
  local i
  for ((i = 1; i <= KAFKA_BROKERS; i++)); do echo "kafka-$i"; done
}

kafka_index() {  # NAME -> 0-based index (the port offset is twice it)
  case "$1" in kafka) echo 0 ;; *) echo $(( ${1#kafka-} - 1 )) ;; esac
}

kafka_voters() {  # the static controller quorum of a cluster: id@host:port,...
  local i voters=""
  for ((i = 0; i < KAFKA_BROKERS; i++)); do
    voters="$voters${voters:+,}$((i + 1))@127.0.0.1:$((KAFKA_CONTROLLER_PORT + 2 * i))"
  done
  echo "$voters"
}

write_kafka_props() {  # NAME PORT CONTROLLER_PORT DATA PROPS
  local name="$1" port="$2" cport="$3" data="$4" props="$5" index rf isr
  index="$(kafka_index "$name")"
  rf="$KAFKA_REPLICATION_FACTOR" isr="$KAFKA_MIN_INSYNC_REPLICAS"
  {
    cat <<PROPS
# Generated by deploy/local/infra.sh at every start; edit the script instead.
# KRaft combined mode: broker and controller in one JVM.
process.roles=broker,controller
node.id=$((index + 1))
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$data
# Internal topics replicated as the event topics are (KAFKA_REPLICATION_FACTOR).
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
default.replication.factor=$rf
min.insync.replicas=$isr
group.initial.rebalance.delay.ms=0
num.partitions=1
# Topics are created explicitly by the application / tests.
auto.create.topics.enable=false
PROPS
    if [ "$KAFKA_BROKERS" -le 1 ]; then
      cat <<PROPS
# Dynamic quorum (formatted with --standalone): bootstrap servers, not voters.
controller.quorum.bootstrap.servers=127.0.0.1:$cport
PROPS
    else
      cat <<PROPS
# A static quorum of every node's controller: a majority (two of three) keeps the
# cluster's metadata available while one node is down.
controller.quorum.voters=$(kafka_voters)
# A node gone is noticed in seconds, not the defaults' tens of seconds: its partitions
# get new leaders and it leaves the in-sync sets, so writes with acks=all go on.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
replica.lag.time.max.ms=5000
PROPS
    fi
  } >"$props.new"
  mv "$props.new" "$props"
}

ports_free() {  # PORT...: no socket but one in TIME_WAIT holds these local ports
  local port
  for port in "$@"; do
    [ -z "$(ss -Htan state all exclude time-wait "( sport = :$port )" 2>/dev/null)" ] || return 1
  done
}

start_kafka() {
  local libs="$KAFKA_DIR/libs" name index cluster_id=""
  [ -f "$libs/.installed" ] || die "no Kafka jars in $libs: run deploy/local/install.sh"
  grep -q "kafka=$KAFKA_VERSION " "$libs/.installed" \
    || die "Kafka jars are not version $KAFKA_VERSION: run deploy/local/install.sh"
  mkdir -p "$KAFKA_DIR"
  # Every node of a cluster is formatted with the same cluster id (kept beside them).
  if [ "$KAFKA_BROKERS" -gt 1 ]; then
    [ -s "$KAFKA_DIR/cluster-id" ] || "$KAFKA_CLI" storage random-uuid >"$KAFKA_DIR/cluster-id"
    cluster_id="$(cat "$KAFKA_DIR/cluster-id")"
  fi
  for name in $(kafka_names); do start_kafka_node "$name" "$cluster_id"; done
  for name in $(kafka_names); do
    index="$(kafka_index "$name")"
    wait_tcp 127.0.0.1 $((KAFKA_PORT + 2 * index)) 90 "$name"
  done
  # The port opens before the broker has joined the quorum and has metadata;
  # a topic listing needs both.
  wait_cmd 90 kafka "$KAFKA_CLI" topics --bootstrap-server "$KAFKA_BOOTSTRAP_SERVERS" --list
}

start_kafka_node() {  # NAME CLUSTER_ID ("" for a single node: it makes its own)
  local name="$1" cluster_id="$2" index port cport data props marker formatted_for
  local libs="$KAFKA_DIR/libs"
  index="$(kafka_index "$name")"
  port=$((KAFKA_PORT + 2 * index)) cport=$((KAFKA_CONTROLLER_PORT + 2 * index))
  if [ "$name" = kafka ]; then
    data="$KAFKA_DATA" props="$KAFKA_PROPS" marker="$KAFKA_DIR/formatted-for"
    formatted_for="controller=127.0.0.1:$cport kafka=$KAFKA_VERSION"
  else
    data="$KAFKA_DIR/data-$((index + 1))" props="$KAFKA_DIR/$name.properties" marker="$KAFKA_DIR/$name.formatted-for"
    formatted_for="voters=$(kafka_voters) kafka=$KAFKA_VERSION"
  fi
  if is_running "$name"; then
    say "$name already running (pid $(_pid_of "$name"))"
    return
  fi
  port_open 127.0.0.1 "$port" && die "port $port is in use by something that is not our $name"
  port_open 127.0.0.1 "$cport" && die "port $cport is in use by something that is not our $name"
  # A broker that was just killed may leave sockets closing for a moment; its
  # connections in TIME_WAIT do not matter (the listener binds with SO_REUSEADDR).
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"  # a crashed broker's, if any
  wait_cmd 30 "$name-ports" ports_free "$port" "$cport"
  write_kafka_props "$name" "$port" "$cport" "$data" "$props"
  # The controllers' addresses are written into the metadata log at format time (the
  # voter set), so a data dir formatted for other controllers cannot start; nor can
  # one whose metadata version is newer than the broker's (another KAFKA_VERSION).
  # Say so instead of failing obscurely.
  if [ -f "$data/meta.properties" ] && [ "$(cat "$marker" 2>/dev/null)" != "$formatted_for" ]; then
    die "kafka data in $data was formatted for $(cat "$marker" 2>/dev/null || echo '?'), not $formatted_for: delete $KAFKA_DIR/data* to start afresh"
  fi
  if [ ! -f "$data/meta.properties" ]; then
    # Not formatted (or an interrupted format): a single node formats a cluster of
    # its own (the only controller voter); a cluster's nodes share one id and the
    # static voter set of their properties.
    rm -rf "$data"
    local standalone=()
    if [ -z "$cluster_id" ]; then
      cluster_id="$("$KAFKA_CLI" storage random-uuid)"
      standalone=(--standalone)
    fi
    say "$name: formatting $data (cluster id $cluster_id)"
    "$KAFKA_CLI" storage format -t "$cluster_id" -c "$props" "${standalone[@]}" \
      >>"$LOG_DIR/kafka-format.log" 2>&1 \
      || { show_log_tail kafka-format; die "kafka storage format failed"; }
    printf '%s\n' "$formatted_for" >"$marker"
  fi
  # shellcheck disable=SC2086  # both are lists of JVM flags
  start_bg "$name" java $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS \
    -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" \
    -Dkafka.log.level=INFO \
    -cp "$libs/*" kafka.Kafka "$props"
}

# ----------------------------------------------------------------------------
# nginx (gateway)
# ----------------------------------------------------------------------------
nginx_bin() {
  command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } \
    || die "nginx missing: run deploy/local/install.sh"
}

start_nginx() {
  local bin conf_dir changed=0
  bin="$(nginx_bin)"
  conf_dir="$NGINX_DIR/conf"
  mkdir -p "$conf_dir" "$NGINX_DIR/logs" "$NGINX_DIR/run" "$NGINX_DIR/tmp"

  # Render: only our five variables are substituted; nginx's own $variables
  # in the template are left alone.
  # shellcheck disable=SC2016  # the list is literal: envsubst expands it
  envsubst '${GATEWAY_PORT} ${USERS_UPSTREAM} ${TIMELINE_UPSTREAM} ${GATEWAY_RATE_LIMIT} ${GATEWAY_RATE_BURST}
            ${GATEWAY_ADDRESS_RATE_LIMIT} ${GATEWAY_ADDRESS_RATE_BURST} ${GATEWAY_CONNECTIONS_PER_ADDRESS}' \
    <"$ROOT/deploy/nginx/gateway.conf.template" >"$conf_dir/gateway.conf.new"
  cp "$HERE/nginx.conf" "$conf_dir/nginx.conf.new"
  local f
  for f in gateway.conf nginx.conf; do
    if ! cmp -s "$conf_dir/$f.new" "$conf_dir/$f"; then
      mv "$conf_dir/$f.new" "$conf_dir/$f"
      changed=1
    else
      rm -f "$conf_dir/$f.new"
    fi
  done
  local nginx_args=(-p "$NGINX_DIR/" -c "$conf_dir/nginx.conf" -e stderr)
  "$bin" "${nginx_args[@]}" -t -q || die "nginx config test failed ($conf_dir)"

  if is_running nginx; then
    if [ "$changed" = 1 ]; then
      say "nginx: config changed, reloading"
      local master old i
      master="$(_pid_of nginx)"
      old="$(pgrep -P "$master" | sort || true)"
      kill -HUP "$master"
      # A reload is asynchronous: until the old workers are gone, a new connection may
      # still meet the old configuration (a test that lowers the limits saw none). Wait
      # for them, up to 5 s (a worker holding a live stream finishes it first).
      for i in $(seq 50); do
        [ -n "$(comm -12 <(printf '%s\n' "$old") <(pgrep -P "$master" | sort || true))" ] || break
        sleep 0.1
      done
    else
      say "nginx already running (pid $(_pid_of nginx))"
    fi
  else
    port_open 127.0.0.1 "$GATEWAY_PORT" && die "port $GATEWAY_PORT is in use by something that is not our nginx"
    # -e stderr: errors before the config's error_log takes over land in
    # logs/nginx.log; the JSON access log (stdout) lands there too.
    start_bg nginx "$bin" "${nginx_args[@]}" -g 'daemon off;'
  fi
  wait_tcp 127.0.0.1 "$GATEWAY_PORT" 20 nginx
}

# ----------------------------------------------------------------------------
status_line() {  # status_line NAME ADDRESS PORT [EXTRA]
  local name="$1" addr="$2:$3" extra="${4:-}" state
  if is_running "$name"; then
    if port_open "$2" "$3"; then state="up"; else state="starting?"; fi
    printf '%-9s %-10s pid %-8s %-17s %s\n' "$name" "$state" "$(_pid_of "$name")" "$addr" "$extra"
    [ "$state" = up ]
  else
    printf '%-9s %-10s %-12s %-17s %s\n' "$name" "stopped" "" "$addr" "$extra"
    return 1
  fi
}

cmd_status() {
  local ok=0
  status_line postgres 127.0.0.1 "$PG_PORT" "dbs: $PG_SHARD_DBS" || ok=3
  if [ "$PG_REPLICA_PORT" != 0 ]; then
    status_line postgres-replica 127.0.0.1 "$PG_REPLICA_PORT" "streams from :$PG_PORT" || ok=3
  fi
  status_line redis 127.0.0.1 "$REDIS_PORT" || ok=3
  local name index
  for name in $(kafka_names); do
    index="$(kafka_index "$name")"
    status_line "$name" 127.0.0.1 $((KAFKA_PORT + 2 * index)) \
      "controller :$((KAFKA_CONTROLLER_PORT + 2 * index)), kafka $KAFKA_VERSION" || ok=3
  done
  status_line nginx 127.0.0.1 "$GATEWAY_PORT" "-> users $USERS_UPSTREAM, timeline $TIMELINE_UPSTREAM" || ok=3
  return "$ok"
}

# A listening port inside the kernel's ephemeral range can be taken by an outgoing
# connection (a client retrying it while the server is down connects to itself), and
# then the server cannot come back: refuse such a port up front (env.sh says more).
check_ports() {
  local low high port ports
  read -r low high </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || return 0
  ports="$PG_PORT $PG_REPLICA_PORT $REDIS_PORT $GATEWAY_PORT $USERS_API_PORT $TIMELINE_API_PORT"
  for ((port = 0; port < KAFKA_BROKERS; port++)); do
    ports="$ports $((KAFKA_PORT + 2 * port)) $((KAFKA_CONTROLLER_PORT + 2 * port))"
  done
  for port in ${REDIS_CLUSTER_PORTS:-}; do ports="$ports $port $((port + 10000))"; done
  for port in $ports; do
    if [ "$port" -ge "$low" ] && [ "$port" -le "$high" ]; then
      die "port $port lies in the kernel's ephemeral range ($low-$high): choose one below $low"
    fi
  done
}

cmd_start() {
  local t0
  t0="$(date +%s)"
  check_ports
  ensure_stack_dirs
  start_postgres
  start_postgres_replica
  start_redis
  start_redis_cluster
  start_kafka
  start_nginx
  say "infra up in $(( $(date +%s) - t0 ))s (logs in $LOG_DIR)"
  cmd_status || true
}

cmd_stop() {
  # Reverse order of start.
  stop_bg nginx 10 TERM                # fast shutdown of master + workers
  # All brokers at once: stopped one by one, the last would wait for a controller
  # majority that is gone, until the 60 s SIGKILL. Controlled shutdown takes seconds.
  local name
  for name in $(kafka_names); do stop_bg "$name" 60 TERM & done
  wait
  stop_redis_cluster
  stop_bg redis 10 TERM
  stop_bg postgres-replica 30 INT leader
  stop_bg postgres 30 INT leader       # SIGINT to the postmaster = "fast" shutdown
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  replica-delay) cmd_replica_delay "${2:-}" ;;
  *) echo "usage: $0 start|stop|status|replica-delay DELAY" >&2; exit 2 ;;
esac
