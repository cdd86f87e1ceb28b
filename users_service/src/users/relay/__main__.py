"""Run the relay: `python -m users.relay`. SIGTERM finishes the batch in hand, then exits."""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from aiokafka import AIOKafkaProducer

from shared_schemas import heap, logs, process_http
from users import settings as settings_module
from users.adapters.db import ShardedDatabase
from users.adapters.kafka import relay_producer
from users.relay.outbox_relay import OutboxRelay
from users.services import follow_edges

log = logging.getLogger("users.relay")


async def main() -> None:
    settings = settings_module.load()
    logs.configure(settings.log_level)
    started = False
    http = None
    if settings.relay_metrics_port:
        http = await process_http.serve(settings.relay_metrics_port, settings.relay_metrics_addr, lambda: started)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    db = ShardedDatabase(settings)

    def new_producer() -> AIOKafkaProducer:
        return relay_producer(settings)

    producer = new_producer()
    while not stop.is_set():  # Kafka not up yet: wait for it, as for any store
        try:
            await producer.start()
            break
        except Exception as exc:  # noqa: BLE001
            log.warning("cannot reach kafka; retrying", extra={"error": repr(exc)})
            await asyncio.sleep(settings.relay_poll_seconds)
    unreachable = follow_edges.Unreachable(follow_edges.REST_SECONDS)
    relay = OutboxRelay(
        db,
        producer,
        settings.relay_batch_size,
        settings.relay_poll_seconds,
        settings.db_connect_timeout,
        # The follow graph's second half ("who follows Y", on Y's shard) is written from
        # the outbox, before the follow's event is published (services/follow_edges.py);
        # a followee's database down holds back its followees' events only.
        before_publish=lambda rows: follow_edges.apply(db, rows, unreachable),
        held_seconds=follow_edges.REST_SECONDS,
        linger_seconds=settings.relay_linger_seconds,
        new_producer=new_producer,
        ack_timeout=settings.kafka_request_timeout_ms / 1000,
    )
    # The shard map is data: a move to a new database reaches this relay without a restart.
    watching = asyncio.ensure_future(db.watch(settings.shard_map_refresh_seconds))
    await relay.listen()
    started = True
    log.info("relay started", extra={"shards": len(settings.shard_dsns), "metrics_port": settings.relay_metrics_port})
    heap.settle()
    try:
        await relay.run(stop)
    finally:
        watching.cancel()
        await relay.close()
        await relay.producer.stop()
        await db.dispose()
        if http is not None:
            await http.cleanup()
        log.info("relay stopped")


if __name__ == "__main__":
    # uvloop, as the APIs run under uvicorn: less CPU a message (docs/decisions/0011).
    uvloop.run(main())
