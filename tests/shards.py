"""What the shard-move tests share: the command, the catalog, a load of every kind of
write, and the check that every accepted write is in place and where the map says."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import asyncpg
import httpx

from tests.support import ROOT, eventually, unique_name
from users.adapters import catalog
from users.domain.sharding import LOGICAL_SHARDS, logical_shard, user_logical_shard
from users.settings import Settings

CATALOG_DSN = Settings().shard_dsns[0]


def shards_cli(*args: str, crash_at: str | None = None, grace: float = 2.0) -> subprocess.CompletedProcess:
    """`python -m users.shards ...` as an operator runs it (its output shown as it goes)."""
    env = {**os.environ, "USERS_SHARD_MOVE_GRACE_SECONDS": str(grace)}
    if crash_at:
        env["USERS_SHARDS_CRASH_AT"] = crash_at
    done = subprocess.run(
        [str(ROOT / ".venv/bin/python"), "-m", "users.shards", *args], env=env, capture_output=True, text=True
    )
    print(done.stdout[-4000:], done.stderr[-4000:])
    return done


async def layout() -> catalog.Layout:
    found = await catalog.read_dsn(CATALOG_DSN)
    assert found is not None, "no shard catalog"
    return found


async def add_database_args() -> list[str]:
    """`add-database` for a database the stack does not have yet, on database 0's
    server (created), with its replica on the replica server as the others have."""
    known = await layout()
    name = f"users_shard_{max(known.dsns) + 1}"
    args = [f"{known.dsns[0].rsplit('/', 1)[0]}/{name}", "--create"]
    if 0 in known.replicas:
        args += ["--replica", f"{known.replicas[0].rsplit('/', 1)[0]}/{name}"]
    return args


@dataclass
class Written:
    """Every write that got its 2xx: what must be in place afterwards."""

    names: dict[str, str] = field(default_factory=dict)  # user id -> username
    follows: set[tuple[str, str]] = field(default_factory=set)  # (follower, followee), as they stand
    tweets: dict[str, list[str]] = field(default_factory=dict)  # author -> tweet ids
    server_errors: list[str] = field(default_factory=list)

    def tweet_count(self) -> int:
        return sum(len(tweets) for tweets in self.tweets.values())

    async def at_least(self, tweets: int) -> bool:
        """For `eventually`: whether `tweets` tweets have been accepted by now."""
        return self.tweet_count() >= tweets


class Careful:
    """A client that retries a write on a 5xx or a dropped connection (idempotent writes
    only), recording every 5xx."""

    def __init__(self, http: httpx.AsyncClient, written: Written) -> None:
        self.http, self.written = http, written

    async def call(self, method: str, url: str, ok: set[int], **kwargs) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = await self.http.request(method, url, timeout=10, **kwargs)
                if response.status_code in ok:
                    return response
                if response.status_code >= 500:
                    self.written.server_errors.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                elif response.status_code != 429:
                    return response
            except httpx.TransportError as exc:
                self.written.server_errors.append(f"{method} {url}: {exc!r}")
            assert time.monotonic() < deadline, f"{method} {url} got no answer in {ok} for 60 s"
            await asyncio.sleep(0.1)

    async def user(self, name: str | None = None) -> str:
        name = name or unique_name("g")
        response = await self.call("POST", "/api/v1/users", {201}, json={"username": name})
        assert response.status_code == 201, response.text
        self.written.names[response.json()["user_id"]] = name
        return response.json()["user_id"]

    async def follow(self, follower: str, followee: str) -> None:
        headers = {"X-User-ID": follower}
        response = await self.call("POST", "/api/v1/follow", {201}, headers=headers, json={"follow_user_id": followee})
        assert response.status_code == 201, response.text
        self.written.follows.add((follower, followee))

    async def unfollow(self, follower: str, followee: str) -> None:
        response = await self.call("DELETE", f"/api/v1/follow/{followee}", {204}, headers={"X-User-ID": follower})
        assert response.status_code == 204, response.text
        self.written.follows.discard((follower, followee))

    async def tweet(self, author: str, text: str) -> str:
        body = {"text": text, "idempotency_key": str(uuid.uuid4())}
        response = await self.call("POST", "/api/v1/tweet", {201}, headers={"X-User-ID": author}, json=body)
        assert response.status_code == 201, response.text
        tweet_id = response.json()["tweet_id"]
        self.written.tweets.setdefault(author, []).append(tweet_id)
        return tweet_id

    async def read(self, url: str, user: str) -> None:
        response = await self.call("GET", url, {200}, headers={"X-User-ID": user})
        assert response.status_code == 200, response.text


@dataclass
class Ring:
    """Users in a ring, each following the next two: two followers each, below the test
    stack's celebrity threshold, so every tweet is fanned out into homes in Redis."""

    client: Careful
    members: list[str]

    @classmethod
    async def make(cls, client: Careful, size: int) -> Ring:
        ring = cls(client, [await client.user() for _ in range(size)])
        for follower, followees in ring.edges().items():
            for followee in followees:
                await client.follow(follower, followee)
        for member in ring.members:  # the homes live in Redis from now on
            await client.read("/api/v1/timeline", member)
        return ring

    def edges(self) -> dict[str, list[str]]:
        n = len(self.members)
        return {m: [self.members[(i + 1) % n], self.members[(i + 2) % n]] for i, m in enumerate(self.members)}

    async def churn(self, stop: asyncio.Event, lane: int, lanes: int, seed: int) -> None:
        """Every kind of write and read, until `stop`; this lane owns the followers
        `lane` (mod `lanes`), so the follow graph's end state is known."""
        rng = random.Random(seed)
        mine = [m for i, m in enumerate(self.members) if i % lanes == lane]
        edges = self.edges()
        while not stop.is_set():
            member = rng.choice(mine)
            roll = rng.random()
            if roll < 0.4:
                await self.client.tweet(member, f"churn {rng.random():.6f}")
            elif roll < 0.55:  # unfollow, then follow again: the ring's edges stand at the end
                followee = rng.choice(edges[member])
                await self.client.unfollow(member, followee)
                await self.client.follow(member, followee)
            elif roll < 0.7:
                await self.client.read("/api/v1/timeline", member)
            elif roll < 0.8:
                await self.client.read(f"/api/v1/users/{rng.choice(self.members)}/tweets", member)
            else:
                await race_for_a_name(self.client)
            await asyncio.sleep(rng.uniform(0.01, 0.05))


