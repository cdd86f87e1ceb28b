"""The Users API's readiness (liveness and /metrics are both services' alike:
shared_schemas.http_observability)."""

from __future__ import annotations

from litestar import get
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException
from sqlalchemy import text


@get("/ready", operation_id="ready", include_in_schema=False)
async def ready(state: State) -> dict[str, str]:
    """Ready when the shard map was read from the catalog and every database answers:
    before that, the process would route by the map a new data set starts with."""
    if not state.db.map.version:
        raise ServiceUnavailableException("the shard map has not been read from database 0 yet")
    for engine in state.db.primaries:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    return {"status": "ready"}
