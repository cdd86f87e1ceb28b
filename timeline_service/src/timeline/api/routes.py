"""GET /api/v1/timeline."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from shared_schemas.cursors import CursorCodec, InvalidCursor, parse_limit
from shared_schemas.http_contract import CallerHeader, Limit, NextCursor, PrevCursor, errors
from shared_schemas.ids import parse_uuid
from shared_schemas.internal_api import TweetItem
from timeline.domain.errors import Invalid
from timeline.services.reader import Reader


class TimelinePage(msgspec.Struct):
    """What a page is, for the OpenAPI document: the handler writes these bytes itself."""

    tweets: list[TweetItem]
    next_cursor: str | None  # older items: null on the last page and on a refresh
    prev_cursor: str | None  # newer items: null when the page is empty (but for a refresh)


def _token(cursors: CursorCodec, position: uuid.UUID | None) -> bytes:
    return b'"' + cursors.encode(position).encode() + b'"' if position else b"null"


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
                {
                    400: "X-User-ID missing or not a UUID; a bad limit or cursor; both cursors.",
                    404: "No user has the X-User-ID.",
                }
            ),
        },
    )
    async def timeline(
        x_user_id: CallerHeader = None,
        limit: Limit = None,
        next_cursor: NextCursor = None,
        prev_cursor: PrevCursor = None,
    ) -> Response:
        """The caller's home timeline, newest first: down by `next_cursor`, or the items
        immediately newer than `prev_cursor` (a refresh)."""
        if not x_user_id:
            raise Invalid("X-User-ID header is required")
        user = parse_uuid(x_user_id)
        if user is None:
            raise Invalid("X-User-ID must be a UUID")
        if next_cursor and prev_cursor:
            raise Invalid("give next_cursor or prev_cursor, not both")
        try:
            size = parse_limit(limit)
            older_than = cursors.decode(next_cursor) if next_cursor else None
            newer_than = cursors.decode(prev_cursor) if prev_cursor else None
        except (ValueError, InvalidCursor) as exc:
            raise Invalid(str(exc)) from exc
        if newer_than is not None:
            page = await reader.newer(user, newer_than, size)
        else:
            page = await reader.page(user, older_than, size)
        # The items are stored as the exact JSON the client gets: join, don't re-encode.
        body = (
            b'{"tweets":['
            + b",".join(page.items)
            + b'],"next_cursor":'
            + _token(cursors, page.older)
            + b',"prev_cursor":'
            + _token(cursors, page.newest)
            + b"}"
        )
        return Response(body, media_type="application/json")

    return timeline
