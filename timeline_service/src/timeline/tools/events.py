"""Look inside the Kafka topics: `python -m timeline.tools.events list|tail TOPIC`.

  list                     every topic with its partitions, end offsets and, for each
                           consumer group reading it, the group's lag
  tail TOPIC [--from-beginning] [--max N] [--idle-seconds S]
                           print each event as one line of readable JSON (key, partition,
                           offset, and the decoded event); from the end unless told
                           otherwise; stops after N events or S idle seconds if given
`make events` and `make events TOPIC=tweets.v1` run these against the local stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


async def list_topics() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP)
    await admin.start()
    await consumer.start()
    try:
        topics = sorted(t for t in await consumer.topics() if not t.startswith("__"))
        groups = [g[0] for g in await admin.list_consumer_groups()]
        offsets = {g: await admin.list_consumer_group_offsets(g) for g in groups}
        for topic in topics:
            partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
            ends = await consumer.end_offsets(partitions)
            line = {"topic": topic, "partitions": len(partitions), "messages_end": sum(ends.values())}
            for group, committed in offsets.items():
                mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
                if mine:
                    line[f"lag[{group}]"] = sum(ends[tp] - mine.get(tp, 0) for tp in partitions)
            print(json.dumps(line))
    finally:
        await consumer.stop()
        await admin.close()


def _readable(raw: bytes | None) -> object:
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")  # a poison message: show it as text


async def tail(topic: str, from_beginning: bool, limit: int | None, idle_seconds: float | None) -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(partitions)
        if from_beginning:
            await consumer.seek_to_beginning(*partitions)
        else:
            await consumer.seek_to_end(*partitions)
            for tp in partitions:  # resolve the positions now, so "ready" means ready
                await consumer.position(tp)
        print(f"tailing {topic} ({len(partitions)} partitions)", file=sys.stderr, flush=True)
        shown = 0
        while limit is None or shown < limit:
            batch = await consumer.getmany(timeout_ms=int((idle_seconds or 3600) * 1000))
            if not batch:
                if idle_seconds is not None:
                    return
                continue
            for records in batch.values():
                for r in records:
                    if limit is not None and shown >= limit:
                        return
                    line = {
                        "partition": r.partition,
                        "offset": r.offset,
                        "key": r.key.decode(errors="replace") if r.key else None,
                        "event": _readable(r.value),
                    }
                    if r.headers:  # a dead letter's origin and error
                        line["headers"] = {name: value.decode(errors="replace") for name, value in r.headers}
                    print(json.dumps(line, ensure_ascii=False), flush=True)
                    shown += 1
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    found = consumer.partitions_for_topic(topic)
    if not found:
        # partitions_for_topic reads the client's cached metadata, which holds only the
        # topics it was asked about: ask the broker for this one.
        consumer._client.add_topic(topic)
        await consumer._client.force_metadata_update()
        found = consumer.partitions_for_topic(topic)
    if not found:
        raise SystemExit(f"no such topic: {topic}")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m timeline.tools.events", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="topics, offsets and consumer lag")
    follow = commands.add_parser("tail", help="print a topic's events as JSON lines")
    follow.add_argument("topic")
    follow.add_argument("--from-beginning", action="store_true")
    follow.add_argument("--max", type=int, default=None)
    follow.add_argument("--idle-seconds", type=float, default=None)
    args = parser.parse_args()
    try:
        if args.command == "list":
            asyncio.run(list_topics())
        else:
            asyncio.run(tail(args.topic, args.from_beginning, args.max, args.idle_seconds))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
