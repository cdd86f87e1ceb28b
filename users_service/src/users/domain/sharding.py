"""Where a row lives: logical shards, the shard map, and shard-carrying tweet ids.

A key hashes to one of LOGICAL_SHARDS logical shards; the shard map (data, versioned)
assigns each logical shard to a physical database. Adding a database means moving
whole logical shards (and changing the map), never rehashing rows - the scheme that
Instagram and Notion run. See docs/decisions/0003-sharding.md.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from shared_schemas.ids import new_id

# Fixed for the life of the data: changing it would move every row. 1024 leaves room
# for up to 1024 physical databases before a logical shard has to be split.
LOGICAL_SHARDS = 1024


def logical_shard(key: bytes) -> int:
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOGICAL_SHARDS


# Remembered: a rebuild routes each of a home's hundred followees, and the hash costs
# far more than the lookup (docs/benchmarks.md, "rebuilds in groups"). Keyed by the
# id's integer, not the UUID: a UUID hashes through a Python method on every lookup,
# which cost about as much as the hash it spared (docs/benchmarks.md, "The shard of a
# user, remembered by its integer"). Emptied when full: the ids in use come back at
# once, at one hash each.
_SHARD_OF: dict[int, int] = {}
_REMEMBERED = 1 << 17


def user_logical_shard(user_id: uuid.UUID) -> int:
    key = user_id.int
    found = _SHARD_OF.get(key)
    if found is None:
        if len(_SHARD_OF) >= _REMEMBERED:
            _SHARD_OF.clear()
        found = _SHARD_OF[key] = logical_shard(user_id.bytes)
    return found


def new_tweet_id(author_id: uuid.UUID) -> uuid.UUID:
    """A UUIDv7 whose first 10 random bits (after the variant) carry the author's logical
    shard, so a tweet id alone routes to its shard (as Instagram's ids do) while the
    48-bit millisecond prefix keeps ids time-ordered. 64 random bits remain."""
    raw = bytearray(new_id().bytes)
    shard = user_logical_shard(author_id)
    # Byte 8 is `10xxxxxx` (variant + 6 random bits), byte 9 is random: put the
    # shard's 10 bits into those 6 + the top 4 bits of byte 9.
    raw[8] = 0x80 | (shard >> 4)
    raw[9] = ((shard & 0x0F) << 4) | (raw[9] & 0x0F)
    return uuid.UUID(bytes=bytes(raw))


def tweet_logical_shard(tweet_id: uuid.UUID) -> int:
    return raw_tweet_logical_shard(tweet_id.bytes)


def raw_tweet_logical_shard(raw: bytes) -> int:
    """`tweet_logical_shard` of a tweet id's 16 bytes."""
    return ((raw[8] & 0x3F) << 4) | (raw[9] >> 4)


class ShardMap:
    """Logical shard -> physical database id: data, read from the catalog (database 0's
    shard_map table) and followed by every process; `version` grows with each move."""

    def __init__(self, owners: Sequence[int], version: int = 0) -> None:
        if len(owners) != LOGICAL_SHARDS:
            raise ValueError("a shard map names the database of every logical shard")
        self.owners = tuple(owners)
        self.version = version

    @classmethod
    def ranges(cls, physical_count: int, version: int = 0) -> ShardMap:
        """The first map of a data set: contiguous ranges over `physical_count`
        databases (the map migration 0005 starts the catalog from, so an existing
        stack's rows stay where they are)."""
        if not 1 <= physical_count <= LOGICAL_SHARDS:
            raise ValueError("need between 1 and LOGICAL_SHARDS physical shards")
        return cls([logical * physical_count // LOGICAL_SHARDS for logical in range(LOGICAL_SHARDS)], version)

    def physical(self, logical: int) -> int:
        return self.owners[logical]

    def for_user(self, user_id: uuid.UUID) -> int:
        return self.owners[user_logical_shard(user_id)]

    def for_username(self, key: str) -> int:
        return self.owners[logical_shard(key.encode())]

    def for_tweet(self, tweet_id: uuid.UUID) -> int:
        return self.owners[tweet_logical_shard(tweet_id)]

    def logicals_of(self, database: int) -> list[int]:
        return [logical for logical, owner in enumerate(self.owners) if owner == database]


class Move(NamedTuple):
    logicals: tuple[int, ...]
    source: int
    target: int


def rebalance(owners: Sequence[int], databases: Iterable[int]) -> list[Move]:
    """The fewest logical shards moved so that each of `databases` holds
    LOGICAL_SHARDS / n of them, give or take one (a database left out of `databases`
    gives all of its away): only a database's excess moves, to those short of their
    share. A database gives its highest logical shards first, so what it keeps stays
    in few ranges."""
    ids = sorted(set(databases))
    if not ids:
        raise ValueError("no database to spread the shards over")
    held: dict[int, list[int]] = {db: [] for db in ids}
    for logical, owner in enumerate(owners):
        held.setdefault(owner, []).append(logical)
    base, extra = divmod(LOGICAL_SHARDS, len(ids))
    # The databases that hold most keep the extra ones: fewer moves than any other choice.
    by_size = sorted(ids, key=lambda db: (-len(held[db]), db))
    quota = {db: base + (1 if rank < extra else 0) for rank, db in enumerate(by_size)}
    surplus = [(logical, db) for db in sorted(held) for logical in held[db][quota.get(db, 0) :]]
    moves: dict[tuple[int, int], list[int]] = {}
    given = iter(surplus)
    for db in ids:
        for _ in range(quota[db] - len(held[db])):
            logical, source = next(given)
            moves.setdefault((source, db), []).append(logical)
    return [Move(tuple(sorted(logicals)), source, target) for (source, target), logicals in sorted(moves.items())]
