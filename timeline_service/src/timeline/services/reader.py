"""GET /timeline: one page of a home timeline, from the store on the hot path."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from prometheus_client import Counter, Histogram

from timeline.adapters.users_client import UnknownUser
from timeline.domain import items as item_codec
from timeline.domain.errors import NotFound
from timeline.domain.refresh import Position, after_page, after_refresh
from timeline.services.celebrities import VOIDED, Celebrities
from timeline.services.items import hydrate
from timeline.services.ports import Page, TimelineStore, UsersSource
from timeline.services.recent_readers import RecentReaders

REBUILDS = Counter("timeline_rebuilds_total", "Home timelines rebuilt from the source of truth")
SOURCE_PAGES = Counter("timeline_source_pages_total", "Pages completed from the Users Service past the cached window")
# What a cold start costs its readers (after a lost Redis nearly every read waits on
# one of these for a while): a read's time on each kind of repair, once per read that
# needed it, whether the repair worked or failed. "rebuild": a rebuild in this process
# (its own, or one it joined) that landed its home; "another": the home is anyone
# else's to land (another process's rebuild it polls, or a rebuild that did not land);
# "celebrities": followed celebrities' lists filled. A read may wait on several.
REPAIR_KINDS = ("rebuild", "another", "celebrities")
REPAIRS = Histogram(
    "timeline_read_repair_seconds",
    "Time a read waited for what the store lacked, by repair",
    ["repair"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
for _kind in REPAIR_KINDS:  # every series from the start: rate() sees a process's first cold start
    REPAIRS.labels(_kind)


# Caller ids the source of truth does not know, remembered per process so that made-up
# X-User-IDs cost a dict lookup, not a Redis script, an HTTP call and SQL each. Ids are
# made by the server (UUIDv7), so none is asked for before it exists: a short memory of
# "unknown" never hides a real user.
UNKNOWN_MAX = 50_000
REBUILD_POLL = 0.01  # seconds between reads of a home another process is rebuilding


class Slice(NamedTuple):
    """Items of a home, newest first (the API's JSON of each), and where the page ends."""

    items: list[bytes]
    older: uuid.UUID | None  # continue down from here (None: nothing older)
    newest: uuid.UUID | None  # the newest item's id (a stream goes on up from here)
    refresh: Position | None = None  # where a refresh goes on from (None: an empty page)


class Reader:
    def __init__(
        self,
        store: TimelineStore,
        users: UsersSource,
        celebrities: Celebrities,
        unknown_ttl: float = 30.0,
        rebuild_wait: float = 2.0,
        recent: RecentReaders | None = None,
        grace: float = 10.0,
    ) -> None:
        self.store, self.users, self.celebrities = store, users, celebrities
        self.grace = grace  # how far below the newest item a refresh looks (domain/refresh.py)
        self.unknown_ttl = unknown_ttl
        self._unknown: dict[uuid.UUID, float] = {}  # caller id -> until when it is known unknown
        self._flights: dict[uuid.UUID, asyncio.Future] = {}  # homes this process is rebuilding
        # How long a read waits for another process's rebuild before doing it itself.
        self.rebuild_wait = rebuild_wait
        self.recent = recent or RecentReaders(0)  # whose homes to warm after a loss
        self.repairing = 0  # reads waiting on a repair now: the warm-up lets them go first

    def _check_known(self, user: uuid.UUID) -> None:
        if self._unknown and self._unknown.get(user, 0.0) > time.monotonic():
            raise NotFound("caller (X-User-ID) not found")

    async def _read(self, user: uuid.UUID, read: Callable[[], Awaitable[Page]], items: int) -> Page:
        """`read()` of the store, after rebuilding what it lacks (a lost home, a lost
        celebrity list), or waiting for another reader's rebuild of the home."""
        page = await read()
        if page.materialized and not page.rebuilding and not page.unfilled:
            return page  # warm: the common case, nothing more to do or time
        waits: dict[str, float] = {}  # repair -> seconds (REPAIRS)
        self.repairing += 1
        try:
            return await self._repair(user, read, items, page, waits)
        finally:  # a repair that failed (an unknown caller, a source down) was waited on too
            self.repairing -= 1
            for repair, seconds in waits.items():
                REPAIRS.labels(repair).observe(seconds)

    async def _repair(
        self, user: uuid.UUID, read: Callable[[], Awaitable[Page]], items: int, page: Page, waits: dict[str, float]
    ) -> Page:
        """`_read`'s repairs of `page`, the seconds of each kind added to `waits`."""
        waited_until, repairs = 0.0, 0
        while repairs < 3:
            started = time.monotonic()
            step: Awaitable[object]
            if page.rebuilding and user in self._flights:  # this process's own: join it
                step, repair = asyncio.shield(self._flights[user]), "rebuild"
            elif page.rebuilding:
                waited_until = waited_until or started + self.rebuild_wait
                if started < waited_until:
                    step, repair = asyncio.sleep(REBUILD_POLL), "another"
                else:  # that rebuild is taking too long (its process died?): join it here
                    step, repair = self.rebuild(user, items, take_over=True), "rebuild"
                    waited_until, repairs = 0.0, repairs + 1
            elif not page.materialized:  # nobody is at it: this reader (or none, if one just began)
                step, repair = self.rebuild(user, items, take_over=False), "rebuild"
                repairs += 1
            elif page.unfilled:  # followed celebrities' lists lost, or being filled
                step = asyncio.gather(*(self.celebrities.ensure_list(c) for c in page.unfilled))
                repair, repairs = "celebrities", repairs + 1
            else:
                break
            try:
                if await step is False:  # a rebuild that did not land here: the home is another's
                    repair = "another"
                page = await read()
            finally:
                waits[repair] = waits.get(repair, 0.0) + time.monotonic() - started
        return page

    async def page(self, user: uuid.UUID, older_than: uuid.UUID | None, limit: int) -> Slice:
        """Up to `limit` items from the top (or below `older_than`), newest first."""
        self._check_known(user)
        want = limit + 1  # one extra tells whether another page exists
        page = await self._read(user, lambda: self.store.read_page(user, older_than, want), want)
        self.recent.saw(user)  # a known caller (a made-up id never gets here): warm it after a loss
        if not page.materialized or page.unfilled:
            # The store could not be repaired in time (removals kept spoiling its
            # rebuilds): this page from the source of truth, whole.
            return self._cut(await self._from_source(user, older_than, want), limit)
        items = await hydrate(self.store, self.users, page.ids, page.items)
        # Past the cached window, older tweets still exist: continue from the source of
        # truth, as far as they go.
        if page.window_ended:
            after = uuid.UUID(bytes=page.ids[-1]) if page.ids else older_than
            items += await self._from_source(user, after, want - len(items))
            return self._cut(items, limit)
        # The page ends at the store's `limit`-th id, and another follows if it had one
        # more, whatever hydrating dropped: a tweet deleted a moment ago (its item gone,
        # its id not yet out of every home) shortens a page, never ends the timeline.
        return self._cut(items, limit, page.ids)

    def _cut(self, items: list[tuple[bytes, bytes]], limit: int, ids: list[bytes] | None = None) -> Slice:
        """`limit` of the items (one more, if there: another page exists), as a Slice;
        or, given the `ids` they were read for (deleted tweets' among them), the items
        of the first `limit` ids, continued below the `limit`-th if there are more."""
        older = None
        if ids is not None:
            if len(ids) > limit:
                head = set(ids[:limit])
                items, older = [item for item in items if item[0] in head], uuid.UUID(bytes=ids[limit - 1])
        elif len(items) > limit:
            items, older = items[:limit], uuid.UUID(bytes=items[limit - 1][0])
        if not items:
            return Slice([], older, None)
        kept = [i for i, _ in items]
        return Slice([raw for _, raw in items], older, uuid.UUID(bytes=kept[0]), after_page(kept, self.grace))

    async def newer(self, user: uuid.UUID, newer_than: uuid.UUID, limit: int, held: tuple[bytes, ...] = ()) -> Slice:
        """The `limit` items immediately newer than `newer_than`, newest first, less those
        `held` (a refresh: what its cursor says the client has); `newest` is the newest
        item's id, or `newer_than` again when nothing is newer, and `refresh` where the
        next refresh goes on from."""
        self._check_known(user)
        want = limit + len(held)
        page = await self._read(user, lambda: self.store.read_newer(user, newer_than, want), 0)
        self.recent.saw(user)
        # A list lost ids just above the position (a reader away long), or the store could
        # not be repaired in time: from the source of truth.
        if page.window_ended or not page.materialized or page.unfilled:
            SOURCE_PAGES.inc()
            following = await self.users.following(user)
            authors = [user, *(u.user_id for u in following.following)]
            found = await self.users.newer_tweets(authors, newer_than, want)
            items = [(item.tweet_id.bytes, item_codec.encode(item)) for item in found]
            more = len(found) >= want
        else:
            items = await hydrate(self.store, self.users, page.ids, page.items)
            more = len(page.ids) >= want
        if held:  # the page is the oldest `limit` of the rest (newest first)
            items = [item for item in items if item[0] not in held][-limit:]
        sent = [i for i, _ in items]
        refresh = after_refresh(Position(newer_than.bytes, held), sent, more and bool(sent), self.grace)
        newest = uuid.UUID(bytes=max(sent)) if sent else newer_than
        return Slice([raw for _, raw in items], None, newest, refresh)

    async def _from_source(
        self, user: uuid.UUID, older_than: uuid.UUID | None, count: int
    ) -> list[tuple[bytes, bytes]]:
        SOURCE_PAGES.inc()
        following = await self.users.following(user)
        authors = [user, *(u.user_id for u in following.following)]
        found = await self.users.recent_tweets(authors, older_than, count)
        return [(item.tweet_id.bytes, item_codec.encode(item)) for item in found]

    async def rebuild(self, user: uuid.UUID, items: int = 0, *, take_over: bool = True) -> bool:
        """Recompute a missing home (expired, evicted, Redis lost) from the source of
        truth: the store is a cache that may be lost. One rebuild of a home at a time in
        this process however many requests ask (they share it), and, without
        `take_over`, none while another process is at it. `items`: how many of the
        newest tweets to cache whole (the page that asked). True when this rebuild landed
        the home."""
        flight = self._flights.get(user)
        if flight is None:
            flight = asyncio.ensure_future(self._rebuild(user, items, take_over))
            self._flights[user] = flight
            flight.add_done_callback(lambda done: self._landed(user, done))
        # Shielded: a caller that goes away (a closed connection) does not cancel the
        # rebuild the others wait for.
        return bool(await asyncio.shield(flight))

    def _landed(self, user: uuid.UUID, flight: asyncio.Future) -> None:
        self._flights.pop(user, None)
        if not flight.cancelled():
            flight.exception()  # retrieved here: every waiter may have gone

    async def _rebuild(self, user: uuid.UUID, items: int, take_over: bool) -> bool:
        # Marked before the fetch, so what fan-out pushes meanwhile is kept (0018).
        if not await self.store.begin_rebuild(user, take_over=take_over):
            return False  # another process is rebuilding it: the read waits for that one
        try:
            source = await self.users.home_source(user, self.celebrities.threshold, self.store.max_items, items)
            landed = await self.store.finish_rebuild(user, source.celebrities, source.tweet_ids, source.tweets)
        except UnknownUser:
            await self.store.abandon_rebuild(user)
            if len(self._unknown) >= UNKNOWN_MAX:
                del self._unknown[next(iter(self._unknown))]  # the oldest
            self._unknown[user] = time.monotonic() + self.unknown_ttl
            raise NotFound("caller (X-User-ID) not found") from None
        except BaseException:
            await self.store.abandon_rebuild(user)
            raise
        if landed:
            REBUILDS.inc()
        else:  # another rebuild at it landed first, or a removal spoiled it
            VOIDED.labels("home").inc()
        return landed
