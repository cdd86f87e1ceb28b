"""GET /api/v1/timeline."""

from __future__ import annotations

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from shared_schemas.cursors import CursorCodec, InvalidCursor, parse_limit
from shared_schemas.http_contract import CallerHeader, Limit, NextCursor, errors
from shared_schemas.ids import parse_uuid
from shared_schemas.internal_api import TweetItem
from timeline.domain.errors import Invalid
from timeline.services.reader import Reader


class TimelinePage(msgspec.Struct):
    """What a page is, for the OpenAPI document: the handler writes these bytes itself."""

    tweets: list[TweetItem]
    next_cursor: str | None


def timeline_route(reader: Reader, cursors: CursorCodec) -> HTTPRouteHandler:
    """The route, with its reader and cursor codec bound once: the hottest path of the
    system, and Litestar's injection of `state` cost more per read than the closure
    (see docs/benchmarks.md)."""

    @get(
        "/api/v1/timeline",
        operation_id="getTimeline",
        tags=["timeline"],
        responses={
            200: ResponseSpec(TimelinePage, description="A page, newest first.", generate_examples=False),
            **errors(
                {400: "X-User-ID missing or not a UUID; a bad limit or cursor.", 404: "No user has the X-User-ID."}
            ),
        },
    )
    async def timeline(x_user_id: CallerHeader = None, limit: Limit = None, next_cursor: NextCursor = None) -> Response:
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
