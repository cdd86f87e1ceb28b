"""Where a row lives: logical shards, the shard map, and shard-carrying tweet ids.

A key hashes to one of LOGICAL_SHARDS logical shards; the shard map assigns logical
shards to physical databases in contiguous ranges. Adding a database means moving
whole logical shards (and changing the map), never rehashing rows - the scheme that
Instagram and Notion run. See docs/decisions/0003-sharding.md.
"""

from __future__ import annotations

import hashlib
import uuid

from shared_schemas.ids import new_id

# Fixed for the life of the data: changing it would move every row. 1024 leaves room
# for up to 1024 physical databases before a logical shard has to be split.
LOGICAL_SHARDS = 1024


def logical_shard(key: bytes) -> int:
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") % LOGICAL_SHARDS


def user_logical_shard(user_id: uuid.UUID) -> int:
    return logical_shard(user_id.bytes)


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
    raw = tweet_id.bytes
    return ((raw[8] & 0x3F) << 4) | (raw[9] >> 4)


class ShardMap:
    """Logical shard -> physical database index, in contiguous ranges."""

    def __init__(self, physical_count: int) -> None:
        if not 1 <= physical_count <= LOGICAL_SHARDS:
            raise ValueError("need between 1 and LOGICAL_SHARDS physical shards")
        self.physical_count = physical_count

    def physical(self, logical: int) -> int:
        return logical * self.physical_count // LOGICAL_SHARDS

    def for_user(self, user_id: uuid.UUID) -> int:
        return self.physical(user_logical_shard(user_id))

    def for_username(self, key: str) -> int:
        return self.physical(logical_shard(key.encode()))

    def for_tweet(self, tweet_id: uuid.UUID) -> int:
        return self.physical(tweet_logical_shard(tweet_id))
