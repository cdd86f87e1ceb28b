#!/usr/bin/env bash
# Run Kafka's own command-line tools with the jars install.sh put in
# $STACK_DIR/kafka/libs (there is no Kafka tarball, hence no bin/kafka-*.sh).
#
#   deploy/local/kafka-cli.sh topics --bootstrap-server 127.0.0.1:19092 --list
#   deploy/local/kafka-cli.sh console-consumer --bootstrap-server 127.0.0.1:19092 \
#       --topic tweets.v1 --from-beginning
#   (a record produced by hand into tweets.v1 that is no event ends in the dead letters)
#   deploy/local/kafka-cli.sh consumer-groups --bootstrap-server 127.0.0.1:19092 --describe --all-groups
#   deploy/local/kafka-cli.sh class <fully.qualified.Main> ARGS...   # anything else
#
# Subcommand names are those of bin/kafka-<name>.sh. Main classes checked
# against the Kafka 4.3 and 4.4 jars; most tools live in kafka-tools-<v>.jar, the
# storage tool still in kafka_2.13-<v>.jar.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  echo "subcommands: ${!MAIN[*]} class" | fold -s -w 100 >&2
  exit 2
}

declare -A MAIN=(
  [topics]=org.apache.kafka.tools.TopicCommand
  [console-consumer]=org.apache.kafka.tools.consumer.ConsoleConsumer
  [console-producer]=org.apache.kafka.tools.ConsoleProducer
  [consumer-groups]=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand
  [configs]=org.apache.kafka.tools.ConfigCommand
  [get-offsets]=org.apache.kafka.tools.GetOffsetShell
  [delete-records]=org.apache.kafka.tools.DeleteRecordsCommand
  [log-dirs]=org.apache.kafka.tools.LogDirsCommand
  [metadata-quorum]=org.apache.kafka.tools.MetadataQuorumCommand
  [features]=org.apache.kafka.tools.FeatureCommand
  [cluster]=org.apache.kafka.tools.ClusterTool
  [broker-api-versions]=org.apache.kafka.tools.BrokerApiVersionsCommand
  [transactions]=org.apache.kafka.tools.TransactionsCommand
  [leader-election]=org.apache.kafka.tools.LeaderElectionCommand
  [reassign-partitions]=org.apache.kafka.tools.reassign.ReassignPartitionsCommand
  [acls]=org.apache.kafka.tools.AclCommand
  [groups]=org.apache.kafka.tools.GroupsCommand
  [storage]=kafka.tools.StorageTool
)
# ConfigCommand moved from the Scala core (kafka.admin) to the tools jar in Kafka 4.4.
case "$KAFKA_VERSION" in 4.[0-3].*) MAIN[configs]=kafka.admin.ConfigCommand ;; esac

[ "$#" -ge 1 ] || usage
sub="$1"; shift
case "$sub" in
  -h|--help|help) usage ;;
  class)
    [ "$#" -ge 1 ] || usage
    main="$1"; shift ;;
  *)
    [ -n "${MAIN[$sub]:-}" ] || { echo "unknown subcommand: $sub" >&2; usage; }
    main="${MAIN[$sub]}" ;;
esac

LIBS="$STACK_DIR/kafka/libs"
[ -f "$LIBS/.installed" ] || { echo "no Kafka jars in $LIBS: run deploy/local/install.sh" >&2; exit 1; }

# Small heap and a JIT/GC tuned for a short-lived JVM: the tools start faster.
# Log level WARN keeps the tools' own output (messages, tables) readable.
# shellcheck disable=SC2086  # KAFKA_CLI_OPTS is a list of JVM flags
exec java ${KAFKA_CLI_OPTS:--Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -Djava.awt.headless=true \
  -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" \
  -Dkafka.log.level="${KAFKA_CLI_LOG_LEVEL:-WARN}" \
  -cp "$LIBS/*" "$main" "$@"
