"""GET /api/v1/timeline and GET /api/v1/timeline/stream."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter
from litestar.response import Stream

from shared_schemas.cursors import CursorCodec, InvalidCursor, parse_limit
from shared_schemas.http_contract import CallerHeader, Limit, NextCursor, PrevCursor, caller_problem, errors
from shared_schemas.internal_api import TweetItem
from timeline.domain.errors import Invalid
from timeline.domain.refresh import Position
from timeline.services.live import Event, LiveTimeline
from timeline.services.reader import Reader


class TimelinePage(msgspec.Struct):
    """What a page is, for the OpenAPI document: the handler writes these bytes itself."""

    tweets: list[TweetItem]
    next_cursor: str | None  # older items: null on the last page and on a refresh
    prev_cursor: str | None  # newer items: null when the page is empty (but for a refresh)


def _caller(x_user_id: str | None) -> uuid.UUID:
    user, problem = caller_problem(x_user_id)
    if user is None:
        raise Invalid(problem)
    return user


def _token(cursors: CursorCodec, position: uuid.UUID | None) -> bytes:
    return b'"' + cursors.encode(position).encode() + b'"' if position else b"null"


def _refresh_token(cursors: CursorCodec, position: Position | None) -> bytes:
    return b'"' + cursors.encode_ids(position.floor, position.held).encode() + b'"' if position else b"null"


def timeline_route(reader: Reader, cursors: CursorCodec) -> HTTPRouteHandler:
    """The route, with its reader and cursor codec bound once: the hottest path of the
    system, and Litestar's injection of `state` costs more per read than the closure
    (docs/benchmarks.md, "The read path")."""

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
        user = _caller(x_user_id)
        if next_cursor and prev_cursor:
            raise Invalid("give next_cursor or prev_cursor, not both")
        try:
            size = parse_limit(limit)
            older_than = cursors.decode(next_cursor) if next_cursor else None
            newer_than, held = cursors.decode_held(prev_cursor) if prev_cursor else (None, ())
        except (ValueError, InvalidCursor) as exc:
            raise Invalid(str(exc)) from exc
        if newer_than is not None:
            page = await reader.newer(user, newer_than, size, held)
        else:
            page = await reader.page(user, older_than, size)
        # The items are stored as the exact JSON the client gets: join, don't re-encode.
        body = (
            b'{"tweets":['
            + b",".join(page.items)
            + b'],"next_cursor":'
            + _token(cursors, page.older)
            + b',"prev_cursor":'
            + _refresh_token(cursors, page.refresh)
            + b"}"
        )
        return Response(body, media_type="application/json")

    return timeline


LastEventId = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        required=False,
        description="The `id` of the last event received: the stream first replays what came since.",
        schema_extra={"one_of": None, "type": "string"},
    ),
]
_STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def stream_route(live: LiveTimeline, cursors: CursorCodec) -> HTTPRouteHandler:
    @get(
        "/api/v1/timeline/stream",
        operation_id="streamTimeline",
        tags=["timeline"],
        responses={
            200: ResponseSpec(
                str,
                description=(
                    "Server-Sent Events, open until the client leaves: `tweet` (id: a position to resume"
                    " from, data: an item), `delete` (data: {tweet_id}), `gap` (data: {prev_cursor}), and a"
                    " keep-alive comment at least every 15 seconds."
                ),
                media_type="text/event-stream",
                generate_examples=False,
            ),
            **errors(
                {
                    400: "X-User-ID missing or not a UUID; a Last-Event-ID the server did not issue.",
                    404: "No user has the X-User-ID.",
                    429: "More than 4 open streams for this caller, or too many requests.",
                }
            ),
        },
    )
    async def stream(x_user_id: CallerHeader = None, last_event_id: LastEventId = None) -> Stream:
        """The caller's timeline as it changes (Server-Sent Events), resumable."""
        user = _caller(x_user_id)
        try:
            last_seen = cursors.decode(last_event_id) if last_event_id else None
        except InvalidCursor as exc:
            raise Invalid(f"Last-Event-ID: {exc}") from exc
        events = await live.start(user, last_seen)
        return Stream(_sse(events, cursors), media_type="text/event-stream", headers=_STREAM_HEADERS)

    return stream


async def _sse(events: AsyncIterator[Event], cursors: CursorCodec) -> AsyncIterator[bytes]:
    yield b": open\n\n"  # the headers and a first byte go out at once
    async for event in events:
        if event.kind == "tweet":
            token = cursors.encode(event.tweet_id).encode()  # type: ignore[arg-type]
            yield b"event: tweet\nid: " + token + b"\ndata: " + event.item + b"\n\n"
        elif event.kind == "position":  # an id alone: the client's Last-Event-ID, no event
            yield b"id: " + cursors.encode(event.tweet_id).encode() + b"\n\n"  # type: ignore[arg-type]
        elif event.kind == "delete":
            yield b'event: delete\ndata: {"tweet_id":"' + str(event.tweet_id).encode() + b'"}\n\n'
        elif event.kind == "gap":
            token = cursors.encode(event.tweet_id).encode()  # type: ignore[arg-type]
            yield b'event: gap\ndata: {"prev_cursor":"' + token + b'"}\n\n'
        else:
            yield b": keep-alive\n\n"
