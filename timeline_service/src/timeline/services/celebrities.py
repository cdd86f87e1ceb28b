"""The celebrity policy, one for fan-out and reads: who is a celebrity, filling a
celebrity's list, and rewiring followers' homes when an author crosses the threshold."""

from __future__ import annotations

import asyncio
import time
import uuid

from prometheus_client import Counter

from timeline.services.ports import ListPush, TimelineStore, UsersSource

# A rebuild of a home (Reader) or a fill of a celebrity's list that did not land: a
# removal reached the list meanwhile, or another rebuild at it landed first (0023).
VOIDED = Counter("timeline_rebuilds_voided_total", "Rebuilds and list fills read but not landed", ["list"])

# Seconds between looks at a list another process is filling: from the first, doubling
# up to the last (after a lost Redis, every process's readers wait on the same lists).
FILL_POLLS = (0.01, 0.1)
# Fills in a row whose landing a removal spoiled (a delete, mid-fill) before giving up
# for this read: each read again after one.
FILL_TRIES = 3


class Celebrities:
    def __init__(
        self, store: TimelineStore, users: UsersSource, threshold: int, batch: int, fill_wait: float = 2.0
    ) -> None:
        self.store, self.users, self.threshold, self.batch = store, users, threshold, batch
        # How long a reader waits for another process's fill before doing it itself.
        self.fill_wait = fill_wait
        self._fills: dict[uuid.UUID, asyncio.Future] = {}  # lists this process is filling

    def is_celebrity(self, followers_count: int) -> bool:
        """Authors with this many followers are merged at read time, not fanned out."""
        return followers_count >= self.threshold

    async def ensure_list(self, author: uuid.UUID) -> None:
        """Fill a celebrity's list from the source of truth if the store lacks it: one
        fill of a list at a time in this process however many readers ask (they share
        it), and none while another process fills it (they wait for that one, and take
        over one that takes too long: its process may have died). After a lost Redis,
        every reader of a celebrity asks at once."""
        flight = self._fills.get(author)
        if flight is None:
            flight = asyncio.ensure_future(self._fill(author))
            self._fills[author] = flight
            flight.add_done_callback(lambda done: self._filled(author, done))
        # Shielded: a reader that goes away does not cancel the fill the others wait for.
        await asyncio.shield(flight)

    def _filled(self, author: uuid.UUID, flight: asyncio.Future) -> None:
        self._fills.pop(author, None)
        if not flight.cancelled():
            flight.exception()  # retrieved here: every waiter may have gone

    async def _fill(self, author: uuid.UUID) -> None:
        deadline, tries, poll = time.monotonic() + self.fill_wait, 0, FILL_POLLS[0]
        while tries < FILL_TRIES and not await self.store.is_celebrity_list_filled(author):
            # Marked before the fetch: a tweet that arrives meanwhile is pushed, not
            # skipped (the fetch may have read the database before it committed).
            if not await self.store.begin_celebrity_list(author, take_over=time.monotonic() >= deadline):
                await asyncio.sleep(poll)  # another process is filling it
                poll = min(2 * poll, FILL_POLLS[1])
                continue
            try:
                recent = await self.users.recent_tweets([author], None, self.store.max_items)
                if await self.store.finish_celebrity_list(author, recent):
                    return
            except BaseException:
                await self.store.abandon_celebrity_list(author)
                raise
            VOIDED.labels("celebrity").inc()
            tries, deadline = tries + 1, time.monotonic() + self.fill_wait

    async def took(self, author: uuid.UUID, tweet_id: uuid.UUID) -> bool:
        """Put a tweet whose event says its author is a celebrity into the author's list;
        False if the homes must have it instead: the author stopped being a celebrity
        before it came (the demotion closed the list, or went by with it long ago), or
        was never one here (a crossing and its way back before the worker looked)."""
        pushed = await self.store.push_to_celebrity(author, [tweet_id])
        if pushed is ListPush.ABSENT:
            # No list: lost (Redis was, or it expired unread), and the first reader fills
            # it from the source, this tweet included; or there never was one. The source
            # says which: a celebrity now keeps their tweets out of the homes.
            return self.is_celebrity((await self.users.user(author)).followers_count)
        return pushed is ListPush.PLACED

    async def notice(self, author: uuid.UUID, followers_count: int) -> None:
        """An author who crosses the threshold changes how followers get their tweets:
        rewire every materialized follower's home so it stays right either way."""
        celebrity = self.is_celebrity(followers_count)
        if not await self.store.mark_celebrity(author, celebrity):
            return  # no crossing, or another worker is rewiring the homes for it
        try:
            await (self._promote(author) if celebrity else self._demote(author))
        except BaseException:
            # Not done: unmarked, so that the event's retry sees the crossing again and
            # rewires every home (each step is idempotent).
            await self.store.mark_celebrity(author, not celebrity)
            raise

    async def _promote(self, author: uuid.UUID) -> None:
        # A list left from an earlier time as a celebrity (a fill that raced the
        # demotion) lacks what the author posted since: filled afresh.
        await self.store.forget_celebrity_list(author)
        await self.ensure_list(author)
        async for followers in self.users.follower_pages(author, self.batch):
            await self.store.follow_celebrity(followers, author)

    async def _demote(self, author: uuid.UUID) -> None:
        await self.ensure_list(author)  # lost, or being filled: what the homes take is all of it
        # Closed as it is read: a tweet of theirs still on its way as a celebrity's is
        # either in what is read here, or finds the list closed and goes to the homes.
        closed = await self.store.close_celebrity_list(author)
        if closed is None:
            raise RuntimeError(f"celebrity list of {author} not filled (removals kept spoiling it): retry")
        recent = [uuid.UUID(bytes=i) for i in closed]
        async for followers in self.users.follower_pages(author, self.batch):
            # Rebuilds at these homes may have read the author as a celebrity: voided
            # (0023), before the author leaves the homes' celebrities.
            await self.store.unpush_from_homes(followers, [])
            # The list holds only the newest (at its cap, or cut by deletes) unless
            # it is the author's whole story: taken as a part either way (0023), a
            # rare event that costs homes their cached window below its oldest.
            await self.store.push_to_homes(followers, recent, partial=True)
            await self.store.unfollow_celebrity(followers, author)
        # The ids go: they would miss what the author posts from now on (fanned out).
        # The list stays closed, for the tweets still on their way as a celebrity's,
        # until the author is a celebrity again (`_promote` forgets it first).
        await self.store.drop_closed_celebrity_list(author)
