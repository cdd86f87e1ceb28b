#!/bin/sh
# Start one Redis Cluster node (the command of the redis-cluster StatefulSet).
# A restarted pod gets a new IP, but /data/nodes.conf still lists the old one for this
# node ('myself'): rewrite it first, so the node announces its current address and the
# other nodes learn it by gossip (IPv4 pod networks).
set -eu
: "${POD_IP:?}" "${POD_NAME:?}" "${POD_NAMESPACE:?}" "${REDIS_SERVICE:?}"
if [ -f /data/nodes.conf ]; then
  sed -i -E "/myself/ s/[0-9]{1,3}(\.[0-9]{1,3}){3}/${POD_IP}/" /data/nodes.conf
fi
exec redis-server /conf/redis.conf \
  --cluster-announce-ip "$POD_IP" \
  --cluster-announce-hostname "$POD_NAME.$REDIS_SERVICE.$POD_NAMESPACE.svc" \
  --maxmemory "${REDIS_MAXMEMORY:-1gb}"
