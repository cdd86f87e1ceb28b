"""GET /timeline/stream: a home's new items as they come, and a resume that replays
what a client missed from the timeline itself (API.md, "Live updates").

A stream keeps one position (the newest item it has sent) and reads up from it with
the same refresh as `?prev_cursor=` whenever the home or a followed celebrity's list
says it changed (adapters/store/changes.py), and at every keep-alive. Messages are only
wake-ups: what a stream sends is always read from the timeline, so it sends each item
once, in time order, celebrities merged, whatever messages were lost. A delete comes by
message, and from the store's record of removals (read on a resume and at every
keep-alive) when the message was lost or nobody listened."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import NamedTuple, Protocol

import msgspec
from prometheus_client import Counter, Gauge

from timeline.domain.errors import Busy, TooManyStreams
from timeline.domain.refresh import trailing
from timeline.services.reader import Reader, Slice

# Summed over an API's worker processes while they live (prometheus multiprocess mode).
OPEN = Gauge("timeline_open_streams", "Live streams open", multiprocess_mode="livesum")
REFUSED = Counter("timeline_streams_refused_total", "Live streams refused", ["reason"])
REPLAY = 100  # items replayed on a resume (more missed: a gap event first)
REMEMBER_SECONDS = 600  # how long a closed stream's sent ids help its resume
# Items a new stream reads at its start: the home's newest, and those within the grace
# period below it (_opening; more of them young than this: the stream starts above
# them all). A crowd reconnecting opens hundreds at once, and what they read at once
# stays the process's memory (docs/benchmarks.md, session 29).
OPENING = 16
_END = b""  # put in a stream's queue: the process is stopping


class Event(NamedTuple):
    kind: str  # "position", "tweet", "delete", "gap" or "keep-alive"
    # position (a new stream's first event): where a resume would start; tweet: its id
    # (the resume position); delete: the id; gap: where to page from
    tweet_id: uuid.UUID | None
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

    async def hold_stream(self, user: uuid.UUID, stream: str, lapse_seconds: float, limit: int | None) -> bool:
        """Take (limit given) or renew a place; while a stream holds one, and for a while
        after its release, the home's removals are recorded (`removed_since`)."""

    async def release_stream(self, user: uuid.UUID, stream: str) -> None: ...

    async def followed_celebrities(self, user: uuid.UUID) -> list[uuid.UUID]: ...

    async def remember_sent(self, user: uuid.UUID, last: uuid.UUID, ids: list[uuid.UUID], ttl_seconds: int) -> None:
        """A closing stream's floor, then what it sent within the grace period below its
        last id."""

    async def recall_sent(self, user: uuid.UUID, last: uuid.UUID) -> list[uuid.UUID] | None: ...

    async def removed_since(self, user: uuid.UUID, celebrities: list[uuid.UUID], since_ms: int) -> list[uuid.UUID]:
        """What left the home and these celebrities' lists after `since_ms` (Unix ms)."""


