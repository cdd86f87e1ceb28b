"""The composition root of the Users API: settings, stores, routes, error mapping."""

from __future__ import annotations

import asyncio
import logging

from litestar import Litestar
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig

from shared_schemas import heap, logs
from shared_schemas.cursors import CursorCodec, check_secret
from shared_schemas.http_observability import MetricsController, RequestRecords, health, instrument
from users import settings as settings_module
from users.adapters.db import ShardedDatabase
from users.adapters.timeline_client import OwnTimeline
from users.api import errors, probes
from users.api.internal import InternalController
from users.api.public import FollowController, TweetController, UsersController


def create_app(settings: settings_module.Settings | None = None) -> Litestar:
    settings = settings or settings_module.load()
    logs.configure(settings.log_level, requests=True)  # first: a refusal below is a JSON line too
    check_secret(settings.cursor_secret, "USERS_CURSOR_SECRET", settings.local_stack)
    records = RequestRecords(logging.getLogger("users.request"))
    db = ShardedDatabase(settings)
    own_timeline = OwnTimeline(settings.timeline_api_url, settings.own_timeline_timeout)

    watching: list[asyncio.Task[None]] = []

    def follow_the_shard_map() -> None:
        # The shard map is data: a move reaches this process without a restart.
        watching.append(asyncio.ensure_future(db.watch(settings.shard_map_refresh_seconds)))

    async def close() -> None:
        for task in watching:
            task.cancel()
        await own_timeline.close()
        await db.dispose()

    return Litestar(
        route_handlers=[
            UsersController,
            FollowController,
            TweetController,
            InternalController,
            health,
            probes.ready,
            MetricsController,
        ],
        middleware=[instrument("users_service", records)],
        exception_handlers=errors.HANDLERS,
        state=State(
            {
                "db": db,
                "cursors": CursorCodec(settings.cursor_secret),
                "max_following": settings.max_following,
                "own_timeline": own_timeline,
            }
        ),
        # Last of the start-up work: the start-up heap frozen, young collections rarer
        # (shared_schemas.heap).
        on_startup=[follow_the_shard_map, heap.settle],
        on_shutdown=[close, records.flush],
        openapi_config=OpenAPIConfig(title="Users Service", version="1.0.0", path="/api/v1/docs/users"),
        logging_config=None,
    )
