"""GET /timeline/stream: a home's new items as they come, and a resume that replays
what a client missed from the timeline itself (API.md, "Live updates").

A stream keeps one position (the newest item it has sent) and reads up from it with
the same refresh as `?prev_cursor=` whenever the home or a followed celebrity's list
says it changed (adapters/store/changes.py), and at every keep-alive. Messages are only
wake-ups: what a stream sends is always read from the timeline, so it sends each item
once, in time order, celebrities merged, whatever messages were lost."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

import msgspec

from timeline.domain.errors import Busy, TooManyStreams
from timeline.services.reader import Reader

REPLAY = 100  # items replayed on a resume (more missed: a gap event first)
_END = b""  # put in a stream's queue: the process is stopping


class Event(NamedTuple):
    kind: str  # "tweet", "delete", "gap" or "keep-alive"
    tweet_id: uuid.UUID | None  # tweet: its id (the resume position); delete: the id; gap: where to page from
    item: bytes = b""  # tweet: the item's JSON


class _Id(msgspec.Struct):
    tweet_id: uuid.UUID


_ids = msgspec.json.Decoder(_Id)


class Changes(Protocol):
    """Where list changes are heard (adapters/store/changes.ChangeFeed)."""

    def channels(self, user: uuid.UUID, celebrities: list[uuid.UUID]) -> list[bytes]: ...

    async def listen(self, channels: list[bytes], queue: asyncio.Queue[bytes]) -> None: ...

    async def forget(self, channels: list[bytes], queue: asyncio.Queue[bytes]) -> None: ...


class StreamPlaces(Protocol):
    """The fleet-wide count of a caller's open streams (RedisTimelineStore)."""

    async def hold_stream(self, user: uuid.UUID, stream: str, lapse_seconds: float, limit: int | None) -> bool: ...

    async def release_stream(self, user: uuid.UUID, stream: str) -> None: ...

    async def followed_celebrities(self, user: uuid.UUID) -> list[uuid.UUID]: ...


class LiveTimeline:
    def __init__(
        self,
        reader: Reader,
        places: StreamPlaces,
        changes: Changes,
        keepalive: float = 15.0,
        per_caller: int = 4,
        per_process: int = 1000,
    ) -> None:
        self.reader, self.places, self.changes = reader, places, changes
        self.keepalive, self.per_caller, self.per_process = keepalive, per_caller, per_process
        self._queues: set[asyncio.Queue[bytes]] = set()
        self._ending = False

    @property
    def open(self) -> int:
        return len(self._queues)

    async def start(self, user: uuid.UUID, last_seen: uuid.UUID | None) -> AsyncIterator[Event]:
        """Everything that can refuse a stream (unknown caller 404, too many 429, a
        stopping or full process 503) happens here, before the first byte; then the
        events, until the client leaves or the process stops."""
        if self._ending or self.open >= self.per_process:
            raise Busy("this server holds all the streams it can; retry shortly")
        head = await self.reader.page(user, None, 1)  # 404 for a made-up caller; the home built
        stream = uuid.uuid4().hex
        # A place lapses after three keep-alives without a renewal (a process that died).
        if not await self.places.hold_stream(user, stream, 3 * self.keepalive, self.per_caller):
            raise TooManyStreams(f"at most {self.per_caller} open streams per caller")
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues.add(queue)
        return self._events(user, stream, queue, last_seen, head.newest)

    def end_all(self) -> None:
        """The process is stopping: every stream ends cleanly, so its client reconnects
        (to another process) and resumes from its last id."""
        self._ending = True
        for queue in self._queues:
            queue.put_nowait(_END)

    async def _events(
        self,
        user: uuid.UUID,
        stream: str,
        queue: asyncio.Queue[bytes],
        last_seen: uuid.UUID | None,
        head: uuid.UUID | None,
    ) -> AsyncIterator[Event]:
        celebrities = await self.places.followed_celebrities(user)
        channels = self.changes.channels(user, celebrities)
        try:
            # Listening before the first read: a change from now on wakes the stream.
            await self.changes.listen(channels, queue)
            position = head
            if last_seen is not None:
                position = last_seen
                async for event in self._replay(user, last_seen):
                    position = event.tweet_id if event.kind == "tweet" else position
                    yield event
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), self.keepalive)
                except TimeoutError:
                    yield Event("keep-alive", None)
                    await self.places.hold_stream(user, stream, 3 * self.keepalive, None)
                    channels = await self._follow_celebrity_changes(user, channels, queue)
                    message = b"+"  # and read, whatever the messages said
                messages = [message, *_drain(queue)]
                if _END in messages:
                    return
                for removed in (m[1:] for m in messages if m.startswith(b"-") and len(m) == 17):
                    yield Event("delete", uuid.UUID(bytes=removed))
                if b"+" in messages:
                    async for event in self._since(user, position):
                        position = event.tweet_id
                        yield event
        finally:
            self._queues.discard(queue)
            # The client is gone or the process stops: the bookkeeping must not wait on
            # a cancelled task.
            asyncio.get_running_loop().create_task(self._release(user, stream, channels, queue))

    async def _release(self, user: uuid.UUID, stream: str, channels: list[bytes], queue: asyncio.Queue[bytes]) -> None:
        with contextlib.suppress(Exception):
            await self.changes.forget(channels, queue)
        with contextlib.suppress(Exception):
            await self.places.release_stream(user, stream)

    async def _replay(self, user: uuid.UUID, last_seen: uuid.UUID) -> AsyncIterator[Event]:
        """What a client missed since `last_seen`, oldest first: up to REPLAY items; when
        more were missed, a gap (page the rest with prev_cursor from `last_seen`) and
        the newest REPLAY."""
        missed = await self.reader.newer(user, last_seen, REPLAY + 1)
        items = missed.items
        if len(items) > REPLAY:
            yield Event("gap", last_seen)
            items = (await self.reader.page(user, None, REPLAY)).items
        for raw in reversed(items):
            yield Event("tweet", _ids.decode(raw).tweet_id, raw)

    async def _since(self, user: uuid.UUID, position: uuid.UUID | None) -> AsyncIterator[Event]:
        """Everything newer than `position`, oldest first, page by page."""
        while True:
            if position is None:
                page = await self.reader.page(user, None, REPLAY)
            else:
                page = await self.reader.newer(user, position, REPLAY)
            for raw in reversed(page.items):
                yield Event("tweet", _ids.decode(raw).tweet_id, raw)
            if len(page.items) < REPLAY:
                return
            position = page.newest

    async def _follow_celebrity_changes(
        self, user: uuid.UUID, channels: list[bytes], queue: asyncio.Queue[bytes]
    ) -> list[bytes]:
        """Celebrities followed or unfollowed since the stream opened: listen to theirs."""
        now = self.changes.channels(user, await self.places.followed_celebrities(user))
        added, gone = [c for c in now if c not in channels], [c for c in channels if c not in now]
        if added:
            await self.changes.listen(added, queue)
        if gone:
            await self.changes.forget(gone, queue)
        return now


def _drain(queue: asyncio.Queue[bytes]) -> list[bytes]:
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found
