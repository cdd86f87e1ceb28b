"""The floor: a Litestar endpoint that does nothing but the two Redis reads of a page
(the ids of the home list, then MGET of their cached items) and returns the bytes.

Served by deploy/local/api-server.sh like the Timeline API, so the difference between
the two is what the service's own logic (the page script, the celebrity merge, cursors,
metrics, the access log, error handling) costs on top of Python and Redis.
"""

from __future__ import annotations

import os
from typing import Annotated

from litestar import Litestar, Response, get
from litestar.params import Parameter
from redis.asyncio import Redis

from shared_schemas import heap
from shared_schemas.ids import parse_uuid
from timeline.adapters.store import keys

UserHeader = Annotated[str | None, Parameter(header="X-User-ID", required=False)]


def create_app() -> Litestar:
    redis = Redis.from_url(os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0"))

    @get("/api/v1/timeline")
    async def timeline(x_user_id: UserHeader = None) -> Response:
        user = parse_uuid(x_user_id or "")
        if user is None:
            return Response(b'{"detail":"X-User-ID must be a UUID"}', status_code=400, media_type="application/json")
        ids = await redis.lrange(keys.home(user).ids, 0, 19)
        items = await redis.mget([keys.item(i) for i in ids]) if ids else []
        body = b'{"tweets":[' + b",".join(i for i in items if i) + b'],"next_cursor":null}'
        return Response(body, media_type="application/json")

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    async def close() -> None:
        await redis.aclose()

    # Frozen at start-up as the services are (their app.py), so that both are served alike.
    return Litestar(
        [timeline, health], on_startup=[heap.settle], on_shutdown=[close], logging_config=None, openapi_config=None
    )
