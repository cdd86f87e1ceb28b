"""The Timeline API application."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Coroutine
from typing import Any

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from shared_schemas import heap, logs
from shared_schemas.cursors import CursorCodec, check_secret
from shared_schemas.http_observability import MetricsController, RequestRecords, health, instrument
from timeline import bootstrap
from timeline import settings as settings_module
from timeline.api import errors, probes
from timeline.api.internal import own_writes
from timeline.api.routes import stream_route, timeline_route
from timeline.services.live import LiveTimeline


def create_app(settings: settings_module.Settings | None = None) -> Litestar:
    settings = settings or settings_module.load()
    logs.configure(settings.log_level, requests=True)  # first: a refusal below is a JSON line too
    check_secret(settings.cursor_secret, "TIMELINE_CURSOR_SECRET", settings.local_stack)
    records = RequestRecords(logging.getLogger("timeline.request"))
    parts = bootstrap.build(settings)
    cursors = CursorCodec(settings.cursor_secret)
    return Litestar(
        route_handlers=[
            timeline_route(parts.reader, cursors),
            stream_route(parts.live, cursors),
            own_writes(parts.fanout),
            health,
            probes.ready,
            MetricsController,
        ],
        middleware=[instrument("timeline_service", records)],
        exception_handlers=errors.HANDLERS,
        state=State({"redis": parts.redis}),  # for /ready
        # Last of the start-up work: the start-up heap frozen, young collections rarer
        # (shared_schemas.heap).
        on_startup=[lambda: _end_streams_on_stop(parts.live), lambda: _background(parts.warmup.run()), heap.settle],
        on_shutdown=[_stop_background, parts.close, records.flush],
        openapi_config=OpenAPIConfig(title="Timeline Service", version="1.0.0", path="/api/v1/docs/timeline"),
        logging_config=None,
    )


_tasks: set[asyncio.Task] = set()


def _background(work: Coroutine[Any, Any, None]) -> None:
    """A task that lives as long as the process (the warm-up's watch for a lost store)."""
    _tasks.add(asyncio.get_running_loop().create_task(work))


async def _stop_background() -> None:
    for task in _tasks:
        task.cancel()
    await asyncio.gather(*_tasks, return_exceptions=True)
    _tasks.clear()


def _end_streams_on_stop(live: LiveTimeline) -> None:
    """uvicorn waits for open connections before it stops, and a live stream never ends
    by itself: on SIGTERM or SIGINT, end every stream (cleanly: its client reconnects and
    resumes from its last id), then let uvicorn's own handler stop the server."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: object, previous: object = previous) -> None:
            loop.call_soon_threadsafe(live.end_all)
            if callable(previous):
                previous(signum, frame)

        signal.signal(sig, handler)
