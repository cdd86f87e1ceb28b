"""Events -> the read model. Every handler is idempotent: Kafka delivers at least once."""

from __future__ import annotations

import asyncio
import uuid

from prometheus_client import Counter, Histogram

from shared_schemas.events import Event, FollowCreated, FollowRemoved, TweetCreated, TweetDeleted, UserCreated
from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import TweetItem
from timeline.services.celebrities import Celebrities
from timeline.services.items import authors_of, item_ids
from timeline.services.ports import Delivery, TimelineStore, UsersSource

DELIVERIES = Counter("timeline_fanout_deliveries_total", "Tweet ids pushed into home timelines")
BATCH_SIZE = Histogram(
    "timeline_fanout_batch_size", "Homes written per fan-out batch", buckets=(1, 10, 100, 500, 1000, 5000)
)


def _item(event: TweetCreated) -> TweetItem:
    return TweetItem(
        tweet_id=event.tweet_id,
        user_id=event.author_id,
        username=event.username,
        text=event.text,
        created_at=iso_ms(event.created_at),
    )


def _count(followers: list[uuid.UUID]) -> None:
    DELIVERIES.inc(len(followers))
    BATCH_SIZE.observe(len(followers))


class Fanout:
    def __init__(
        self, store: TimelineStore, users: UsersSource, celebrities: Celebrities, backfill_items: int, batch: int
    ) -> None:
        self.store, self.users, self.celebrities = store, users, celebrities
        self.backfill_items, self.batch = backfill_items, batch

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

    async def own_tweets(self, items: list[TweetItem]) -> None:
        """Tweets into their authors' own homes. The Users API asks for it as it answers
        each POST (read-your-writes, docs/decisions/0016), several POSTs' at once under
        load (0021); the fan-out does it again."""
        await self.store.deliver([Delivery(item, [item.user_id]) for item in items])

    async def own_delete(self, author: uuid.UUID, tweet_id: uuid.UUID) -> None:
        """A deleted tweet out of its author's home and the cache (the same, for a DELETE)."""
        await self.store.delete_item(tweet_id)
        await self.store.unpush_from_homes([author], [tweet_id])

    async def tweet_created(self, event: TweetCreated) -> None:
        await self.tweets_created([event])

    async def tweets_created(self, events: list[TweetCreated]) -> None:
        """Tweets fanned out together (a run of them in one partition: its backlog, under
        load): their authors' first pages of followers asked in one request, and each
        item and author's home go with its first page, all in one round trip to Redis
        (docs/decisions/0022). A push lands each id in order, once, so tweets together
        end as they would one by one."""
        # A tweet deleted before its fan-out came (the worker behind, or one that lost
        # the partition to another and finished its run late): none of it, or it would
        # be back in its author's home and every follower's until its delete's event.
        gone = await self.store.deleted_among([event.tweet_id for event in events])
        fanned: list[TweetCreated] = []
        for event in (e for e in events if e.tweet_id not in gone):
            if self.celebrities.is_celebrity(event.author_followers_count):
                # A celebrity's tweet is stored once and merged into followers' pages on
                # read; unless the author stopped being one meanwhile: fanned out then.
                await self.own_tweets([_item(event)])
                if await self.celebrities.took(event.author_id, event.tweet_id):
                    continue
            fanned.append(event)
        walks = [self.users.follower_pages(event.author_id, self.batch) for event in fanned]
        try:
            # Every walk's first step finishes (no walk is left running). The tweets whose
            # followers could be read go out; then the first failure, if any, is raised,
            # and the run is tried again, whole (what went out goes again: pushes ignore it).
            firsts = await asyncio.gather(*(anext(walk, None) for walk in walks), return_exceptions=True)
            ready = [(e, w, p) for e, w, p in zip(fanned, walks, firsts) if not isinstance(p, BaseException)]
            # Nobody follows an author whose walk ends at once: the item and their own home.
            await self.store.deliver([Delivery(_item(e), [e.author_id, *(p or [])]) for e, _, p in ready])
            for event, walk, page in ready:
                if page is None:
                    continue
                _count(page)
                async for followers in walk:
                    await self.store.push_to_homes(followers, [event.tweet_id])
                    _count(followers)
            for first in firsts:
                if isinstance(first, BaseException):
                    raise first
        finally:
            for walk in walks:
                await walk.aclose()

    async def tweet_deleted(self, event: TweetDeleted) -> None:
        # The author's followers are exactly the homes that may hold it: no scan of users.
        await self.own_delete(event.author_id, event.tweet_id)
        await self.store.unpush_from_celebrity(event.author_id, [event.tweet_id])
        async for followers in self.users.follower_pages(event.author_id, self.batch):
            await self.store.unpush_from_homes(followers, [event.tweet_id])

    async def follow_created(self, event: FollowCreated) -> None:
        # First, as for a removal: a home being rebuilt learns of the follow, and does
        # not land a read of the graph that may predate it (it would lack the followee,
        # or hold only the backfill's part of them and be marked whole: 0023).
        await self.store.unpush_from_homes([event.follower_id], [])
        followee = await self.users.user(event.followee_id)
        await self.celebrities.notice(event.followee_id, followee.followers_count)
        if self.celebrities.is_celebrity(followee.followers_count):
            await self.celebrities.ensure_list(event.followee_id)
            await self.store.follow_celebrity([event.follower_id], event.followee_id)
        elif await self.store.is_materialized(event.follower_id):
            # Backfill: the followee's recent tweets appear at once, in time order. As
            # many as asked for: they may have older ones, which the home must not
            # claim to hold all of (0023).
            recent = await self.users.recent_tweets([event.followee_id], None, self.backfill_items)
            await self.store.put_items(recent)
            partial = len(recent) >= self.backfill_items
            await self.store.push_to_homes([event.follower_id], item_ids(recent), partial=partial)

    async def follow_removed(self, event: FollowRemoved) -> None:
        # First, with none of theirs to take out yet: a home being rebuilt learns of the
        # removal, and does not land a read of the graph that may predate it (0023),
        # nor the followee among its celebrities once they are taken out below.
        await self.store.unpush_from_homes([event.follower_id], [])
        await self.store.unfollow_celebrity([event.follower_id], event.followee_id)
        ids = await self.store.home_ids(event.follower_id)
        authors = await authors_of(self.store, self.users, ids)
        theirs = [uuid.UUID(bytes=i) for i in ids if authors.get(i) == event.followee_id]
        if theirs:
            await self.store.unpush_from_homes([event.follower_id], theirs)
        followee = await self.users.user(event.followee_id)
        await self.celebrities.notice(event.followee_id, followee.followers_count)
