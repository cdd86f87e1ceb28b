"""Growing the fleet under the bench's write load: `make bench-fleet` (after `make run`).

On the stack `make run` started, with whatever it holds (`make bench` leaves a graph of
SCALE users), this signs up a set of writers, then keeps BENCH_CONNECTIONS clients
posting tweets (with idempotency keys) and following each other while it adds a
database (`users.shards add-database --create`, with its replica) and rebalances onto
it. Afterwards every tweet that got its 201 must be in its author's listing, every
follow in the counts, and no request may have had a 5xx. It prints the figures (the
move's copy rate, how long the moving shards' writes waited, the write rate before and
during the moves) and writes them to docs/fleet.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.config import ROOT, Config
from bench.progress import say, step
from users.adapters import catalog

WRITERS = int(os.environ.get("BENCH_FLEET_WRITERS", "400"))


@dataclass
class Load:
    accepted: dict[str, list[str]] = field(default_factory=dict)  # author -> tweet ids
    follows: set[tuple[str, str]] = field(default_factory=set)
    server_errors: list[str] = field(default_factory=list)
    done: list[float] = field(default_factory=list)  # when each write got its 2xx
    latencies: list[float] = field(default_factory=list)


async def _write(http: httpx.AsyncClient, load: Load, method: str, url: str, **kwargs) -> httpx.Response:
    """Retried (with the same body: the writes are idempotent) on a 5xx or a dropped
    connection, each of which is recorded."""
    started = time.monotonic()
    while True:
        try:
            response = await http.request(method, url, **kwargs)
            if response.status_code < 500 and response.status_code != 429:
                load.done.append(time.monotonic())
                load.latencies.append(time.monotonic() - started)
                return response
            if response.status_code >= 500:
                load.server_errors.append(f"{method} {url} {response.status_code} {response.text[:120]}")
        except httpx.TransportError as exc:
            load.server_errors.append(f"{method} {url} {exc!r}")
        await asyncio.sleep(0.05)


async def _client(http: httpx.AsyncClient, load: Load, writers: list[str], stop: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    mine = writers[seed :: int(os.environ.get("BENCH_CONNECTIONS", "32"))] or writers[:1]
    while not stop.is_set():
        author = rng.choice(mine)
        if rng.random() < 0.9:
            body = {"text": f"fleet {rng.random():.8f}", "idempotency_key": str(uuid.uuid4())}
            response = await _write(http, load, "POST", "/api/v1/tweet", json=body, headers={"X-User-ID": author})
            assert response.status_code == 201, response.text
            load.accepted.setdefault(author, []).append(response.json()["tweet_id"])
        else:
            followee = rng.choice(writers)
            if followee == author or (author, followee) in load.follows:
                continue
            body = {"follow_user_id": followee}
            response = await _write(http, load, "POST", "/api/v1/follow", json=body, headers={"X-User-ID": author})
            assert response.status_code == 201, response.text
            load.follows.add((author, followee))


def _shards(*args: str) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "users.shards", *args], capture_output=True, text=True, env=os.environ.copy()
    )
    for line in done.stdout.splitlines():
        if "copied" not in line or "copied in" in line:
            say(f"  {line}")
    if done.returncode != 0:
        raise SystemExit(f"users.shards {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, time.monotonic() - started


async def _all_pages(http: httpx.AsyncClient, author: str) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"next_cursor": cursor} if cursor else {})}
        page = (await http.get(f"/api/v1/users/{author}/tweets", params=params)).json()
        ids += [t["tweet_id"] for t in page["tweets"]]
        if not (cursor := page["next_cursor"]):
            return ids


async def main() -> int:
    cfg = Config()
    before = await catalog.read_dsn(cfg.shard_dsns[0])
    assert before is not None, "no shard catalog: is the stack up (make run)?"
    limits = httpx.Limits(max_connections=cfg.connections * 2)
    async with httpx.AsyncClient(base_url=cfg.gateway, timeout=30, limits=limits) as http:
        with step(f"signing up {WRITERS} writers"):
            writers = []
            for _ in range(WRITERS):
                response = await http.post("/api/v1/users", json={"username": f"f_{uuid.uuid4().hex[:12]}"})
                assert response.status_code == 201, response.text
                writers.append(response.json()["user_id"])
        load, stop = Load(), asyncio.Event()
        clients = [asyncio.create_task(_client(http, load, writers, stop, i)) for i in range(cfg.connections)]
        await asyncio.sleep(cfg.seconds)  # the rate before any move, for comparison
        steady = len(load.done) / cfg.seconds
        empty = [db for db in before.dsns if not before.map.logicals_of(db)]
        if empty:  # a database added before (a run that moved its shards away again)
            say(f"database {empty[0]} holds no logical shard: rebalancing onto it")
        else:
            name = f"users_shard_{max(before.dsns) + 1}"
            args = [f"{before.dsns[0].rsplit('/', 1)[0]}/{name}", "--create"]
            if 0 in before.replicas:
                args += ["--replica", f"{before.replicas[0].rsplit('/', 1)[0]}/{name}"]
            with step(f"adding database {name} under the load"):
                await asyncio.to_thread(_shards, "add-database", *args)
        moving_from = time.monotonic()
        with step("rebalancing onto it under the load"):
            output, took = await asyncio.to_thread(_shards, "rebalance")
        during = sum(1 for t in load.done if t >= moving_from) / (time.monotonic() - moving_from)
        stop.set()
        await asyncio.gather(*clients)

        with step("checking every accepted write"):
            lost = 0
            for author, tweets in load.accepted.items():
                listing = set(await _all_pages(http, author))
                lost += sum(1 for t in tweets if t not in listing)
            followers = Counter(b for _, b in load.follows)

            async def counts_wrong() -> int:
                wrong = 0
                for user in writers:
                    body = (await http.get(f"/api/v1/users/{user}")).json()
                    wrong += body["followers_count"] != followers[user]
                return wrong

            wrong = await counts_wrong()
            for _ in range(30):  # "who follows Y" is written by the relay, just after
                if not wrong:
                    break
                await asyncio.sleep(1)
                wrong = await counts_wrong()
    after = await catalog.read_dsn(cfg.shard_dsns[0])
    assert after is not None
    waited = [float(ms) for ms in re.findall(r"writes waited (\d+) ms", output)]
    copied = sum(int(n) for n in re.findall(r"copied (\d+) rows", output))
    figures = {
        "databases_holding_shards": [len(set(before.map.owners)), len(set(after.map.owners))],
        "logical_shards_per_database": dict(sorted(Counter(after.map.owners).items())),
        "moves": len(waited),
        "rows_copied": copied,
        "rebalance_seconds": round(took, 1),
        "rows_copied_per_second": round(copied / took) if took else 0,
        "writes_waited_ms_max": max(waited, default=0.0),
        "writes_per_second_before": round(steady),
        "writes_per_second_during_moves": round(during),
        "write_p99_ms": round(sorted(load.latencies)[int(0.99 * (len(load.latencies) - 1))] * 1000, 1),
        "tweets_accepted": sum(map(len, load.accepted.values())),
        "follows_accepted": len(load.follows),
        "tweets_lost": lost,
        "follower_counts_wrong": wrong,
        "server_errors": len(load.server_errors),
    }
    print(json.dumps(figures, indent=2))
    ok = lost == 0 and wrong == 0 and not load.server_errors
    _write_doc(figures, ok)
    for error in load.server_errors[:10]:
        say(f"5xx: {error}")
    say("nothing lost, no 5xx" if ok else "FAILED: something was lost or a request got a 5xx")
    return 0 if ok else 1


def _write_doc(figures: dict, ok: bool) -> None:
    rows = "\n".join(f"| {key.replace('_', ' ')} | {value} |" for key, value in figures.items())
    (ROOT / "docs" / "fleet.md").write_text(
        "# Growing the fleet under load (`make bench-fleet`)\n\n"
        "Written by `python -m bench.fleet` on the stack `make run` started: a database added and the\n"
        "logical shards rebalanced onto it while BENCH_CONNECTIONS clients post tweets and follow\n"
        "(docs/decisions/0003). Run of "
        + time.strftime("%Y-%m-%d %H:%M")
        + ": "
        + ("**nothing lost, no 5xx**" if ok else "**FAILED**")
        + ".\n\n| figure | value |\n|---|---|\n"
        + rows
        + "\n"
    )


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
