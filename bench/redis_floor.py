"""The floor under everything: the same page read straight from Redis with
redis-benchmark (its own C client, 32 connections): the home list read (LRANGE of 21
ids), the tweet-cache read (MGET of those 21 items), and the service's page script
(EVALSHA page.lua) that does both in one call for a home without celebrities on a
single Redis."""

from __future__ import annotations

import subprocess

import redis

from bench.config import Config
from bench.graph import Graph
from bench.progress import say
from timeline.adapters.store import keys as store_keys
from timeline.adapters.store.connection import script_source
from timeline.adapters.store.keys import item as tweet_key


def _bench(cfg: Config, requests: int, *command: bytes | str) -> float:
    host, port, db = cfg.redis_address
    out = subprocess.run(
        [
            "redis-benchmark",
            "-h",
            host,
            "-p",
            str(port),
            "--dbnum",
            str(db),
            "-c",
            str(cfg.connections),
            "-n",
            str(requests),
            "--csv",
            *command,
        ],
        capture_output=True,
        timeout=300,
    )
    # The last line: "<test name>","rps","avg",...; the name quotes the command, binary
    # keys and all, so the numbers are read from the right.
    lines = out.stdout.decode(errors="replace").strip().splitlines()
    if out.returncode != 0 or len(lines) < 2:
        raise RuntimeError(f"redis-benchmark failed: {out.stdout[-300:]!r} {out.stderr[-300:]!r}")
    return float(lines[-1].rsplit(",", 7)[1].strip('"'))


def run(cfg: Config, graph: Graph, users: list[int], page: int = 21) -> dict[str, float]:
    host, port, db = cfg.redis_address
    client = redis.Redis(host=host, port=port, db=db)
    try:
        # Command-line arguments cannot hold a NUL byte: take a user whose page has none,
        # from the sample first, then from everyone (21 random ids hold one about half
        # the time, and some runs' clocks put one in every id of the sample).
        for u in [*users, *range(graph.n)]:
            # ...and who follows no celebrity, whose page the script reads in one call.
            _, home, followed = store_keys.home(graph.user_ids[u])
            ids = client.lrange(home, 0, page - 1)
            keys = [tweet_key(i) for i in ids]
            if (
                ids
                and not any(b"\x00" in k for k in keys)
                and b"\x00" not in home.encode()
                and not client.exists(followed)
            ):
                break
        else:
            raise RuntimeError("no user follows no celebrity and has a page whose keys are free of NUL bytes")
        sha = client.script_load(script_source("page.lua"))
        marker, home, followed = store_keys.home(graph.user_ids[u])
    finally:
        client.close()
    seconds = max(1.0, cfg.seconds / 3)
    scale = max(1000, int(40000 * seconds))
    say(f"redis-benchmark: LRANGE, MGET of {len(ids)}, EVALSHA page.lua ({cfg.connections} connections)")
    lrange = _bench(cfg, scale, "LRANGE", home, "0", str(page - 1))
    mget = _bench(cfg, scale, "MGET", *keys)
    script = _bench(
        cfg,
        scale,
        "EVALSHA",
        sha,
        "3",
        marker,
        home,
        followed,
        "",
        str(page),
        str(cfg.ttl_seconds),
        "page",
        str(cfg.max_items),
        "older",
        str(cfg.rebuild_seconds),
        store_keys.ITEM.decode(),
        store_keys.CELEBRITY_MARKER,
        store_keys.CELEBRITY_IDS,
    )
    return {
        "lrange_rps": lrange,
        "mget_rps": mget,
        "page_script_rps": script,
        # A page is both reads, one after the other, on one single-threaded server.
        "page_rps": 1.0 / (1.0 / lrange + 1.0 / mget),
        "items": len(ids),
    }
