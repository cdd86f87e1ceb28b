import uuid
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from users.domain import sharding
from users.domain.sharding import (
    LOGICAL_SHARDS,
    ShardMap,
    logical_shard,
    new_tweet_id,
    rebalance,
    tweet_logical_shard,
    user_logical_shard,
)


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
    shards = ShardMap.ranges(3)
    physical = [shards.physical(logical) for logical in range(LOGICAL_SHARDS)]
    assert physical == sorted(physical)
    assert set(physical) == {0, 1, 2}


def test_users_spread_over_both_shards() -> None:
    shards = ShardMap.ranges(2)
    counts = [0, 0]
    for _ in range(2000):
        counts[shards.for_user(uuid.uuid4())] += 1
    assert min(counts) > 800


def test_username_shard_ignores_case_only_through_the_key() -> None:
    shards = ShardMap.ranges(16)
    assert shards.for_username("alice") == shards.for_username("Alice".lower())


def test_the_first_map_of_a_data_set_is_the_one_every_stack_had() -> None:
    # Before the map was data, a logical shard lived on `logical * n // 1024`: a stack
    # that migrates to the catalog keeps every row where it is.
    for n in (1, 2, 3, 7):
        shards = ShardMap.ranges(n)
        assert all(shards.physical(logical) == logical * n // LOGICAL_SHARDS for logical in range(LOGICAL_SHARDS))


def test_rebalance_from_two_databases_onto_three_moves_only_the_third_share() -> None:
    owners = ShardMap.ranges(2).owners
    moves = rebalance(owners, [0, 1, 2])
    moved = [logical for move in moves for logical in move.logicals]
    assert {move.target for move in moves} == {2}
    assert len(moved) == len(set(moved)) == 341  # 1024 // 3: nothing else moves
    after = _apply(owners, moves)
    assert sorted(Counter(after).values()) == [341, 341, 342]


def _apply(owners: tuple[int, ...], moves) -> list[int]:
    after = list(owners)
    for move in moves:
        for logical in move.logicals:
            assert after[logical] == move.source
            after[logical] = move.target
    return after


@settings(max_examples=200)
@given(
    owners=st.lists(st.integers(0, 5), min_size=LOGICAL_SHARDS, max_size=LOGICAL_SHARDS),
    databases=st.sets(st.integers(0, 7), min_size=1, max_size=8),
)
def test_rebalance_spreads_evenly_with_the_fewest_moves(owners: list[int], databases: set[int]) -> None:
    moves = rebalance(owners, databases)
    after = _apply(tuple(owners), moves)
    counts = Counter(after)
    assert set(counts) <= databases  # a database left out gives everything away
    share = [counts.get(db, 0) for db in databases]
    assert max(share) - min(share) <= 1
    # The fewest moves: each database sheds only what it holds above its final share.
    before = Counter(owners)
    needed = sum(max(0, before.get(db, 0) - counts.get(db, 0)) for db in set(before) | databases)
    assert sum(len(move.logicals) for move in moves) == needed
    assert all(move.source != move.target for move in moves)


def test_an_even_map_needs_no_move() -> None:
    assert rebalance(ShardMap.ranges(4).owners, range(4)) == []


def test_a_users_shard_is_its_hash_whether_remembered_or_not() -> None:
    # Remembered ids and ids asked again after the memory was emptied (it empties when
    # full) route where the hash says.
    ids = [uuid.uuid4() for _ in range(300)]
    first = [user_logical_shard(i) for i in ids]
    assert first == [logical_shard(i.bytes) for i in ids]
    for k in range(sharding._REMEMBERED + 1):  # fills it past its bound: emptied once
        user_logical_shard(uuid.UUID(int=k))
    assert len(sharding._SHARD_OF) <= sharding._REMEMBERED  # bounded
    assert [user_logical_shard(i) for i in ids] == first
