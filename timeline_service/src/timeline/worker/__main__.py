"""Run a fan-out worker: `python -m timeline.worker`. Several share the partitions.

SIGTERM sets the stop event: the batch in hand is applied and committed (a batch
waiting to retry stops waiting), then the consumer leaves the group cleanly. Kafka
unreachable at start is waited for, as any store is: the worker comes up with it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import uvloop
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared_schemas import heap, logs, process_http, topics
from timeline import bootstrap
from timeline import settings as settings_module
from timeline.settings import Settings
from timeline.worker import rebootstrap
from timeline.worker.consumer import Worker
from timeline.worker.retry import Backoff

log = logging.getLogger("timeline.worker")


async def until_started(what: str, start: Callable[[], Awaitable[None]], backoff: Backoff, stop: asyncio.Event) -> None:
    failures = 0
    while True:
        try:
            await start()
            return
        except Exception as exc:  # noqa: BLE001 - e.g. the broker not up yet
            failures += 1
            delay = backoff.delay(failures)
            log.warning(
                "cannot start; retrying",
                extra={"what": what, "attempt": failures, "retry_in_s": round(delay, 3), "error": repr(exc)},
            )
            try:
                await asyncio.wait_for(stop.wait(), delay)
                raise SystemExit(0)  # SIGTERM before the stores came up: nothing to drain
            except TimeoutError:
                pass


def kafka_clients(settings: Settings) -> tuple[AIOKafkaConsumer, AIOKafkaProducer]:
    """The worker's consumer (its group's member) and producer (dead letters)."""
    timeout_ms = settings.kafka_request_timeout_ms
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.consumer_group,
        enable_auto_commit=False,  # commit after the effect, never before
        # A partition resumes (after its batch) while a fetch for the others may be
        # waiting for data; a short long-poll lets the resumed one join the next fetch
        # quickly instead of after the default 500 ms (25 by default: a longer one costs
        # less CPU idle and delays every delivery; docs/benchmarks.md, "The worker's
        # Kafka long-poll, measured and made a setting").
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        # And a fetch waits that long for 64 KiB, not for the first record: under load,
        # fewer fetches, each with more records (longer runs to fan out together), cost
        # Kafka less CPU per tweet (docs/decisions/0022). Idle, a record waits that
        # long-poll at most.
        fetch_min_bytes=65536,
        auto_offset_reset="earliest",
        request_timeout_ms=timeout_ms,
        # A view of the cluster taken while one broker alone was up would otherwise
        # last five minutes, and the consumer is stuck if that broker dies meanwhile
        # (docs/decisions/0019).
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=timeout_ms,
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
    )
    return consumer, producer


async def main() -> None:
    settings = settings_module.load()
    logs.configure(settings.log_level)
    started = False
    http = None
    if settings.worker_metrics_port:
        http = await process_http.serve(settings.worker_metrics_port, settings.worker_metrics_addr, lambda: started)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parts = bootstrap.build(settings)
    timeout_ms = settings.kafka_request_timeout_ms
    consumer, producer = kafka_clients(settings)
    backoff = Backoff(settings.retry_backoff_seconds, settings.retry_max_backoff_seconds)
    worker = Worker(consumer, producer, parts.fanout, backoff, commit_timeout=timeout_ms / 1000)
    worker.subscribe()
    await until_started("kafka consumer", consumer.start, backoff, stop)
    await until_started("kafka producer", producer.start, backoff, stop)
    started = True
    log.info("worker started", extra={"group": settings.consumer_group, "topics": list(topics.TIMELINE_SOURCES)})
    heap.settle()
    # Views of the cluster that name only dead brokers are taken again (decision 0019).
    views = asyncio.create_task(rebootstrap.Views({"consumer": consumer, "producer": producer}, backoff).run(stop))
    try:
        await worker.run(stop)
    finally:
        stop.set()
        await views
        await consumer.stop()  # leaves the group; offsets were committed per batch
        await producer.stop()
        await parts.close()
        if http is not None:
            await http.cleanup()
        log.info("worker stopped")


if __name__ == "__main__":
    # uvloop, as the APIs run under uvicorn: less CPU a message (docs/decisions/0011).
    uvloop.run(main())
