"""The bulk loader: the rows the write path would have written, and the Redis state the
worker (or a rebuild) would have built, in minutes rather than hours.

PostgreSQL: every table is emptied on every database of the shard catalog (database 0's
shard_databases), then filled with COPY (binary, FREEZE) on the database each row
belongs to, routed by the catalog's shard map as the Users Service does: users and their
counters and `following` ("whom X follows") on the user's shard, `followers` ("who
follows Y") on the followee's, username claims on the lower-cased name's shard, tweets
on the author's. The five seed users are put back as the migration writes them.

Redis: the database is flushed, then filled through `redis-cli --pipe` with exactly the
keys the read model's store uses (timeline.adapters.store.keys, called): tweet cache
items (timeline.domain.items.encode, the bytes the API returns), celebrity
lists and markers, the `celebs` set, and each user's home list, marker (with TTL) and
followed-celebrities set. bench/check.py then compares a few homes with what
Reader.rebuild makes of the same rows.
"""

from __future__ import annotations

import asyncio
import importlib.util
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import redis

from bench import homes, resp
from bench.config import ROOT, Config
from bench.graph import Graph
from bench.progress import say, step
from shared_schemas.ids import iso_ms, uuid7_time
from shared_schemas.internal_api import TweetItem
from timeline.adapters.store import keys as store_keys
from timeline.adapters.store.keys import item as tweet_key
from timeline.domain import items as item_codec
from users.adapters import catalog

# The bench's data only: the catalog (shard_databases, shard_map, shard_map_version,
# shard_moves) and each database's shard_fence and shard_changes are the system's.
TABLES = ("outbox", "tweets", "followers", "following", "username_claims", "users")
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_EDGE = np.dtype([("n", ">i2"), ("l1", ">i4"), ("a", "V16"), ("l2", ">i4"), ("b", "V16"), ("l3", ">i4"), ("ts", ">i8")])


