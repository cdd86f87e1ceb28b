"""Publishing, deleting and listing tweets."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import asyncpg

from shared_schemas import codec, topics
from shared_schemas.events import TweetCreated, TweetDeleted
from shared_schemas.ids import new_id, utcnow
from users.adapters import fence, tweets_repo
from users.adapters.db import ShardedDatabase
from users.domain.errors import Conflict, NotFound, ShardMoved
from users.domain.model import Tweet
from users.domain.rules import normalize_text
from users.domain.sharding import new_tweet_id, user_logical_shard
from users.services.routing import follows_moves


class _Draft(NamedTuple):
    author_id: uuid.UUID
    text: str
    key: uuid.UUID | None


@follows_moves
async def publish(db: ShardedDatabase, author_id: uuid.UUID, text: str, key: uuid.UUID | None) -> Tweet:
    """A retry with the same key and text returns the original tweet (id and time).
    The POSTs that reach one database while its previous group is being written go
    together: one lookup of their authors, one statement, one commit (0021)."""
    index = db.map.for_user(author_id)
    group = db.grouped(("publish", index), lambda drafts: _publish_group(db, index, drafts))
    outcome: Tweet | Exception = await group(_Draft(author_id, normalize_text(text), key))
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


async def _publish_group(db: ShardedDatabase, index: int, drafts: list[_Draft]) -> list[Tweet | Exception]:
    """Each draft's tweet, or what to raise for it."""
    outcomes: list[Tweet | Exception] = [NotFound("caller (X-User-ID) not found") for _ in drafts]
    async with db.raw_primary(index) as conn:
        authors = await tweets_repo.authors(conn, list({d.author_id for d in drafts}))
        missing = {user_logical_shard(d.author_id) for d in drafts if d.author_id not in authors}
        if missing:  # no such user here: a 404 only if their shard is still here
            held = await fence.held_of(conn, sorted(missing))
            for i, draft in enumerate(drafts):
                logical = user_logical_shard(draft.author_id)
                if draft.author_id not in authors and logical not in held:
                    outcomes[i] = ShardMoved([logical])  # a map older than a move: read it again
        new: dict[int, tweets_repo.NewTweet] = {}
        for i, draft in enumerate(drafts):
            if draft.author_id in authors:
                new[i] = _new_tweet(draft, *authors[draft.author_id])
        if not new:
            return outcomes
        written = await tweets_repo.insert_with_events(conn, list(new.values()), topics.TWEETS.name)
        for i, tweet in new.items():
            username = authors[tweet.author_id][0]
            if user_logical_shard(tweet.author_id) not in written.held:
                outcomes[i] = ShardMoved([user_logical_shard(tweet.author_id)])
            elif tweet.tweet_id in written.inserted:
                outcomes[i] = Tweet(tweet.tweet_id, tweet.author_id, username, tweet.text, tweet.created_at)
            else:  # the author already used this key: that tweet, if the text is the same
                outcomes[i] = await _original(conn, tweet, username)
    return outcomes


async def _original(conn: asyncpg.Connection, tweet: tweets_repo.NewTweet, username: str) -> Tweet | Exception:
    """The tweet first published with `tweet`'s key, or the 409; an error of this read
    is this POST's alone (the group's tweets are committed by now)."""
    assert tweet.key is not None  # only a keyed insert can conflict
    try:
        tweet_id, text, created_at = await tweets_repo.by_idempotency_key(conn, tweet.author_id, tweet.key)
    except Exception as exc:  # noqa: BLE001 - raised to this POST only
        return exc
    if text != tweet.text:
        return Conflict("idempotency_key was already used for a different text")
    return Tweet(tweet_id, tweet.author_id, username, text, created_at)


def _new_tweet(draft: _Draft, username: str, followers_count: int) -> tweets_repo.NewTweet:
    tweet_id, now = new_tweet_id(draft.author_id), utcnow()
    event = TweetCreated(
        event_id=new_id(),
        occurred_at=now,
        tweet_id=tweet_id,
        author_id=draft.author_id,
        username=username,
        text=draft.text,
        created_at=now,
        author_followers_count=followers_count,
    )
    return tweets_repo.NewTweet(tweet_id, draft.author_id, draft.text, now, draft.key, codec.encode(event))


@follows_moves
async def delete(db: ShardedDatabase, caller: uuid.UUID, tweet_id: uuid.UUID) -> None:
    """Only the author may delete; anyone else, or a second delete, gets 404."""
    event = TweetDeleted(event_id=new_id(), occurred_at=utcnow(), tweet_id=tweet_id, author_id=caller)
    async with db.raw_primary(db.map.for_tweet(tweet_id)) as conn:
        deleted = await tweets_repo.mark_deleted(conn, tweet_id, caller, topics.TWEETS.name, codec.encode(event))
    if not deleted:
        raise NotFound("tweet not found")


@follows_moves
async def list_by_author(
    db: ShardedDatabase, author_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Tweet]:
    """A user's own live tweets, newest first, older than `before`; NotFound if there is
    no such user (one statement: tweets_repo._LISTING says why)."""
    async with db.raw_primary(db.map.for_user(author_id)) as conn:
        found = await tweets_repo.by_author(conn, author_id, before, limit)
    if found is None:
        raise NotFound("user not found")
    return found
