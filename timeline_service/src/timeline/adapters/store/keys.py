"""Every Redis key of the read model: the one place that names them.

  tlm:{user}    the home is materialized; its TTL is the home's (gone: rebuilt on read)
  tl:{user}     the home timeline: 16-byte tweet ids, newest first, capped
  tlr:{user}:<token>  a rebuild's ids on their way into tl:{user}: whole.lua renames
                or drops it in the transaction that makes it (it lapses with the
                rebuild's mark if that transaction's scripts were refused)
  fc:{user}     the followed celebrities, merged into the home's pages at read time
                (members: the id in 32 hex digits, the hash tag of its list's keys)
  clm:{author}  the celebrity's list is filled ("1", or "c": cut), or being filled ("r"
                and the fill's token, or "x": spoiled by a removal); gone: filled
                from the source of truth by its next reader
  cl:{author}   a celebrity's recent tweet ids, kept once instead of fanned out
  celebs        the authors treated as celebrities now (to notice a threshold crossing)
  generation    a token made when the store was last found empty (a loss: warm up)
  tw:<id>       a tweet's timeline item, the exact JSON the API returns (16-byte id)
  gone:<id>     the tweet was deleted (for as long as an item is cached): a fan-out of
                it that comes later (a worker behind, or one that lost its partition)
                delivers nothing
  st:{user}     the user's open live streams, fleet-wide (id -> when it lapses)
  rs:{user}:<id> what a closed stream had sent just below its last id (16-byte ids),
                so a resume from that id can still send what arrived late
  sx:{user}     a stream read this home lately (it lapses REMOVALS_SECONDS after the
                last): its removals are recorded
  rm:tl:{user}, rm:cl:{author}  what was removed from a home (while sx:{user} was there)
                or a celebrity's list lately: 16-byte id -> when (ms), for
                REMOVALS_SECONDS; a resume and each keep-alive send the deletes a
                stream's messages did not bring

and one channel (sharded pub/sub) per list, which the scripts that change the list
publish to: "n:" and the list's key (`n:tl:{user}`, `n:cl:{author}`), so the channel
shares the list's slot. Messages: "+" (ids were added) or "-" and a 16-byte id (removed).

The id in braces is a Redis Cluster hash tag: a home's three keys (or a celebrity's two)
share a slot, so one script may touch them all. Ids are raw 16 bytes, not 36-character
strings: an entry then costs little more than its id in Redis memory, which is what makes
800 ids per user affordable (docs/benchmarks.md, "The aims, plainly").
"""

from __future__ import annotations

import uuid
from typing import NamedTuple


class HomeKeys(NamedTuple):
    marker: str
    ids: str
    celebrities: str


class CelebrityKeys(NamedTuple):
    marker: str
    ids: str


# page.lua names a followed celebrity's keys itself (it learns who they are inside the
# script): it is given these prefixes and adds the same hash tag.
CELEBRITY_MARKER = "clm:"
CELEBRITY_IDS = "cl:"
CELEBRITIES = "celebs"
GENERATION = "generation"
ITEM = b"tw:"
GONE = b"gone:"


def _tag(user: uuid.UUID) -> str:
    return "{%032x}" % user.int  # noqa: UP031 - `user.hex` and an f-string: slower, on every key of a fan-out


HOME_MARKER, HOME_IDS, HOME_CELEBRITIES = "tlm:", "tl:", "fc:"


def home(user: uuid.UUID) -> HomeKeys:
    tag = _tag(user)
    return HomeKeys(HOME_MARKER + tag, HOME_IDS + tag, HOME_CELEBRITIES + tag)


def landing(user: uuid.UUID, token: str) -> str:
    return "tlr:" + _tag(user) + ":" + token


def home_lists(users: list[uuid.UUID]) -> list[str]:
    """The marker and list keys of each home, flat (marker, list, marker, list, ...):
    what a fan-out's push takes for a tweet's hundred followers, made without a HomeKeys
    and a call each, which would be a large part of the worker's time
    (docs/benchmarks.md, "A push's home keys made in one loop")."""
    pairs: list[str] = []
    for tag in map(_tag, users):
        pairs += (HOME_MARKER + tag, HOME_IDS + tag)
    return pairs


def celebrity(author: uuid.UUID) -> CelebrityKeys:
    tag = _tag(author)
    return CelebrityKeys(CELEBRITY_MARKER + tag, CELEBRITY_IDS + tag)


def followed(author: uuid.UUID) -> bytes:
    """A followed celebrity as a member of fc:{user}: its id in hex, which page.lua
    puts into the celebrity's key as it is (formatting 16 bytes as hex in Lua would
    cost the server that work for every celebrity of every page: docs/decisions/0018)."""
    return author.hex.encode()


def follower_of(member: bytes) -> uuid.UUID:
    """The celebrity an fc:{user} member names (16 raw bytes in homes made before)."""
    return uuid.UUID(bytes=member) if len(member) == 16 else uuid.UUID(hex=member.decode())


CHANGES = "n:"  # the scripts add it to a list's key to name its channel


def changes(list_key: str) -> str:
    return CHANGES + list_key


def streams(user: uuid.UUID) -> str:
    return "st:" + _tag(user)


def sent(user: uuid.UUID, last: uuid.UUID) -> str:
    return "rs:" + _tag(user) + ":" + last.hex


REMOVALS_SECONDS = 600  # how long removals are kept for streams: as a closed stream's record (rs:)


def removals(list_key: str) -> str:
    return "rm:" + list_key


def streamed(user: uuid.UUID) -> str:
    return "sx:" + _tag(user)


def item(tweet_id: uuid.UUID | bytes) -> bytes:
    return ITEM + (tweet_id.bytes if isinstance(tweet_id, uuid.UUID) else tweet_id)


def gone(tweet_id: uuid.UUID) -> bytes:
    return GONE + tweet_id.bytes
