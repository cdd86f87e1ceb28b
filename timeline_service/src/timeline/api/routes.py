"""GET /api/v1/timeline."""

from __future__ import annotations

from typing import Annotated

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import Parameter

from shared_schemas.cursors import CursorCodec, InvalidCursor, parse_limit
from shared_schemas.ids import parse_uuid
from timeline.domain.errors import Invalid
from timeline.services.reader import Reader

UserHeader = Annotated[str | None, Parameter(header="X-User-ID", required=False)]
Limit = Annotated[str | None, Parameter(query="limit", required=False)]
Cursor = Annotated[str | None, Parameter(query="next_cursor", required=False)]


def timeline_route(reader: Reader, cursors: CursorCodec) -> HTTPRouteHandler:
    """The route, with its reader and cursor codec bound once: the hottest path of the
    system, and Litestar's injection of `state` cost more per read than the closure
    (see docs/benchmarks.md)."""

    @get("/api/v1/timeline", operation_id="getTimeline", tags=["timeline"])
    async def timeline(x_user_id: UserHeader = None, limit: Limit = None, next_cursor: Cursor = None) -> Response:
        """The caller's home timeline, newest first, paged by `next_cursor`."""
        if not x_user_id:
            raise Invalid("X-User-ID header is required")
        user = parse_uuid(x_user_id)
        if user is None:
            raise Invalid("X-User-ID must be a UUID")
        try:
            size = parse_limit(limit)
            older_than = cursors.decode(next_cursor) if next_cursor else None
        except (ValueError, InvalidCursor) as exc:
            raise Invalid(str(exc)) from exc
        items, last = await reader.page(user, older_than, size)
        cursor = b'"' + cursors.encode(last).encode() + b'"' if last else b"null"
        # The items are stored as the exact JSON the client gets: join, don't re-encode.
        body = b'{"tweets":[' + b",".join(items) + b'],"next_cursor":' + cursor + b"}"
        return Response(body, media_type="application/json")

    return timeline
