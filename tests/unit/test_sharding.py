import uuid

from users.domain.sharding import LOGICAL_SHARDS, ShardMap, new_tweet_id, tweet_logical_shard, user_logical_shard


def test_tweet_id_carries_its_authors_logical_shard_and_stays_a_uuid7() -> None:
    for _ in range(200):
        author = uuid.uuid4()
        tweet = new_tweet_id(author)
        assert tweet.version == 7 and tweet.variant == uuid.RFC_4122
        assert tweet_logical_shard(tweet) == user_logical_shard(author)


def test_tweet_ids_sort_by_creation_time() -> None:
    author = uuid.uuid4()
    ids = []
    for _ in range(50):
        ids.append(new_tweet_id(author))
        # UUIDv7 orders by millisecond; ids made in different milliseconds are ordered.
    later = new_tweet_id(author)
    assert later.bytes[:6] >= max(i.bytes[:6] for i in ids)


def test_shard_map_assigns_contiguous_ranges_and_covers_every_database() -> None:
    shards = ShardMap(3)
    physical = [shards.physical(logical) for logical in range(LOGICAL_SHARDS)]
    assert physical == sorted(physical)
    assert set(physical) == {0, 1, 2}


def test_users_spread_over_both_shards() -> None:
    shards = ShardMap(2)
    counts = [0, 0]
    for _ in range(2000):
        counts[shards.for_user(uuid.uuid4())] += 1
    assert min(counts) > 800


def test_username_shard_ignores_case_only_through_the_key() -> None:
    shards = ShardMap(16)
    assert shards.for_username("alice") == shards.for_username("Alice".lower())
