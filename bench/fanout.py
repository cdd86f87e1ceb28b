"""Fan-out: how many timeline deliveries a second the worker(s) sustain, and how long a
tweet takes from POST /api/v1/tweet to a follower's timeline at a fixed tweet rate
(also while a celebrity posts).

"Visible in a follower's timeline" is observed in Redis, where GET /timeline reads it:
the id is in the follower's home list (or, for a celebrity, in the celebrity's list
that is merged into every follower's page). The follower watched is the author's
follower with the highest id: fan-out walks followers in id order, so that home is
written last.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import aiohttp
import numpy as np
from redis.asyncio import Redis

from bench import cpu
from bench.config import Config
from bench.graph import Graph
from bench.progress import say
from timeline.adapters.store import keys as store_keys

TWEET = "/api/v1/tweet"


def _client(connections: int = 100) -> aiohttp.ClientSession:
    """The bench's HTTP client. aiohttp, not httpx: a POST costs it far less CPU than
    httpx, and the load generator shares the two cores with the stack it measures
    (docs/decisions/0011; docs/benchmarks.md, the write path)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=30.0), connector=aiohttp.TCPConnector(limit=connections)
    )


async def _metric(cfg: Config, name: str, client: aiohttp.ClientSession | None = None) -> float:
    """The sum of a series over every worker's /metrics (through `client` when given:
    a poll every 50 ms should not open a session and a connection each time)."""
    if client is None:
        async with _client() as own:
            return await _metric(cfg, name, own)
    total = 0.0
    for url in cfg.worker_metrics:
        async with client.get(url) as response:
            text = await response.text()
        for line in text.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def wait_for_quiet(cfg: Config, timeout: float = 300.0) -> float:
    """Wait until the worker has caught up with Kafka (its lag gauge is 0 and its
    deliveries stopped moving); returns the seconds waited."""
    started = time.monotonic()
    last, still, noted = -1.0, 0, started
    async with _client() as client:
        while time.monotonic() - started < timeout:
            lag = await _metric(cfg, "timeline_consumer_lag", client)
            done = await _metric(cfg, "timeline_fanout_deliveries_total", client)
            still = still + 1 if (lag == 0 and done == last) else 0
            if still >= 2:
                return time.monotonic() - started
            last = done
            if time.monotonic() - noted > 10:
                say(f"waiting for the worker to catch up (lag {lag:.0f} events)")
                noted = time.monotonic()
            await asyncio.sleep(0.3)
    say(f"the worker still had a backlog after {timeout:.0f}s")
    return time.monotonic() - started


async def _post(client: aiohttp.ClientSession, url: str, graph: Graph, author: int, text: str) -> bytes:
    async with client.post(url, headers={"X-User-ID": str(graph.user_ids[author])}, json={"text": text}) as response:
        body = await response.read()
    if response.status != 201:
        raise RuntimeError(f"POST /tweet answered {response.status}: {body[:200]!r}")
    return uuid.UUID(json.loads(body)["tweet_id"]).bytes


async def deliveries_per_second(cfg: Config, graph: Graph, target: int) -> dict[str, float]:
    """Post tweets by the non-celebrity authors with the most followers, enough for
    about `target` deliveries, as fast as the API takes them; the rate is the
    deliveries counted by the workers over the time they took to make them."""
    order = np.argsort(-graph.followers_count)
    authors = [int(a) for a in order if not graph.celebrity[a] and graph.followers_count[a] > 0]
    if not authors:
        raise RuntimeError("no author with followers below the celebrity threshold")
    chosen, expected = [], 0
    while expected < target and len(chosen) < 20 * len(authors):
        author = authors[len(chosen) % min(len(authors), 50)]
        chosen.append(author)
        expected += int(graph.followers_count[author])
    await wait_for_quiet(cfg)
    before = await _metric(cfg, "timeline_fanout_deliveries_total")
    cpu_before = cpu.snapshot()
    started = time.monotonic()
    first_seen = None
    gate = asyncio.Semaphore(16)
    async with _client() as client:

        async def post(i: int, author: int) -> None:
            async with gate:
                await _post(client, cfg.gateway + TWEET, graph, author, f"fan-out bench {i}")

        posting = asyncio.gather(*(post(i, a) for i, a in enumerate(chosen)))
        deadline = started + 300
        done = 0.0
        while time.monotonic() < deadline:
            done = await _metric(cfg, "timeline_fanout_deliveries_total", client) - before
            now = time.monotonic()
            if done > 0 and first_seen is None:
                first_seen = (now, done)
            if done >= expected or (posting.done() and posting.exception() is not None):
                break
            await asyncio.sleep(0.05)
        await posting
    finished = time.monotonic()
    if first_seen is None or done < expected:
        raise RuntimeError(f"only {done:.0f} of {expected} deliveries within 300s")
    seen_at, seen = first_seen
    window = finished - seen_at
    rate = (done - seen) / window if window > 0.2 and done > seen else done / (finished - started)
    say(f"fan-out: {int(done):,} deliveries from {len(chosen)} tweets in {finished - started:.1f}s: {rate:,.0f}/s")
    # CPU per delivery by process, the POSTs and the relay included (spread over the
    # deliveries they caused): what capacity planning multiplies (bench/capacity.py).
    per_delivery = cpu.per_request(cpu_before, cpu.snapshot(), int(done))
    return {
        "deliveries_per_second": rate,
        "deliveries": done,
        "tweets": len(chosen),
        "seconds": finished - started,
        "cpu_us_per_delivery": per_delivery,
    }


