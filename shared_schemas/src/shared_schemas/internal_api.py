"""Shapes of the Users Service's internal HTTP API (/internal/...), which the Timeline
Service calls on a cache miss, for fan-out, backfill, merge and rebuild."""

from __future__ import annotations

import functools
import struct
import uuid
from typing import Annotated

import msgspec

# A client of either service's internal API lets a kept-alive connection go once it has
# been idle this long: less than the servers keep one (uvicorn's 5 s), as the gateway's
# upstreams do. A client that sends on a connection the server is closing that instant
# fails the request ("Can not write request body"): with aiohttp's default (15 s) a
# batch of rebuilds can fail so, 503 to each of its readers (docs/benchmarks.md, "a
# batch of rebuilds failed on a closing connection").
IDLE_CONNECTION_SECONDS = 4.0


class TweetItem(msgspec.Struct, frozen=True):
    """A tweet as every timeline and listing shows it (the public item shape)."""

    tweet_id: uuid.UUID
    user_id: uuid.UUID
    username: str
    text: str
    created_at: str  # ISO 8601, UTC, milliseconds, "Z" (shared_schemas.ids.iso_ms)


class UserInfo(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    username: str
    created_at: str
    followers_count: int
    following_count: int


# The largest page of followers one call returns (the fan-out pages through the rest).
MAX_FOLLOWERS_PAGE = 5000


class FollowersPage(msgspec.Struct, frozen=True):
    user_ids: list[uuid.UUID]
    next_after: uuid.UUID | None  # pass as `after` for the next page; None at the end


class FirstFollowersRequest(msgspec.Struct, frozen=True):
    """The first page of followers of each of several users (POST /internal/followers/first-pages):
    the fan-outs of the tweets that waited while the previous call was answered."""

    user_ids: Annotated[list[uuid.UUID], msgspec.Meta(max_length=100)]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_FOLLOWERS_PAGE)] = 1000


class FirstFollowers(msgspec.Struct, frozen=True):
    # One per user asked, in order; None where the user's database could not be read.
    pages: list[FollowersPage | None]


class Following(msgspec.Struct, frozen=True):
    user: UserInfo
    following: list[UserInfo]


class RecentTweetsRequest(msgspec.Struct, frozen=True):
    author_ids: list[uuid.UUID]
    limit: int = 20
    before: uuid.UUID | None = None  # only tweets older than this id
    # Instead: the oldest `limit` tweets newer than this id (still newest first), for a
    # refresh past the cached window.
    after: uuid.UUID | None = None


# The most tweets one call looks up or returns, so a bad caller cannot make a shard scan
# without end (a caller asks for more in several).
MAX_TWEETS_A_CALL = 1000


# The most tweets one call for several authors' newest may return: the authors asked
# times the tweets asked of each.
MAX_NEWEST_A_CALL = 25_000


class NewestTweetsRequest(msgspec.Struct, frozen=True):
    """Each author's newest tweets, apart (POST /internal/tweets/newest-each): the
    celebrity lists that a lost Redis emptied are filled at once by every reader of
    them, one call for the fills that waited meanwhile (docs/decisions/0021)."""

    author_ids: list[uuid.UUID]
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_TWEETS_A_CALL)] = 20

    def __post_init__(self) -> None:
        if len(self.author_ids) * self.limit > MAX_NEWEST_A_CALL:
            raise ValueError(f"authors times limit is at most {MAX_NEWEST_A_CALL}")


class NewestTweets(msgspec.Struct, frozen=True):
    # One list per author asked, in order, newest first (empty: none, or no such author);
    # None where the author's database could not be read.
    tweets: list[list[TweetItem] | None]


class TweetsByIdsRequest(msgspec.Struct, frozen=True):
    tweet_ids: list[uuid.UUID]


class Tweets(msgspec.Struct, frozen=True):
    tweets: list[TweetItem]


class HomeSource(msgspec.Struct, frozen=True):
    """What a lost home is rebuilt from (GET /internal/users/{id}/home-source)."""

    # Followed authors merged at read time (at or over the caller's threshold).
    celebrities: list[uuid.UUID]
    # The newest ids of the caller and the other followees, newest first, as 16-byte
    # runs (base64 in JSON): 800 ids cost one decode in C, not 800 UUID parses.
    tweet_ids: bytes
    # The newest few of them whole (the first page's items): the read that asked for
    # the rebuild needs no second call to fill the tweet cache.
    tweets: list[TweetItem]


def ids_of(run: bytes, count: int | None = None) -> tuple[bytes, ...]:
    """The 16-byte ids of a run (`HomeSource.tweet_ids`), the first `count` of them
    (None: all), in one C call: a loop of slices costs far more
    (docs/benchmarks.md, "runs split in C"). A run that is not whole ids raises
    `struct.error` (a truncated id is no tweet's)."""
    if count is not None:
        run = run[: 16 * count]
    return _run_format(len(run) // 16).unpack(run)


@functools.lru_cache(maxsize=64)
def _run_format(count: int) -> struct.Struct:
    return struct.Struct("16s" * count)


# The most homes one call rebuilds (a batch is the rebuilds that waited meanwhile).
MAX_HOME_SOURCES = 100
MAX_HOME_IDS = 1000  # ids kept per home, at most
MAX_HOME_ITEMS = 101  # a page of 100 whole, and one more that says whether another exists


class HomeAsk(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    # How many of the newest tweets to return whole (the page that asked; 0: a warm-up).
    items: Annotated[int, msgspec.Meta(ge=0, le=MAX_HOME_ITEMS)] = 0


class HomeSourcesRequest(msgspec.Struct, frozen=True):
    """What several lost homes are rebuilt from (POST /internal/home-sources): the
    rebuilds that waited while the previous call was answered (docs/decisions/0021)."""

    homes: Annotated[list[HomeAsk], msgspec.Meta(max_length=MAX_HOME_SOURCES)]
    threshold: Annotated[int, msgspec.Meta(ge=1)]  # followers from which an author is a celebrity
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_HOME_IDS)] = 800  # ids per home


class HomeSources(msgspec.Struct, frozen=True):
    # One per home asked, in order; None where the Users Service knows no such user.
    sources: list[HomeSource | None]


# -- the Timeline Service's internal API, which the Users API calls -----------------------


class OwnTweets(msgspec.Struct, frozen=True):
    """Tweets just published, each for its author's own home (POST /internal/homes/own-tweets).
    A batch is the POSTs that waited while the previous one was answered: a handful."""

    tweets: Annotated[list[TweetItem], msgspec.Meta(max_length=1000)]