async def race_for_a_name(client: Careful) -> None:
    """Two sign-ups of one name at once, in different case: exactly one wins."""
    name = unique_name("r")
    answers = await asyncio.gather(
        client.call("POST", "/api/v1/users", {201, 409}, json={"username": name}),
        client.call("POST", "/api/v1/users", {201, 409}, json={"username": name.upper()}),
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409], f"a name raced: {statuses}"
    winner = next(a for a in answers if a.status_code == 201).json()
    client.written.names[winner["user_id"]] = winner["username"]


async def check_written(http: httpx.AsyncClient, written: Written, ring: Ring) -> None:
    """What a user sees: counts, listings, timelines (the ring's homes), names."""
    followers = Counter(b for _, b in written.follows)
    following = Counter(a for a, _ in written.follows)

    async def counts_right() -> bool:
        for user in ring.members:
            body = (await http.get(f"/api/v1/users/{user}")).json()
            if (body["followers_count"], body["following_count"]) != (followers[user], following[user]):
                return False
        return True

    await eventually(counts_right, timeout=30, interval=0.5, what="follow counts")
    for author, tweets in written.tweets.items():
        listing = await _all_pages(http, f"/api/v1/users/{author}/tweets", author)
        assert listing == sorted(tweets, reverse=True), f"the listing of {author} lost or gained tweets"
    edges = ring.edges()

    async def timelines_whole() -> bool:
        for member in ring.members:
            want = sorted((t for a in [member, *edges[member]] for t in written.tweets.get(a, [])), reverse=True)
            if await _all_pages(http, "/api/v1/timeline", member) != want:
                return False
        return True

    await eventually(timelines_whole, timeout=60, interval=0.5, what="every ring member's timeline")
    for user_id, name in written.names.items():  # still unique: any case of a taken name is refused
        response = await http.post("/api/v1/users", json={"username": name.swapcase()})
        assert response.status_code == 409, f"{name} could be taken again: {response.status_code}"
        assert (await http.get(f"/api/v1/users/{user_id}")).json()["username"] == name


