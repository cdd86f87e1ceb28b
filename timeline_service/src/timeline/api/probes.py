"""The Timeline API's readiness (liveness and /metrics are both services' alike:
shared_schemas.http_observability)."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State


@get("/ready", operation_id="ready", include_in_schema=False)
async def ready(state: State) -> dict[str, str]:
    """Ready when Redis answers: pages are served from Redis alone. The Users Service is
    needed only on a miss, and its outage must not take timeline reads out of service."""
    await state.redis.ping()
    return {"status": "ready"}
