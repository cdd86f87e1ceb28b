#!/bin/sh
# One-shot (the redis-cluster-create Job): join the StatefulSet's nodes into one Redis
# Cluster, REDIS_REPLICAS_PER_MASTER replicas per master. Idempotent: exits 0 at once
# when the cluster is already formed. Node addresses are resolved to IPs first
# (CLUSTER MEET takes IPs).
set -eu
: "${REDIS_NODES:?}" "${REDIS_REPLICAS_PER_MASTER:?}" "${REDIS_STATEFULSET:?}" "${REDIS_SERVICE:?}" "${POD_NAMESPACE:?}"

state() { redis-cli -h "$1" cluster info | tr -d '\r' | awk -F: -v k="$2" '$1 == k {print $2}'; }

addrs=""
first=""
i=0
while [ "$i" -lt "$REDIS_NODES" ]; do
  host="$REDIS_STATEFULSET-$i.$REDIS_SERVICE.$POD_NAMESPACE.svc"
  until ip=$(getent hosts "$host" | awk '{print $1; exit}') && [ -n "$ip" ] \
      && [ "$(redis-cli -h "$ip" ping 2>/dev/null)" = PONG ]; do
    echo "waiting for $host"
    sleep 2
  done
  [ -n "$first" ] || first="$ip"
  addrs="$addrs $ip:6379"
  i=$((i + 1))
done

if [ "$(state "$first" cluster_state)" = ok ]; then
  echo "cluster already formed ($(state "$first" cluster_known_nodes) nodes)"
  exit 0
fi
if [ "$(state "$first" cluster_known_nodes)" -gt 1 ]; then
  # A previous run got part-way: wait for it to converge, never create on top of it.
  for _ in $(seq 1 30); do
    [ "$(state "$first" cluster_state)" = ok ] && { echo "cluster converged"; exit 0; }
    sleep 2
  done
  echo "node 0 is in a cluster that is not ok; repair by hand (redis-cli --cluster fix)" >&2
  exit 1
fi

# shellcheck disable=SC2086  # $addrs is a list of words on purpose
redis-cli --cluster create $addrs --cluster-replicas "$REDIS_REPLICAS_PER_MASTER" --cluster-yes
for _ in $(seq 1 60); do
  [ "$(state "$first" cluster_state)" = ok ] && { echo "cluster formed"; exit 0; }
  sleep 2
done
echo "cluster did not reach cluster_state:ok" >&2
exit 1
