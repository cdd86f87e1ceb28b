"""The celebrity policy, one for fan-out and reads: who is a celebrity, filling a
celebrity's list, and rewiring followers' homes when an author crosses the threshold."""

from __future__ import annotations

import uuid

from timeline.services.items import item_ids
from timeline.services.ports import TimelineStore, UsersSource


class Celebrities:
    def __init__(self, store: TimelineStore, users: UsersSource, threshold: int, batch: int) -> None:
        self.store, self.users, self.threshold, self.batch = store, users, threshold, batch

    def is_celebrity(self, followers_count: int) -> bool:
        """Authors with this many followers are merged at read time, not fanned out."""
        return followers_count >= self.threshold

    async def ensure_list(self, author: uuid.UUID) -> None:
        """Fill a celebrity's list from the source of truth if the store lacks it."""
        if await self.store.is_celebrity_list_filled(author):
            return
        # Marked before the fetch: a tweet that arrives meanwhile is pushed, not skipped
        # (the fetch may have read the database before it committed).
        await self.store.begin_celebrity_list(author)
        try:
            recent = await self.users.recent_tweets([author], None, self.store.max_items)
            await self.store.put_items(recent)
            await self.store.push_to_celebrity(author, item_ids(recent))
        except BaseException:
            await self.store.abandon_celebrity_list(author)
            raise

    async def notice(self, author: uuid.UUID, followers_count: int) -> None:
        """An author who crosses the threshold changes how followers get their tweets:
        rewire every materialized follower's home so it stays right either way."""
        celebrity = self.is_celebrity(followers_count)
        if not await self.store.mark_celebrity(author, celebrity):
            return
        if celebrity:
            await self.ensure_list(author)
            async for followers in self.users.follower_pages(author, self.batch):
                await self.store.follow_celebrity(followers, author)
        else:
            recent = [uuid.UUID(bytes=i) for i in await self.store.celebrity_ids(author)]
            async for followers in self.users.follower_pages(author, self.batch):
                # The list holds only the newest (at its cap, or cut by deletes) unless
                # it is the author's whole story: taken as a part either way (0023), a
                # rare event that costs homes their cached window below its oldest.
                await self.store.push_to_homes(followers, recent, partial=True)
                await self.store.unfollow_celebrity(followers, author)