class LiveTimeline:
    def __init__(
        self,
        reader: Reader,
        places: StreamPlaces,
        changes: Changes,
        keepalive: float = 10.0,
        per_caller: int = 4,
        per_process: int = 1000,
        settle: float = 0.25,
        grace: float = 10.0,
    ) -> None:
        self.reader, self.places, self.changes = reader, places, changes
        self.keepalive, self.per_caller, self.per_process = keepalive, per_caller, per_process
        # An item is sent once it is `settle` seconds old: what was posted before it has
        # by then (normally) reached the home too, so items go out in time order. One the
        # fan-out brings later still goes out, out of order, if within `grace` of the
        # newest sent (docs/decisions/0017).
        self.settle, self.grace = settle, grace
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
            REFUSED.labels("process").inc()
            raise Busy("this server holds all the streams it can; retry shortly")
        # 404 for a made-up caller; the home built. A new stream's start is the top of
        # the home, read whole (_opening).
        top = await self.reader.page(user, None, 1 if last_seen else OPENING)
        stream = uuid.uuid4().hex
        # A place lapses after three keep-alives without a renewal (a process that died).
        if not await self.places.hold_stream(user, stream, 3 * self.keepalive, self.per_caller):
            REFUSED.labels("caller").inc()
            raise TooManyStreams(f"at most {self.per_caller} open streams per caller")
        sent = _Sent(last_seen or top.newest, self.grace)
        if last_seen is None:
            _opening(sent, top)  # (the page is not kept: a stream lives for hours)
        return self._events(user, stream, last_seen, sent)

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
        last_seen: uuid.UUID | None,
        sent: _Sent,
    ) -> AsyncIterator[Event]:
        # Counted from the first event asked for: a stream never iterated (its client
        # gone at once) holds nothing here, and its place lapses on its own.
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._queues.add(queue)
        OPEN.inc()
        channels: list[bytes] = []
        deletes = _Deletes()
        try:
            celebrities = await self.places.followed_celebrities(user)
            channels = self.changes.channels(user, celebrities)
            # Listening before the first read: a change from now on wakes the stream.
            await self.changes.listen(channels, queue)
            if last_seen is not None:
                # What the stream that ended at this id had sent below it (if it closed
                # cleanly, lately): with it, what arrived late meanwhile goes out too.
                recalled = await self.places.recall_sent(user, last_seen)
                if recalled:
                    sent.resume(recalled[0], recalled[1:])
                async for event in self._replay(user, sent):
                    yield event
                # What was deleted since the client's last item (it may have heard some:
                # a delete twice removes nothing more).
                for event in deletes.new(await self.places.removed_since(user, celebrities, deletes.since(last_seen))):
                    yield event
            else:
                # Its position before any tweet: a client that loses a quiet stream
                # resumes from here (SSE keeps an `id:` without data as the last id).
                yield Event("position", sent.high or uuid.UUID(bytes=_id_at(time.time() - self.grace)))
            beat = time.monotonic() + self.keepalive
            while True:
                wait = max(0.001, min(beat - time.monotonic(), sent.unsettled_in(self.settle)))
                try:
                    message = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    message = b"+"  # a fresh item settled, or the beat: read, whatever was said
                if time.monotonic() >= beat:
                    yield Event("keep-alive", None)
                    await self.places.hold_stream(user, stream, 3 * self.keepalive, None)
                    celebrities, channels = await self._follow_celebrity_changes(user, channels, queue)
                    # The deletes whose messages were lost (a subscriber reconnecting).
                    checked = deletes.checked()
                    for event in deletes.new(await self.places.removed_since(user, celebrities, checked)):
                        yield event
                    beat = time.monotonic() + self.keepalive
                    message = b"+"
                messages = [message, *_drain(queue)]
                if _END in messages:
                    return
                removed = [uuid.UUID(bytes=m[1:]) for m in messages if m.startswith(b"-") and len(m) == 17]
                for event in deletes.new(removed):
                    yield event
                if b"+" in messages:
                    async for event in self._since(user, sent):
                        yield event
        finally:
            self._queues.discard(queue)
            OPEN.dec()
            # The client is gone or the process stops: the bookkeeping must not wait on
            # a cancelled task.
            asyncio.get_running_loop().create_task(self._release(user, stream, channels, queue, sent))

    async def _release(
        self, user: uuid.UUID, stream: str, channels: list[bytes], queue: asyncio.Queue[bytes], sent: _Sent
    ) -> None:
        with contextlib.suppress(Exception):
            await self.changes.forget(channels, queue)
        with contextlib.suppress(Exception):
            await self.places.release_stream(user, stream)
        if sent.high is not None:
            with contextlib.suppress(Exception):
                # First the floor the stream began at (nothing below it is ever due).
                remembered = [sent.base or uuid.UUID(int=0), *sent.recent()]
                await self.places.remember_sent(user, sent.high, remembered, REMEMBER_SECONDS)

    async def _replay(self, user: uuid.UUID, sent: _Sent) -> AsyncIterator[Event]:
        """What a client missed since its last id, oldest first: up to REPLAY items; when
        more were missed, a gap (page the rest with prev_cursor from the last id) and
        the newest REPLAY."""
        last_seen = sent.high
        assert last_seen is not None
        missed = await self.reader.newer(user, last_seen, REPLAY + 1)
        if len(missed.items) > REPLAY:
            yield Event("gap", last_seen)
            top = (await self.reader.page(user, None, REPLAY)).items
            sent.high = _ids.decode(top[-1]).tweet_id if top else last_seen
            sent.base = uuid.UUID(int=sent.high.int - 1) if top else last_seen
        async for event in self._since(user, sent):
            yield event

    async def _since(self, user: uuid.UUID, sent: _Sent) -> AsyncIterator[Event]:
        """Every settled item above the stream's floor not sent yet, oldest first, page
        by page. The floor trails the newest item sent by the grace period, so an item
        the fan-out delivers late (after newer ones were sent) still goes out, once."""
        horizon = _id_at(time.time() - self.settle)
        sent.settled()
        position = sent.floor()
        while True:
            if position is None:
                page = await self.reader.page(user, None, REPLAY)
            else:
                page = await self.reader.newer(user, position, REPLAY)
            for raw in reversed(page.items):
                tweet = _ids.decode(raw).tweet_id
                if tweet.bytes > horizon:
                    sent.wait_for(tweet)  # too fresh: others older may still be on their way
                    return
                if sent.first_time(tweet):
                    yield Event("tweet", sent.high, raw)
            if len(page.items) < REPLAY:
                return
            position = page.newest

    async def _follow_celebrity_changes(
        self, user: uuid.UUID, channels: list[bytes], queue: asyncio.Queue[bytes]
    ) -> tuple[list[uuid.UUID], list[bytes]]:
        """Celebrities followed or unfollowed since the stream opened: listen to theirs.
        The celebrities followed now, and the channels listened to."""
        celebrities = await self.places.followed_celebrities(user)
        now = self.changes.channels(user, celebrities)
        added, gone = [c for c in now if c not in channels], [c for c in channels if c not in now]
        if added:
            await self.changes.listen(added, queue)
        if gone:
            await self.changes.forget(gone, queue)
        return celebrities, now


