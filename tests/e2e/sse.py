"""A Server-Sent Events client for the stream tests: a real HTTP client reading the
stream through the gateway, parsed as the SSE specification says (fields, blank line
between events, comments)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx


@dataclass
class SseEvent:
    kind: str  # the `event:` field ("message" when absent), or "comment"
    id: str | None = None
    data: str = ""

    def json(self) -> dict:
        return json.loads(self.data)


@dataclass
class Stream:
    """An open stream: events arrive in `events` as they are parsed, by a reader task."""

    response: httpx.Response
    events: asyncio.Queue[SseEvent | None] = field(default_factory=asyncio.Queue)
    ended: bool = False  # the server ended the response cleanly
    # The spec's "last event ID": set by every `id:` field, an event dispatched or not
    # (a block of an `id:` alone is none); what a browser sends back as Last-Event-ID.
    last_id: str | None = None

    async def next(self, timeout: float = 10.0, comments: bool = False) -> SseEvent:
        """The next event (comments too, if asked) within `timeout` seconds in all: the
        keep-alives that come meanwhile do not extend it."""
        deadline = time.monotonic() + timeout
        while True:
            event = await asyncio.wait_for(self.events.get(), max(0.0, deadline - time.monotonic()))
            if event is None:
                raise EOFError("the stream ended")
            if comments or event.kind != "comment":
                return event

    async def tweets(self, count: int, timeout: float = 15.0) -> list[SseEvent]:
        """The next `count` tweet events (skipping keep-alives and nothing else)."""
        found = []
        while len(found) < count:
            event = await self.next(timeout)
            assert event.kind == "tweet", event
            found.append(event)
        return found


async def _parse(lines: AsyncIterator[str], stream: Stream) -> AsyncIterator[SseEvent]:
    event = SseEvent("message")
    data: list[str] = []
    async for line in lines:
        if line == "":
            if event.id is not None:
                stream.last_id = event.id
            if data:  # a block without data is no event (the spec's dispatch)
                event.data = "\n".join(data)
                yield event
            event, data = SseEvent("message"), []
        elif line.startswith(":"):
            yield SseEvent("comment", data=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event.kind = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                event.id = value


@contextlib.asynccontextmanager
async def open_stream(http: httpx.AsyncClient, user: str, last_event_id: str | None = None):
    headers = {"X-User-ID": user, "Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    request = http.build_request("GET", "/api/v1/timeline/stream", headers=headers)
    response = await http.send(request, stream=True)
    stream = Stream(response)
    if response.status_code != 200:
        await response.aread()
        try:
            yield stream
        finally:
            await response.aclose()
        return

    async def read() -> None:
        try:
            async for event in _parse(response.aiter_lines(), stream):
                stream.events.put_nowait(event)
            stream.ended = True
        except (httpx.HTTPError, asyncio.CancelledError):
            pass
        finally:
            stream.events.put_nowait(None)

    reader = asyncio.create_task(read())
    try:
        opened = await stream.next(10, comments=True)  # ": open": the stream is listening
        assert opened.kind == "comment", opened
        yield stream
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        await response.aclose()