def _seed_migration():
    path = ROOT / "users_service/src/users/migrations/versions/0002_seed_users.py"
    spec = importlib.util.spec_from_file_location("bench_seed_users", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    # The module imports alembic's `op`/`context` but only uses them inside upgrade().
    spec.loader.exec_module(module)
    return module


def _edge_copy(a: np.ndarray, b: np.ndarray, user_bytes: np.ndarray, micros: int) -> bytes:
    rows = np.empty(len(a), dtype=_EDGE)
    rows["n"], rows["l1"], rows["l2"], rows["l3"], rows["ts"] = 3, 16, 16, 8, micros
    rows["a"] = np.ascontiguousarray(user_bytes[a]).view("V16").ravel()
    rows["b"] = np.ascontiguousarray(user_bytes[b]).view("V16").ravel()
    return _HEADER + rows.tobytes() + b"\xff\xff"


async def _copy_bytes(conn: asyncpg.Connection, table: str, columns: list[str], data: bytes) -> None:
    async def chunks():
        view = memoryview(data)
        for start in range(0, len(data), 4 << 20):
            yield bytes(view[start : start + (4 << 20)])

    await conn.copy_to_table(table, source=chunks(), columns=columns, format="binary", freeze=True)


async def shard_layout(cfg: Config) -> catalog.Layout:
    """The databases and the map as the Users Service follows them: database 0's catalog
    (a rebalance may have moved logical shards, even to databases USERS_SHARD_DSNS does
    not name), or USERS_SHARD_DSNS's first map before the migration made the catalog."""
    found = await catalog.read_dsn(cfg.shard_dsns[0])
    return found if found is not None else catalog.initial(cfg.shard_dsns)


async def load_postgres(cfg: Config, graph: Graph) -> None:
    layout = await shard_layout(cfg)
    shards = layout.map
    user_shard = np.array([shards.for_user(u) for u in graph.user_ids], dtype=np.int32)
    now = datetime.now(UTC).replace(microsecond=0)
    micros = int((now - PG_EPOCH) / timedelta(microseconds=1))
    created = now - timedelta(days=30)
    tweet_author_id = [graph.user_ids[a] for a in graph.tweet_author.tolist()]
    tweet_shard = user_shard[graph.tweet_author]

    async def one_shard(index: int) -> None:
        conn = await asyncpg.connect(catalog.plain_dsn(layout.dsns[index]))
        try:
            await conn.execute("SET synchronous_commit = off")
            async with conn.transaction():
                # TRUNCATE and COPY in one transaction: COPY FREEZE writes the big edge
                # tables already frozen and all-visible (index-only scans from the start).
                await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
                mine = np.nonzero(user_shard == index)[0]
                await conn.copy_records_to_table(
                    "users",
                    columns=["user_id", "username", "created_at", "followers_count", "following_count"],
                    records=[
                        (
                            graph.user_ids[i],
                            graph.usernames[i],
                            created,
                            int(graph.followers_count[i]),
                            int(graph.following_count[i]),
                        )
                        for i in mine.tolist()
                    ],
                )
                claims = [
                    (name.lower(), graph.user_ids[i], created)
                    for i, name in enumerate(graph.usernames)
                    if shards.for_username(name.lower()) == index
                ]
                await conn.copy_records_to_table(
                    "username_claims", columns=["username_key", "user_id", "claimed_at"], records=claims
                )
                # Edges sorted by the primary key, so the B-tree only ever appends.
                sel = user_shard[graph.follower] == index
                await _copy_bytes(
                    conn,
                    "following",
                    ["follower_id", "followee_id", "created_at"],
                    _edge_copy(graph.follower[sel], graph.followee[sel], graph.user_bytes, micros),
                )
                sel = user_shard[graph.followee] == index
                order = np.lexsort((graph.follower[sel], graph.followee[sel]))
                await _copy_bytes(
                    conn,
                    "followers",
                    ["followee_id", "follower_id", "created_at"],
                    _edge_copy(graph.followee[sel][order], graph.follower[sel][order], graph.user_bytes, micros),
                )
                await conn.copy_records_to_table(
                    "tweets",
                    columns=["tweet_id", "author_id", "text", "created_at"],
                    records=[
                        (
                            graph.tweet_ids[t],
                            tweet_author_id[t],
                            graph.texts[graph.tweet_text[t]],
                            uuid7_time(graph.tweet_ids[t]),
                        )
                        for t in np.nonzero(tweet_shard == index)[0].tolist()
                    ],
                )
        finally:
            await conn.close()

    with step(
        f"PostgreSQL: COPY {graph.n:,} users, {graph.edges:,} follows (both directions), "
        f"{graph.tweets:,} tweets into {len(layout.dsns)} shards"
    ):
        # Every database of the catalog, also one that holds no logical shard now: its
        # tables are emptied all the same.
        await asyncio.gather(*(one_shard(i) for i in layout.dsns))
    await _reseed(layout)
    with step("PostgreSQL: VACUUM ANALYZE"):

        async def analyze(dsn: str) -> None:
            conn = await asyncpg.connect(dsn)
            try:
                await conn.execute("VACUUM (ANALYZE)")
            finally:
                await conn.close()

        await asyncio.gather(*(analyze(catalog.plain_dsn(d)) for d in layout.dsns.values()))


async def _reseed(layout: catalog.Layout) -> None:
    """The migration's seed users, as 0002_seed_users writes them."""
    seed = _seed_migration()
    shards = layout.map
    for index, dsn in layout.dsns.items():
        conn = await asyncpg.connect(catalog.plain_dsn(dsn))
        try:
            for raw_id, name in seed.SEED_USERS.items():
                user_id = uuid.UUID(raw_id)
                if shards.for_user(user_id) == index:
                    await conn.execute(
                        "INSERT INTO users (user_id, username, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        user_id,
                        name,
                        seed.CREATED_AT,
                    )
                if shards.for_username(name.lower()) == index:
                    await conn.execute(
                        "INSERT INTO username_claims (username_key, user_id, claimed_at) "
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        name.lower(),
                        user_id,
                        seed.CREATED_AT,
                    )
        finally:
            await conn.close()


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def load_redis(cfg: Config, graph: Graph, *, keep_generation: bool = False) -> dict[str, float]:
    """Fill Redis; returns the memory figures measured on the way. `keep_generation`:
    the store's generation token survives the flush (in one transaction with it), so
    the Timeline API sees no loss and warms nothing up while Redis is filled again."""
    host, port, db = cfg.redis_address
    client = redis.Redis(host=host, port=port, db=db)
    generation = client.get(store_keys.GENERATION) if keep_generation else None
    with client.pipeline(transaction=True) as flush:
        flush.flushdb()
        if generation is not None:
            flush.set(store_keys.GENERATION, generation)
        flush.execute()
    figures: dict[str, float] = {}

    with step(f"Redis: tweet cache ({graph.tweets:,} items)"):
        before = _used_memory(client)
        pipe = resp.Pipe(host, port, db)
        ttl = str(cfg.tweet_cache_ttl).encode()
        for start in range(0, graph.tweets, 20000):
            parts = []
            for t in range(start, min(graph.tweets, start + 20000)):
                tweet_id, author = graph.tweet_ids[t], int(graph.tweet_author[t])
                item = TweetItem(
                    tweet_id=tweet_id,
                    user_id=graph.user_ids[author],
                    username=graph.usernames[author],
                    text=graph.texts[graph.tweet_text[t]],
                    created_at=iso_ms(uuid7_time(tweet_id)),
                )
                parts.append(resp.command(b"SET", tweet_key(tweet_id), item_codec.encode(item), b"EX", ttl))
            pipe.write(b"".join(parts))
        pipe.close()
        figures["tweet_cache_items"] = graph.tweets
        figures["bytes_per_cached_tweet"] = (_used_memory(client) - before) / max(1, graph.tweets)

    with step(f"Redis: {int(graph.celebrity.sum())} celebrity lists"):
        pipe = resp.Pipe(host, port, db)
        for celeb, tweets in homes.celebrity_lists(graph, cfg.max_items).items():
            author = graph.user_ids[celeb]
            marker, listing = store_keys.celebrity(author)
            if len(tweets):
                pipe.write(resp.command(b"RPUSH", listing, *(graph.tweet_bytes[t].tobytes() for t in tweets)))
            pipe.write(resp.command(b"SET", marker, b"1"))
            pipe.write(resp.command(b"SADD", store_keys.CELEBRITIES, author.bytes))
        pipe.close()

    entries = 0
    with step(f"Redis: {graph.n:,} home timelines (up to {cfg.max_items} ids each)"):
        before = _used_memory(client)
        pipe = resp.Pipe(host, port, db)
        ttl = str(cfg.ttl_seconds).encode()
        for first, ptr, tweets in homes.chunks(graph, cfg.max_items):
            block = resp.bulk16(graph.tweet_bytes[tweets]).tobytes()
            parts = []
            for i in range(len(ptr) - 1):
                count = int(ptr[i + 1] - ptr[i])
                if not count:
                    continue
                _, home, _ = store_keys.home(graph.user_ids[first + i])
                key = home.encode()
                parts.append(b"*%d\r\n$5\r\nRPUSH\r\n$%d\r\n%s\r\n" % (count + 2, len(key), key))
                parts.append(block[ptr[i] * 23 : ptr[i + 1] * 23])
                parts.append(resp.command(b"EXPIRE", key, ttl))
            entries += len(tweets)
            pipe.write(b"".join(parts))
        pipe.close()
        figures["timeline_entries"] = entries
        figures["bytes_per_timeline_entry"] = (_used_memory(client) - before) / max(1, entries)

    with step("Redis: home markers and followed-celebrity sets"):
        pipe = resp.Pipe(host, port, db)
        e_ptr = graph.edge_ptr()
        celebrity_bytes = (
            [store_keys.followed(graph.user_ids[c]) for c in range(graph.n)] if graph.celebrity.any() else []
        )
        ttl = str(cfg.ttl_seconds).encode()
        parts = []
        for u in range(graph.n):
            marker, _, followed = store_keys.home(graph.user_ids[u])
            parts.append(resp.command(b"SET", marker, b"1", b"EX", ttl))
            followees = graph.followee[e_ptr[u] : e_ptr[u + 1]]
            celebs = followees[graph.celebrity[followees]]
            if len(celebs):
                parts.append(resp.command(b"SADD", followed, *(celebrity_bytes[c] for c in celebs.tolist())))
                parts.append(resp.command(b"EXPIRE", followed, ttl))
            if len(parts) > 5000:
                pipe.write(b"".join(parts))
                parts = []
        pipe.write(b"".join(parts))
        pipe.close()
    figures["used_memory_total"] = _used_memory(client)
    client.close()
    return figures


async def load(cfg: Config, graph: Graph) -> dict[str, float]:
    started = time.monotonic()
    await load_postgres(cfg, graph)
    figures = load_redis(cfg, graph)
    figures["load_seconds"] = time.monotonic() - started
    say(f"loaded in {figures['load_seconds']:.0f}s")
    return figures
