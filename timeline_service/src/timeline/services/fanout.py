"""Events -> feeds. Every handler is idempotent: Kafka delivers at least once."""

from __future__ import annotations

import uuid

from prometheus_client import Counter, Histogram

from shared_schemas.events import Event, FollowCreated, FollowRemoved, TweetCreated, TweetDeleted, UserCreated
from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import TweetItem
from timeline.adapters.feed import Feed
from timeline.adapters.tweet_cache import TweetCache
from timeline.adapters.users_client import UsersClient
from timeline.services.hydration import authors_of, item_ids

DELIVERIES = Counter("timeline_fanout_deliveries_total", "Tweet ids pushed into home timelines")
BATCH_SIZE = Histogram(
    "timeline_fanout_batch_size", "Homes written per fan-out batch", buckets=(1, 10, 100, 500, 1000, 5000)
)


class Fanout:
    def __init__(
        self,
        feed: Feed,
        cache: TweetCache,
        users: UsersClient,
        celebrity_threshold: int,
        backfill_items: int,
        batch: int,
    ) -> None:
        self.feed, self.cache, self.users = feed, cache, users
        self.threshold, self.backfill_items, self.batch = celebrity_threshold, backfill_items, batch

    async def handle(self, event: Event) -> None:
        match event:
            case TweetCreated():
                await self.tweet_created(event)
            case TweetDeleted():
                await self.tweet_deleted(event)
            case FollowCreated():
                await self.follow_created(event)
            case FollowRemoved():
                await self.follow_removed(event)
            case UserCreated():
                pass  # a home is materialized on its first read

    async def tweet_created(self, event: TweetCreated) -> None:
        item = TweetItem(
            tweet_id=event.tweet_id,
            user_id=event.author_id,
            username=event.username,
            text=event.text,
            created_at=iso_ms(event.created_at),
        )
        await self.cache.put_many([item])
        await self.feed.push_to_homes([event.author_id], [event.tweet_id])
        if event.author_followers_count >= self.threshold:
            # A celebrity's tweet is stored once and merged into followers' pages on read.
            await self.feed.push_to_celebrity(event.author_id, [event.tweet_id])
            return
        async for followers in self.users.follower_pages(event.author_id, self.batch):
            await self.feed.push_to_homes(followers, [event.tweet_id])
            DELIVERIES.inc(len(followers))
            BATCH_SIZE.observe(len(followers))

    async def tweet_deleted(self, event: TweetDeleted) -> None:
        # The author's followers are exactly the homes that may hold it: no scan of users.
        await self.cache.delete(event.tweet_id)
        await self.feed.unpush_from_homes([event.author_id], [event.tweet_id])
        await self.feed.unpush_from_celebrity(event.author_id, [event.tweet_id])
        async for followers in self.users.follower_pages(event.author_id, self.batch):
            await self.feed.unpush_from_homes(followers, [event.tweet_id])

    async def follow_created(self, event: FollowCreated) -> None:
        followee = await self.users.user(event.followee_id)
        celebrity = followee.followers_count >= self.threshold
        await self._notice_crossing(event.followee_id, celebrity)
        if celebrity:
            await self.ensure_celebrity_list(event.followee_id)
            await self.feed.follow_celebrity([event.follower_id], event.followee_id)
        elif await self.feed.is_materialized(event.follower_id):
            # Backfill: the followee's recent tweets appear at once, in time order.
            recent = await self.users.recent_tweets([event.followee_id], None, self.backfill_items)
            await self.cache.put_many(recent)
            await self.feed.push_to_homes([event.follower_id], item_ids(recent))

    async def follow_removed(self, event: FollowRemoved) -> None:
        await self.feed.unfollow_celebrity([event.follower_id], event.followee_id)
        ids = await self.feed.home_ids(event.follower_id)
        authors = await authors_of(self.cache, self.users, ids)
        theirs = [uuid.UUID(bytes=i) for i in ids if authors.get(i) == event.followee_id]
        if theirs:
            await self.feed.unpush_from_homes([event.follower_id], theirs)
        followee = await self.users.user(event.followee_id)
        await self._notice_crossing(event.followee_id, followee.followers_count >= self.threshold)

    async def ensure_celebrity_list(self, author: uuid.UUID) -> None:
        """Fill a celebrity's list from the source of truth if Redis lacks it."""
        (current,) = await self.feed.page_celebrities([author], None, 1)
        if current.materialized:
            return
        await self.feed.begin_celebrity_list(author)
        try:
            recent = await self.users.recent_tweets([author], None, self.feed.max_items)
            await self.cache.put_many(recent)
            await self.feed.push_to_celebrity(author, item_ids(recent))
        except BaseException:
            await self.feed.abandon_celebrity_list(author)
            raise

    async def _notice_crossing(self, author: uuid.UUID, celebrity: bool) -> None:
        """An author who crosses the threshold changes how followers get their tweets;
        rewire every materialized follower's home so it stays correct either way."""
        if not await self.feed.mark_celebrity(author, celebrity):
            return
        if celebrity:
            await self.ensure_celebrity_list(author)
            async for followers in self.users.follower_pages(author, self.batch):
                await self.feed.follow_celebrity(followers, author)
        else:
            recent = [uuid.UUID(bytes=i) for i in await self.feed.celebrity_ids(author)]
            async for followers in self.users.follower_pages(author, self.batch):
                await self.feed.push_to_homes(followers, recent)
                await self.feed.unfollow_celebrity(followers, author)