def _opening(sent: _Sent, top: Slice) -> None:
    """A new stream starts at the home's newest item, and, as a resume does, keeps the
    grace period below it open, less what the home held there at the start (`top`, its
    first page, read in one go: the page the client has): an older item the fan-out
    brings after the stream opened (another author's tweet still on its way when the
    caller's own landed) goes out too."""
    if sent.high is None:
        return  # an empty home: whatever comes is new
    trailing = sent.trailing(sent.high)
    held = [_ids.decode(raw).tweet_id for raw in top.items]
    if top.older is None or held[-1] < trailing:  # (else: all of it young; the floor stays at the top)
        sent.resume(trailing, [tweet for tweet in held if tweet >= trailing])


def _id_at(moment: float) -> bytes:
    """The smallest id of that moment: a UUIDv7's first 48 bits are its milliseconds."""
    return int(moment * 1000).to_bytes(6, "big") + bytes(10)


def _moment(tweet: uuid.UUID) -> float:
    """When an id was made (the inverse of _id_at), in seconds."""
    return int.from_bytes(tweet.bytes[:6], "big") / 1000


class _Sent:
    """What one stream has sent: the newest item (its resume position), and the ids sent
    within the grace period below it, so that a late item goes out once and no item
    twice. Nothing at or below `base` (where the stream began) is ever sent."""

    def __init__(self, base: uuid.UUID | None, grace: float) -> None:
        self.base, self.high, self.grace = base, base, grace
        self._recent: dict[uuid.UUID, None] = {}
        self._next_settled: float | None = None

    def resume(self, base: uuid.UUID, recalled: list[uuid.UUID]) -> None:
        """Go on from a closed stream that began at `base` and had sent `recalled` below
        its last id: the grace period below that id is open again, less what was sent."""
        self._recent = dict.fromkeys(recalled)
        assert self.high is not None
        self.base = max(self.trailing(self.high), base)

    def recent(self) -> list[uuid.UUID]:
        return list(self._recent)

    def trailing(self, high: uuid.UUID) -> uuid.UUID:
        return uuid.UUID(bytes=trailing(high.bytes, self.grace))

    def floor(self) -> uuid.UUID | None:
        if self.high is None:
            return self.base
        trailing = self.trailing(self.high)
        return max(trailing, self.base) if self.base is not None else trailing

    def first_time(self, tweet: uuid.UUID) -> bool:
        if tweet in self._recent or (self.base is not None and tweet <= self.base):
            return False
        self._recent[tweet] = None
        self.high = tweet if self.high is None else max(self.high, tweet)
        floor = self.floor()
        for old in [t for t in self._recent if floor is not None and t < floor]:
            del self._recent[old]
        return True

    def wait_for(self, tweet: uuid.UUID) -> None:
        """A fresh item was seen: read again once it has settled."""
        self._next_settled = _moment(tweet)

    def settled(self) -> None:
        self._next_settled = None  # a read is under way: it sets the next timer if needed

    def unsettled_in(self, settle: float) -> float:
        """Seconds until a fresh item seen by the last read has settled (inf: none)."""
        if self._next_settled is None:
            return float("inf")
        return max(0.001, self._next_settled + settle - time.time())


class _Deletes:
    """The deletes one stream has sent (each once, however it learnt of it: a message,
    or the store's record of removals), and when it last read that record."""

    # Read back this far: the record's times are Redis's clock, the checks this host's
    # (a few ms apart under NTP; 30 s covers a clock gone astray). What is read twice
    # is sent once.
    SKEW_MS = 30_000

    def __init__(self) -> None:
        self._sent: dict[uuid.UUID, None] = {}
        self._checked = int(time.time() * 1000) - self.SKEW_MS

    def since(self, last_seen: uuid.UUID) -> int:
        """Where a resume reads the record from: the client's last item's time."""
        return int(_moment(last_seen) * 1000) - self.SKEW_MS

    def checked(self) -> int:
        """Where a keep-alive reads the record from (the last such read, less the skew)."""
        since, self._checked = self._checked, int(time.time() * 1000) - self.SKEW_MS
        return since

    def new(self, removed: list[uuid.UUID]) -> list[Event]:
        events = [Event("delete", tweet) for tweet in removed if tweet not in self._sent]
        self._sent.update((event.tweet_id, None) for event in events)  # type: ignore[misc]
        if len(self._sent) > 10_000:  # a stream open for days: forget the oldest half
            for tweet in list(self._sent)[:5_000]:
                del self._sent[tweet]
        return events


def _drain(queue: asyncio.Queue[bytes]) -> list[bytes]:
    found = []
    while not queue.empty():
        found.append(queue.get_nowait())
    return found
