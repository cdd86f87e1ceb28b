"""The Timeline Service's services wired to in-memory fakes, and helpers to drive them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from shared_schemas.events import FollowCreated, FollowRemoved, TweetCreated, TweetDeleted
from shared_schemas.ids import new_id, utcnow
from tests.fakes import FakeTimelineStore, FakeUsers
from timeline.services.celebrities import Celebrities
from timeline.services.fanout import Fanout
from timeline.services.ports import TimelineStore
from timeline.services.reader import Reader


@dataclass
class World:
    store: TimelineStore
    users: FakeUsers
    celebrities: Celebrities
    fanout: Fanout
    reader: Reader

    async def follow(self, follower: uuid.UUID, followee: uuid.UUID) -> None:
        """What the Users Service does, then what its event does here."""
        self.users.follow(follower, followee)
        await self.fanout.handle(
            FollowCreated(event_id=new_id(), occurred_at=utcnow(), follower_id=follower, followee_id=followee)
        )

    async def unfollow(self, follower: uuid.UUID, followee: uuid.UUID) -> None:
        self.users.unfollow(follower, followee)
        await self.fanout.handle(
            FollowRemoved(event_id=new_id(), occurred_at=utcnow(), follower_id=follower, followee_id=followee)
        )

    def tweet_event(self, author: uuid.UUID, text: str = "hi") -> TweetCreated:
        tweet_id = new_id()
        self.users.post(author, tweet_id, text)
        return TweetCreated(
            event_id=new_id(),
            occurred_at=utcnow(),
            tweet_id=tweet_id,
            author_id=author,
            username=self.users.names[author],
            text=text,
            created_at=utcnow(),
            author_followers_count=len(self.users.followers(author)),
        )

    async def tweet(self, author: uuid.UUID, text: str = "hi") -> uuid.UUID:
        event = self.tweet_event(author, text)
        await self.fanout.handle(event)
        return event.tweet_id

    async def delete(self, author: uuid.UUID, tweet_id: uuid.UUID) -> None:
        del self.users.tweets[tweet_id]
        await self.fanout.handle(
            TweetDeleted(event_id=new_id(), occurred_at=utcnow(), tweet_id=tweet_id, author_id=author)
        )

    async def timeline(self, user: uuid.UUID, page: int = 3) -> list[uuid.UUID]:
        """Every item of the user's timeline, paged as a client pages."""
        seen: list[uuid.UUID] = []
        cursor = None
        while True:
            items, cursor, *_ = await self.reader.page(user, cursor, page)
            seen += [uuid.UUID(raw.split(b'"tweet_id":"')[1][:36].decode()) for raw in items]
            if cursor is None:
                return seen


def world(
    threshold: int = 3, max_items: int = 800, store: TimelineStore | None = None, backfill_items: int = 50
) -> World:
    """The services over the fake store, or over `store` (a real one: tests/integration)."""
    store, users = store or FakeTimelineStore(max_items), FakeUsers()
    celebrities = Celebrities(store, users, threshold, batch=2)  # small pages of followers
    return World(
        store,
        users,
        celebrities,
        Fanout(store, users, celebrities, backfill_items=backfill_items, batch=2),
        Reader(store, users, celebrities),
    )