async def _all_pages(http: httpx.AsyncClient, url: str, caller: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"next_cursor": cursor} if cursor else {})}
        response = await http.get(url, headers={"X-User-ID": caller}, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        ids += [t["tweet_id"] for t in page["tweets"]]
        if not (cursor := page["next_cursor"]):
            return ids


async def check_placement(written: Written, timeout: float = 30.0) -> catalog.Layout:
    """Every row of these users is on the database the map names, and only there: the
    map says where everything is. Polled: "who follows Y" is written by the relay,
    shortly after the follow's answer."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await _placed(written)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _placed(written: Written) -> catalog.Layout:
    found = await layout()
    users = [uuid.UUID(u) for u in written.names]
    names = [name.lower() for name in written.names.values()]
    rows: dict[int, dict[str, set]] = {}
    for db, dsn in found.dsns.items():
        conn = await asyncpg.connect(catalog.plain_dsn(dsn))
        try:
            rows[db] = {
                "fence": {r[0] for r in await conn.fetch("SELECT logical FROM shard_fence")},
                "logging": await conn.fetchval(
                    "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'shard_move_log' AND tgenabled <> 'D')"
                    " + (SELECT count(*) FROM shard_changes)"
                ),
                "users": {r[0] for r in await conn.fetch("SELECT user_id FROM users WHERE user_id = ANY($1)", users)},
                "claims": {
                    r[0]
                    for r in await conn.fetch(
                        "SELECT username_key FROM username_claims WHERE username_key = ANY($1)", names
                    )
                },
                "tweets": {
                    (r[0], r[1])
                    for r in await conn.fetch("SELECT author_id, tweet_id FROM tweets WHERE author_id = ANY($1)", users)
                },
                "following": {
                    (r[0], r[1])
                    for r in await conn.fetch(
                        "SELECT follower_id, followee_id FROM following WHERE follower_id = ANY($1)", users
                    )
                },
                "followers": {
                    (r[1], r[0])
                    for r in await conn.fetch(
                        "SELECT followee_id, follower_id FROM followers WHERE followee_id = ANY($1)", users
                    )
                },
            }
        finally:
            await conn.close()
    for db in found.dsns:
        where = rows[db]
        assert where["fence"] == set(found.map.logicals_of(db)), f"database {db}'s fence is not what the map says"
        assert where["logging"] == 0, f"database {db} still logs changes for a move (or holds its log)"
        assert where["users"] == {u for u in users if found.map.for_user(u) == db}, f"users misplaced on {db}"
        assert where["claims"] == {n for n in names if found.map.for_username(n) == db}, f"claims misplaced on {db}"
        want_tweets = {
            (uuid.UUID(a), uuid.UUID(t))
            for a, ts in written.tweets.items()
            for t in ts
            if found.map.for_user(uuid.UUID(a)) == db
        }
        assert where["tweets"] == want_tweets, f"tweets misplaced or lost on database {db}"
        edges = {(uuid.UUID(a), uuid.UUID(b)) for a, b in written.follows}
        assert where["following"] == {e for e in edges if found.map.for_user(e[0]) == db}, f"following on {db}"
        assert where["followers"] == {e for e in edges if found.map.for_user(e[1]) == db}, f"followers on {db}"
    return found


def logicals_of(user_ids: list[str]) -> list[int]:
    return sorted({user_logical_shard(uuid.UUID(u)) for u in user_ids})


def name_logical(name: str) -> int:
    return logical_shard(name.lower().encode())


def spread(found: catalog.Layout) -> dict[int, int]:
    held = Counter(found.map.owners)
    assert sum(held.values()) == LOGICAL_SHARDS
    return dict(held)