# The 1-based positions of the (KEYS[i], ARGV[i]) pairs whose id is near the head of its
# list. A new tweet goes on top: look at the first 64 entries only (a full LPOS scans 800).
# The keys span slots: the bench watches a single Redis server, as `make run` starts.
_FIND = """
local found = {}
for i = 1, #KEYS do
  if redis.call('LPOS', KEYS[i], ARGV[i], 'MAXLEN', 64) then found[#found + 1] = i end
end
return found
"""


def _last_follower(graph: Graph) -> np.ndarray:
    last = np.full(graph.n, -1, dtype=np.int64)
    np.maximum.at(last, graph.followee, graph.follower.astype(np.int64))
    return last


async def delivery_delay(
    cfg: Config, graph: Graph, rate: float, seconds: float, with_celebrity: bool, rng: np.random.Generator
) -> dict[str, float | None]:
    """POST tweets at `rate` a second (an open schedule: a slow answer does not delay
    the next tweet) by random non-celebrity authors; with `with_celebrity`, the most
    followed celebrity also posts once a second. Delay: from sending the POST to the id
    being in the watched follower's home (or the celebrity's list)."""
    last = _last_follower(graph)
    authors = np.nonzero((~graph.celebrity) & (last >= 0))[0]
    celebrities = np.nonzero(graph.celebrity)[0]
    celebrity = int(celebrities[np.argmax(graph.followers_count[celebrities])]) if len(celebrities) else None
    if with_celebrity and celebrity is None:
        say("no account crosses the celebrity threshold at this scale: the celebrity does not post")
        with_celebrity = False
    host, port, db = cfg.redis_address
    redis = Redis(host=host, port=port, db=db)
    find_sha = await redis.script_load(_FIND)
    pending: dict[tuple[str, bytes], float] = {}
    delays: list[float] = []
    celebrity_delays: list[float] = []
    celebrity_keys: set[tuple[str, bytes]] = set()
    stop = asyncio.Event()

    async def watch() -> None:
        while not (stop.is_set() and not pending):
            if pending:
                keys = list(pending)
                # One command per look, however many tweets are pending: a pipeline of one
                # LPOS each cost the bench (and Redis) more the further delivery fell
                # behind, and that load made it fall further behind (a run could spiral
                # to seconds of delay that the watching itself caused).
                found = await redis.evalsha(find_sha, len(keys), *(k for k, _ in keys), *(t for _, t in keys))
                now = time.monotonic()
                for index in found:
                    key = keys[int(index) - 1]
                    sent = pending.pop(key)
                    (celebrity_delays if key in celebrity_keys else delays).append(now - sent)
            await asyncio.sleep(0.01)  # 10 ms resolution

    async def post(client: aiohttp.ClientSession, author: int, watched_key: str, text: str, celeb: bool) -> None:
        sent = time.monotonic()
        tweet = await _post(client, cfg.gateway + TWEET, graph, author, text)
        key = (watched_key, tweet)
        if celeb:
            celebrity_keys.add(key)
        pending[key] = sent

    watcher = asyncio.create_task(watch())
    count = max(1, int(rate * seconds))
    before = cpu.snapshot()
    tasks = []
    async with _client(200) as client:
        started = time.monotonic()
        next_celebrity = started
        for i in range(count):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            author = int(rng.choice(authors))
            home = store_keys.home(graph.user_ids[int(last[author])])[1]
            tasks.append(asyncio.create_task(post(client, author, home, f"delay bench {i}", False)))
            if with_celebrity and time.monotonic() >= next_celebrity:
                listing = store_keys.celebrity(graph.user_ids[celebrity])[1]
                tasks.append(asyncio.create_task(post(client, celebrity, listing, f"celebrity {i}", True)))
                next_celebrity += 1.0
        await asyncio.gather(*tasks)
        offered = count / (time.monotonic() - started)
    deadline = time.monotonic() + 60
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    used = cpu.per_request(before, cpu.snapshot(), count)  # per tweet: its POST, relay, fan-out
    lost = len(pending)
    stop.set()
    pending.clear()
    await watcher
    await redis.aclose()

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q) * 1000) if values else None

    result = {
        "rate_offered": offered,
        "tweets": count,
        "delivered": len(delays),
        "not_delivered_in_60s": lost,
        "p50_ms": pct(delays, 50),
        "p99_ms": pct(delays, 99),
        "max_ms": pct(delays, 100),
        "cpu_us_per_tweet": used,
    }
    if with_celebrity or celebrity is None:
        result.update(
            {
                "celebrity_tweets": len(celebrity_delays),
                "celebrity_p50_ms": pct(celebrity_delays, 50),
                "celebrity_p99_ms": pct(celebrity_delays, 99),
            }
        )
    say(
        f"delay at {offered:.0f} tweets/s{' with a celebrity posting' if with_celebrity else ''}: "
        f"p50 {result['p50_ms'] or 0:.0f} ms, p99 {result['p99_ms'] or 0:.0f} ms ({lost} not delivered)"
    )
    return result
