"""Publishing, deleting and listing tweets."""

from __future__ import annotations

import uuid

from shared_schemas import codec, topics
from shared_schemas.events import TweetCreated, TweetDeleted
from shared_schemas.ids import new_id, utcnow
from users.adapters import outbox_repo, tweets_repo
from users.adapters.db import ShardedDatabase
from users.domain.errors import Conflict, NotFound
from users.domain.model import Tweet
from users.domain.rules import normalize_text
from users.domain.sharding import new_tweet_id
from users.services.accounts import get_user
from users.services.routing import follows_moves


@follows_moves
async def publish(db: ShardedDatabase, author_id: uuid.UUID, text: str, key: uuid.UUID | None) -> Tweet:
    """A retry with the same key and text returns the original tweet (id and time)."""
    text = normalize_text(text)
    tweet_id, now = new_tweet_id(author_id), utcnow()
    async with db.raw_primary(db.map.for_user(author_id)) as conn:
        author = await tweets_repo.author(conn, author_id)
        if author is None:
            raise NotFound("caller (X-User-ID) not found")
        username, followers_count = author
        event = TweetCreated(
            event_id=new_id(),
            occurred_at=now,
            tweet_id=tweet_id,
            author_id=author_id,
            username=username,
            text=text,
            created_at=now,
            author_followers_count=followers_count,
        )
        payload = codec.encode(event)
        if not await tweets_repo.insert_with_event(
            conn, tweet_id, author_id, text, now, key, topics.TWEETS.name, payload
        ):
            assert key is not None  # only a keyed insert can conflict
            tweet_id, stored_text, created_at = await tweets_repo.by_idempotency_key(conn, author_id, key)
            if stored_text != text:
                raise Conflict("idempotency_key was already used for a different text")
            return Tweet(tweet_id, author_id, username, text, created_at)
    return Tweet(tweet_id, author_id, username, text, now)


@follows_moves
async def delete(db: ShardedDatabase, caller: uuid.UUID, tweet_id: uuid.UUID) -> None:
    """Only the author may delete; anyone else, or a second delete, gets 404."""
    async with db.primaries[db.map.for_tweet(tweet_id)].begin() as conn:
        if not await tweets_repo.mark_deleted(conn, tweet_id, caller):
            raise NotFound("tweet not found")
        event = TweetDeleted(event_id=new_id(), occurred_at=utcnow(), tweet_id=tweet_id, author_id=caller)
        await outbox_repo.add(conn, topics.TWEETS.name, str(caller), event)


async def list_by_author(
    db: ShardedDatabase, author_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Tweet]:
    await get_user(db, author_id)
    async with db.reader_for_user(author_id).connect() as conn:
        return await tweets_repo.by_author(conn, author_id, before, limit)
