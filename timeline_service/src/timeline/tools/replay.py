"""Apply again what the dead-letter topic holds: `python -m timeline.tools.replay`.

  python -m timeline.tools.replay [--from-offset N] [--to-offset N] [--key KEY] [--dry-run]

Reads `timeline.deadletter.v1` from N (default: its beginning) up to M (default: its
end when the command started), keeps the records of KEY (a user id) if given, and for
each one prints a JSON line: its offset, key, origin, and what became of it: applied,
skipped (the tweet deleted or the follow undone since: replaying would undo that), or
still undecodable (left parked). A summary line ends the run, with the offset to start
from next time. Replaying twice is harmless: every handler is idempotent. Exit status:
0, or 1 when a record failed (a store down: run it again). `make replay` runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared_schemas import codec, topics
from timeline import bootstrap
from timeline import settings as settings_module
from timeline.services.replay import replay


def original_value(record: ConsumerRecord) -> bytes | None:
    """The parked record's value as it was consumed. Records parked before the value was
    kept verbatim (with dlq.* headers) held a JSON envelope with the value as text."""
    if any(name == "dlq.topic" for name, _ in record.headers or ()) or record.value is None:
        return record.value
    try:
        envelope = json.loads(record.value)
    except ValueError:
        return record.value
    if isinstance(envelope, dict) and "topic" in envelope and "value" in envelope:
        return envelope["value"].encode() if isinstance(envelope["value"], str) else None
    return record.value


def origin(record: ConsumerRecord) -> dict[str, str]:
    return {
        name.removeprefix("dlq."): value.decode(errors="replace")
        for name, value in record.headers or ()
        if name in ("dlq.topic", "dlq.partition", "dlq.offset", "dlq.error")
    }


async def run(first: int | None, last: int | None, key: str | None, dry_run: bool) -> int:
    settings = settings_module.load()
    parts = bootstrap.build(settings)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    await consumer.start()
    outcomes: Counter[str] = Counter()
    try:
        tp = TopicPartition(topics.TIMELINE_DEAD_LETTER.name, 0)  # one partition: parked in order
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp] if last is None else last + 1
        if first is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, first)
        while (position := await consumer.position(tp)) < end:
            batch = (await consumer.getmany(tp, timeout_ms=2000)).get(tp, [])
            if not batch and await consumer.position(tp) == position:
                break  # nothing more arrives (e.g. an offset range past the end)
            for record in batch:
                if record.offset >= end or (key is not None and (record.key or b"").decode(errors="replace") != key):
                    continue
                outcome = await _one(record, parts, dry_run)
                outcomes[outcome.split(":")[0]] += 1
                print(
                    json.dumps(
                        {
                            "offset": record.offset,
                            "key": (record.key or b"").decode(errors="replace"),
                            "origin": origin(record),
                            "outcome": outcome,
                        }
                    ),
                    flush=True,
                )
        print(json.dumps({"summary": dict(outcomes), "next_offset": end}), flush=True)
    finally:
        await consumer.stop()
        await parts.close()
    return 1 if outcomes["failed"] else 0


async def _one(record: ConsumerRecord, parts: bootstrap.Components, dry_run: bool) -> str:
    try:
        event = codec.decode(original_value(record))
    except codec.Undecodable as exc:
        return f"undecodable: {exc} (left parked)"
    if dry_run:
        return f"would replay {type(event).__name__}"
    try:
        return await replay(event, parts.fanout, parts.users)
    except Exception as exc:  # noqa: BLE001 - a store down: say so, go on, exit 1
        return f"failed: {exc!r}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m timeline.tools.replay", description=__doc__.splitlines()[0])
    parser.add_argument("--from-offset", type=int, default=None, help="first offset (default: the beginning)")
    parser.add_argument("--to-offset", type=int, default=None, help="last offset, inclusive (default: the end)")
    parser.add_argument("--key", default=None, help="only the records of this key (a user id)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be replayed, change nothing")
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.from_offset, args.to_offset, args.key, args.dry_run)))


if __name__ == "__main__":
    main()
