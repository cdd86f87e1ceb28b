"""Live streams under load: STREAMS readers hold GET /api/v1/timeline/stream open
through the gateway while tweets are posted at a fixed rate by authors they follow;
every (tweet, reader) pair the graph says is due is timed from sending the POST to the
event on the reader's stream. A tenth of the streams drop mid-run and reconnect with
their last id: they must miss nothing and repeat nothing.

Reports how many streams the API process held, its memory per stream, delivery p50/p99
(of the streams that stayed open) and what was missed or repeated (by any)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path

import aiohttp
import numpy as np

from bench.config import Config
from bench.fanout import _post
from bench.graph import Graph
from bench.progress import say

STREAM = "/api/v1/timeline/stream"
TWEET = "/api/v1/tweet"


class Reader:
    """One stream's client: what it received, and when."""

    def __init__(self, user: uuid.UUID) -> None:
        self.user = user
        self.last_id: str | None = None
        self.arrived: dict[str, float] = {}  # tweet id -> when its event came
        self.repeats = 0
        self.open = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession, base: str, stop: asyncio.Event) -> None:
        headers = {"X-User-ID": str(self.user)}
        if self.last_id:
            headers["Last-Event-ID"] = self.last_id
        async with http.get(base + STREAM, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"stream refused: {response.status} {await response.text()}")
            kind, event_id = "", None
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith(": open"):
                    self.open.set()
                elif line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: ") and kind == "tweet":
                    tweet = json.loads(line[6:])["tweet_id"]
                    if tweet in self.arrived:
                        self.repeats += 1
                    self.arrived.setdefault(tweet, time.monotonic())
                    self.last_id = event_id
                elif line == "":
                    kind, event_id = "", None
                if stop.is_set():
                    return


def _rss_kb(pid_file: Path) -> int:
    """Resident memory of the API's processes (the uvicorn parent and its workers)."""
    try:
        parent = int(pid_file.read_text())
    except (OSError, ValueError):
        return 0
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if int(proc.name) == parent or ppid == parent:
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


async def run(cfg: Config, graph: Graph, rng: np.random.Generator, streams: int, rate: float, seconds: float) -> dict:
    # Readers who follow someone who is no celebrity (a celebrity's tweets reach them too,
    # merged at read time, but the authors here are the fanned-out kind).
    followees: dict[int, list[int]] = {}
    for follower, followee in zip(graph.follower.tolist(), graph.followee.tolist()):
        if not graph.celebrity[followee]:
            followees.setdefault(follower, []).append(followee)
    pool = np.array(sorted(followees))
    chosen = [int(u) for u in rng.choice(pool, size=min(streams, len(pool)), replace=False)]
    readers = {u: Reader(graph.user_ids[u]) for u in chosen}
    followers_of: dict[int, list[int]] = {}
    for u in chosen:
        for author in followees[u]:
            followers_of.setdefault(author, []).append(u)
    authors = sorted(followers_of)
    pid_file = cfg.stack_dir / "run" / "timeline-api.pid"
    rss_before = _rss_kb(pid_file)
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tasks = {u: asyncio.create_task(r.run(http, cfg.gateway, stop)) for u, r in readers.items()}
        await asyncio.wait_for(asyncio.gather(*(r.open.wait() for r in readers.values())), 60)
        await asyncio.sleep(1)
        rss_open = _rss_kb(pid_file)
        say(f"streams: {len(readers)} open ({(rss_open - rss_before) / max(1, len(readers)):.0f} KiB each)")
        due: dict[str, tuple[float, list[int]]] = {}
        dropped: list[int] = []
        count = max(1, int(rate * seconds))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as poster:

            async def post(i: int) -> None:
                author = int(authors[int(rng.integers(len(authors)))])
                sent = time.monotonic()
                tweet = uuid.UUID(bytes=await _post(poster, cfg.gateway + TWEET, graph, author, f"stream bench {i}"))
                due[str(tweet)] = (sent, followers_of[author])

            started, posts = time.monotonic(), []
            for i in range(count):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
                posts.append(asyncio.create_task(post(i)))
                if i == count // 3:
                    # A tenth of the streams drop: of those that have an id to come back
                    # with (a stream with none starts afresh, from the head, by design).
                    able = [u for u in chosen if readers[u].last_id]
                    size = min(len(able), max(1, len(chosen) // 10))
                    dropped = [int(u) for u in rng.choice(able, size=size, replace=False)] if able else []
                    for u in dropped:
                        tasks[u].cancel()
                if i == count // 2:  # and come back with their last id
                    for u in dropped:
                        tasks[u] = asyncio.create_task(readers[u].run(http, cfg.gateway, stop))
            await asyncio.gather(*posts)
            offered = count / (time.monotonic() - started)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            str(t) not in readers[u].arrived for t, (_, us) in due.items() for u in us
        ):
            await asyncio.sleep(0.2)
        stop.set()
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    # The delay of a stream that was away includes its absence: those count for what was
    # missed or repeated, not for the delay.
    delays, missed, away = [], 0, set(dropped)
    for tweet, (sent, users) in due.items():
        for u in users:
            arrived = readers[u].arrived.get(tweet)
            if arrived is None:
                missed += 1
            elif u not in away:
                delays.append(arrived - sent)
    repeats = sum(r.repeats for r in readers.values())
    dropped_missed = sum(1 for t, (_, us) in due.items() for u in us if u in dropped and t not in readers[u].arrived)

    def pct(q: float) -> float | None:
        return float(np.percentile(delays, q) * 1000) if delays else None

    result = {
        "streams": len(readers),
        "kib_per_stream": round((rss_open - rss_before) / max(1, len(readers)), 1),
        "rate_offered": offered,
        "tweets": count,
        "deliveries": len(delays),
        "missed": missed,
        "repeated": repeats,
        "reconnected": len(dropped),
        "missed_by_reconnected": dropped_missed,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": pct(100),
    }
    say(
        f"streams: {len(delays):,} deliveries to the {len(readers) - len(away)} streams that stayed, "
        f"at {offered:.0f} tweets/s: "
        f"p50 {result['p50_ms'] or 0:.0f} ms, p99 {result['p99_ms'] or 0:.0f} ms; missed {missed}, "
        f"repeated {repeats} ({len(dropped)} reconnected with their last id, missed {dropped_missed})"
    )
    return result
