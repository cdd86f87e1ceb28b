"""`python -m bench` (`make bench SCALE=100000`): load, measure, report.

Against the running local stack (`make run`), whose data it replaces. Steps, each
printing progress on stderr:
  1. the growth scale (SCALE/10): load, check, reads, fan-out;
  2. SCALE: load, check, reads (service, pull model, minimal endpoint, raw Redis),
     fan-out throughput and delay (with and without a celebrity posting), memory,
     writes;
  3. the table on stdout, docs/benchmarks.md and docs/benchmarks.json.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime

import httpx
import numpy as np
import uvloop

from bench import (
    capacity,
    check,
    coldstart,
    cpu,
    fanout,
    hostile,
    load_graph,
    loadgen,
    machine,
    reads,
    redis_floor,
    report,
    servers,
    streams,
    tweet_split,
    writes,
)
from bench import (
    graph as graph_module,
)
from bench.config import Config, load
from bench.progress import say, step


def _measure(cfg: Config, base: str, lines: list[str], what: str) -> dict:
    if cfg.seconds >= 2:
        loadgen.run(cfg, base, lines, seconds=1, name="warmup")  # connections, pools and caches warm
    result = loadgen.run(cfg, base, lines, name=what.replace(" ", "_")).as_dict()
    say(
        f"{what}: {result['rps']:,.0f} pages/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
        f"p99.9 {result['p999_ms']:.2f} ms, {result['errors']} errors"
    )
    return result


def _data_figures(g: graph_module.Graph, loaded: dict) -> dict:
    return {
        "users": g.n,
        "follows": g.edges,
        "tweets": g.tweets,
        "celebrities": int(g.celebrity.sum()),
        "users_following_celebrities": int(g.follows_celebrity().sum()),
        "max_followers": int(g.followers_count.max()) if g.n else 0,
        "panel_fans": int(g.fans.sum()),
        "panel_members": {str(k): len(v) for k, v in g.panel_members.items()},
        "mean_follows": round(g.edges / max(1, g.n), 1),
        # The shape of the follower counts (bench/graph.py): capacity planning's
        # celebrity threshold simulation extends it to the planned number of users.
        "follower_exponent": graph_module.EXPONENT,
        "load_seconds": round(loaded["load_seconds"], 1),
    }


async def one_scale(cfg: Config, n: int, full: bool, result: dict) -> dict:
    rng = np.random.default_rng(cfg.seed + n)
    with step(f"[{n:,} users] generating the graph"):
        g = graph_module.build(
            n, cfg.follows, cfg.tweets_per_user, cfg.threshold, cfg.seed, panel_size=cfg.sample if full else 0
        )
    say(
        f"[{n:,} users] {g.edges:,} follows, {g.tweets:,} tweets, {int(g.celebrity.sum())} celebrities "
        f"(>= {cfg.threshold:,} followers), {int(g.follows_celebrity().sum()):,} users follow one"
    )
    await fanout.wait_for_quiet(cfg, timeout=120)
    loaded = await load_graph.load(cfg, g)
    result["data"][str(n)] = _data_figures(g, loaded)
    await check.homes_match_rebuild(cfg, g, check.pick(g, 2, rng))

    kinds = reads.samples(g, cfg.sample, rng)
    for sample in kinds.values():
        if sample.note:
            result["notes"].append(f"{n:,} users, {sample.name}: {sample.note}")
    plain = reads.first_page_lines(g, kinds["plain"])
    celebrity = reads.first_page_lines(g, kinds["celebrity"])
    found = await reads.cursors(cfg.timeline_api, g, kinds["mixed"].users)
    second = reads.second_page_lines(g, found) or reads.first_page_lines(g, kinds["mixed"])
    if not found:
        result["notes"].append(f"{n:,} users: no timeline had a second page; page 2 rows read page 1")
    figures: dict = {}

    say(f"[{n:,} users] timeline reads through the gateway (:{cfg.gateway_port})")
    figures["service_page1_plain"] = _measure(cfg, cfg.gateway, plain, "service page 1, without celebrities")
    if full:
        figures["service_page1_celebrity"] = _measure(cfg, cfg.gateway, celebrity, "service page 1, with celebrities")
        figures["service_page2"] = _measure(cfg, cfg.gateway, second, "service page 2")
        # A refresh from the same positions: the items just above page 2's cursor.
        refresh = [line.replace("?next_cursor=", "?prev_cursor=") for line in second]
        figures["service_refresh"] = _measure(cfg, cfg.gateway, refresh, "service refresh (prev_cursor)")
        # The panel's baseline measured again beside it: the first row of the run (above)
        # is measured minutes earlier, and the machine's speed drifts enough in minutes
        # to make the panel's ratios noise (docs/benchmarks.md, "What is measured").
        figures["service_page1_celebrities_0"] = _measure(
            cfg, cfg.gateway, plain, "service page 1, users following no celebrity (beside the panel)"
        )
        for k, sample in reads.panel(g, cfg.sample).items():
            figures[f"service_page1_celebrities_{k}"] = _measure(
                cfg, cfg.gateway, reads.first_page_lines(g, sample), f"service page 1, users following {k} celebrities"
            )

    pull_port, pull_gateway = cfg.port_base + 2, cfg.port_base + 12
    with (
        servers.app(cfg, "bench.pull_model:create_app", pull_port, "pull-model") as pull_url,
        servers.gateway(cfg, pull_port, pull_gateway, "gateway-pull") as pull_gw,
    ):
        users = kinds["plain"].users[:3] + kinds["celebrity"].users[:3]
        check.same_pages(
            await reads.pages(cfg.timeline_api, g, users),
            await reads.pages(pull_url, g, users),
            "page 1: service vs pull model",
        )
        with_cursor = [u for u in users if u in found]
        check.same_pages(
            await reads.pages(cfg.timeline_api, g, with_cursor, found),
            await reads.pages(pull_url, g, with_cursor, found),
            "page 2: service vs pull model",
        )
        say(f"check: the pull model answers the service's pages byte for byte ({len(users)} users, page 1 and 2)")
        figures["pull_page1_plain"] = _measure(cfg, pull_gw, plain, "pull model page 1, without celebrities")
        if full:
            figures["pull_page1_celebrity"] = _measure(cfg, pull_gw, celebrity, "pull model page 1, with celebrities")
            figures["pull_page2"] = _measure(cfg, pull_gw, second, "pull model page 2")

    if full:
        minimal_port, minimal_gateway = cfg.port_base + 1, cfg.port_base + 11
        with (
            servers.app(cfg, "bench.minimal_app:create_app", minimal_port, "minimal") as minimal_url,
            servers.gateway(cfg, minimal_port, minimal_gateway, "gateway-minimal") as minimal_gw,
        ):
            figures["minimal_page1"] = _measure(cfg, minimal_gw, plain, "minimal endpoint page 1, via a gateway")
            figures["minimal_page1_direct"] = _measure(cfg, minimal_url, plain, "minimal endpoint page 1, direct")
        figures["service_page1_plain_direct"] = _measure(cfg, cfg.timeline_api, plain, "service page 1, direct")
        result["redis_floor"] = redis_floor.run(cfg, g, kinds["plain"].users)

    say(f"[{n:,} users] fan-out throughput")
    target = max(200, min(cfg.fanout_deliveries, int(g.edges * 0.5)))
    throughput = await fanout.deliveries_per_second(cfg, g, target)
    scale_figures = {
        "service": figures["service_page1_plain"],
        "pull": figures["pull_page1_plain"],
        "push_over_pull": figures["service_page1_plain"]["rps"] / max(1e-9, figures["pull_page1_plain"]["rps"]),
        "deliveries_per_second": throughput["deliveries_per_second"],
        "bytes_per_timeline_entry": loaded["bytes_per_timeline_entry"],
    }
    result["growth"][str(n)] = scale_figures
    if not full:
        return result

    result["reads"] = figures
    result["memory"] = {
        k: loaded[k]
        for k in (
            "bytes_per_timeline_entry",
            "bytes_per_cached_tweet",
            "timeline_entries",
            "tweet_cache_items",
            "used_memory_total",
        )
    }
    say(f"[{n:,} users] delivery delay at {cfg.tweet_rate:g} tweets/s")
    await fanout.wait_for_quiet(cfg)
    delay = await fanout.delivery_delay(cfg, g, cfg.tweet_rate, cfg.seconds, False, rng)
    await fanout.wait_for_quiet(cfg)
    delay_celebrity = await fanout.delivery_delay(cfg, g, cfg.tweet_rate, cfg.seconds, True, rng)
    result["fanout"] = {**throughput, "delay": delay, "delay_with_celebrity": delay_celebrity}

    say(f"[{n:,} users] live streams: {cfg.streams} open, tweets at {cfg.tweet_rate:g}/s")
    await fanout.wait_for_quiet(cfg)
    result["streams"] = await streams.run(cfg, g, rng, cfg.streams, cfg.tweet_rate, max(cfg.seconds, 3))
    await fanout.wait_for_quiet(cfg)

    say(f"[{n:,} users] the worst request for each endpoint: CPU per request (bench/hostile.py)")
    with httpx.Client(base_url=cfg.gateway, timeout=30) as client:
        result["hostile"] = hostile.run(client, repeat=100, say=say)

    say(f"[{n:,} users] writes: POST /api/v1/tweet through the gateway")
    await fanout.wait_for_quiet(cfg)
    # What the stack spends with nothing asked of it (Kafka answering the worker's
    # long-polls, metrics, timers): it runs through the writes' window too, and its
    # share is reported beside the tweet, not taken out of it (docs/benchmarks.md).
    with step(f"the stack idle for {cfg.seconds:g}s"):
        idle_before, idle_started = cpu.snapshot(), time.monotonic()
        await asyncio.sleep(cfg.seconds)
        result["idle_stack"] = cpu.per_second(idle_before, cpu.snapshot(), time.monotonic() - idle_started)
    before, started = cpu.snapshot(), time.monotonic()
    result["writes"] = writes.run(cfg, g, rng).as_dict()
    say(f"writes: {result['writes']['rps']:,.0f} tweets/s, p99 {result['writes']['p99_ms']:.2f} ms")
    with step("letting the worker fan the written tweets out"):
        await fanout.wait_for_quiet(cfg)
    # At full speed the fan-out falls behind the POSTs: CPU per tweet counts what the
    # tweets cost until every follower had them, not only what was spent while wrk was
    # writing (docs/benchmarks.md, "What is measured").
    result["writes"]["cpu_us_per_tweet_delivered"] = cpu.per_request(
        before, cpu.snapshot(), result["writes"]["requests"]
    )
    result["writes"]["delivered_in_seconds"] = round(time.monotonic() - started, 2)
    # The page the tweet is compared with, measured beside it: the run's first row is
    # minutes away, and the machine's speed drifts in minutes (docs/benchmarks.md,
    # "What is measured").
    figures["service_page1_beside_writes"] = _measure(
        cfg, cfg.gateway, plain, "service page 1, users without celebrities (beside the writes)"
    )

    # It empties Redis (what is read afterwards is rebuilt on its first read).
    say(f"[{n:,} users] cold start: the timeline's Redis flushed, twice")
    remembered = sorted({u for sample in kinds.values() for u in sample.users})
    result["coldstart"] = await coldstart.run(cfg, g, remembered, rng)

    # After the cold start, so that its rebuilds meet PostgreSQL as in the runs before
    # this one: new tweets clear their pages' all-visible bits, and a rebuild's walks
    # then visit the heap (docs/decisions/0018; docs/benchmarks.md, "A tweet in two
    # halves"). Redis is filled again first, so that the fan-out writes into full homes
    # as in the writes test.
    say(f"[{n:,} users] the tweet in two halves: Redis filled again, POSTs with the fan-out frozen, then the fan-out")
    coldstart.wait_for_rebuilds(cfg)  # the warm-up's last rebuilds land before the flush
    load_graph.load_redis(cfg, g, keep_generation=True)
    result["tweet_split"] = await tweet_split.run(cfg, g, rng)
    # The halves' page, measured right after them (the writes' is minutes away by now).
    figures["service_page1_beside_split"] = _measure(
        cfg, cfg.gateway, plain, "service page 1, users without celebrities (beside the tweet's halves)"
    )
    return result


def _aims(result: dict) -> list[dict]:
    reads_ = result["reads"]
    h = result["headline"]
    service_rows = [reads_[k] for k in ("service_page1_plain", "service_page1_celebrity", "service_page2")]
    worst_p99 = max(r["p99_ms"] for r in service_rows)
    delay = result["fanout"]["delay"]
    delays = [d for d in (delay["p99_ms"], result["fanout"]["delay_with_celebrity"]["p99_ms"]) if d is not None]
    entry = result["memory"]["bytes_per_timeline_entry"]
    c = result["settings"]["connections"]
    worst = max(result["hostile"], key=lambda row: row["path_total"])
    live = result["streams"]
    aims: list[dict] = []
    tweet_ratio = report.tweet_over_page(result)
    if tweet_ratio is not None:
        aims.append(
            {
                "aim": (
                    "CPU per tweet until every follower had it (the POST, relay, Kafka, fan-out; all processes)"
                    " / CPU per page 1 (measured beside the writes)"
                ),
                "target": "<= 4x",
                "measured": f"{tweet_ratio:.1f}x",
                "met": tweet_ratio <= 4,
            }
        )
    panel = report.celebrity_costs(reads_)
    if panel and panel[-1][0] == 50:
        aims.append(
            {
                "aim": "CPU of a page 1 merging 50 celebrities / one merging none (all processes)",
                "target": "<= 2x",
                "measured": f"{panel[-1][2]:.2f}x",
                "met": panel[-1][2] <= 2,
            }
        )
    cold = result.get("coldstart")
    if cold:
        during = cold["reads_during_warmup"]
        aims += [
            {
                "aim": "homes rebuilt per second after a lost Redis (reads of users nobody had read, and the warm-up)",
                "target": f">= {report.REBUILDS_AIM}",
                "measured": f"{cold['rebuilds_per_second']:,.0f}",
                "met": cold["rebuilds_per_second"] >= report.REBUILDS_AIM,
            },
            {
                "aim": f"reads during the warm-up ({cold['remembered']:,} recent readers, {c} connections)",
                "target": "p99 < 100 ms, no request failing",
                "measured": f"p99 {during['p99_ms']:.0f} ms, {during['errors'] + cold['cold_reads']['errors']} failed",
                "met": during["p99_ms"] < 100 and not during["errors"] and not cold["cold_reads"]["errors"],
            },
        ]
    return [
        *aims,
        {
            "aim": f"delivery p99 to {live['streams']} open streams at {live['rate_offered']:.0f} tweets/s, "
            f"{live['reconnected']} reconnecting with their last id",
            "target": "< 1000 ms, nothing missed or repeated",
            "measured": f"{live['p99_ms'] or 0:.0f} ms, {live['missed']} missed, {live['repeated']} repeated",
            "met": live["p99_ms"] is not None and live["p99_ms"] < 1000 and not live["missed"] and not live["repeated"],
        },
        {
            "aim": f"CPU of the worst crafted request ({worst['endpoint']}, {worst['what']})",
            "target": "a few ms",
            "measured": f"{worst['path_total'] / 1000:.1f} ms",
            "met": worst["path_total"] < 5000,
        },
        {
            "aim": "reads via the gateway / pull model (smallest of the three page kinds)",
            "target": ">= 10x",
            "measured": f"{h['push_over_pull']:.1f}x",
            "met": h["push_over_pull"] >= 10,
        },
        {
            "aim": "reads via the gateway / minimal endpoint via a gateway (page 1)",
            "target": ">= 0.8",
            "measured": f"{h['service_over_minimal']:.3f}",
            "met": h["service_over_minimal"] >= 0.8,
        },
        {
            "aim": f"read p99 at {c} connections (worst of the three page kinds)",
            "target": "< 20 ms",
            "measured": f"{worst_p99:.1f} ms",
            "met": worst_p99 < 20,
        },
        {
            "aim": f"delivery p99 at {delay['rate_offered']:.0f} tweets/s (worst of without/with a celebrity posting)",
            "target": "< 1000 ms",
            "measured": f"{max(delays):.0f} ms" if delays else "n/a",
            "met": bool(delays) and max(delays) < 1000 and delay["not_delivered_in_60s"] == 0,
        },
        {
            "aim": "Redis memory per timeline entry",
            "target": "about 20 bytes",
            "measured": f"{entry:.1f} bytes",
            "met": entry <= 24,
        },
    ]


async def main() -> int:
    cfg = load()
    loadgen.wrk_path()
    result: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": f"make bench SCALE={cfg.scale}",
        "machine": await machine.describe(cfg),
        "settings": {
            "scale": cfg.scale,
            "growth_scale": cfg.growth,
            "seconds": cfg.seconds,
            "connections": cfg.connections,
            "sample": cfg.sample,
            "threshold": cfg.threshold,
            "max_items": cfg.max_items,
            "follows": cfg.follows,
            "tweets_per_user": cfg.tweets_per_user,
            "tweet_rate": cfg.tweet_rate,
        },
        "data": {},
        "growth": {},
        "notes": [],
    }
    started = time.monotonic()
    try:
        httpx.get(f"{cfg.timeline_api}/ready", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        print(f"the stack is not running ({exc}): start it with `make run`", file=sys.stderr)
        return 2
    say(
        f"bench of the stack at {cfg.gateway} (SCALE={cfg.scale:,}, then {cfg.growth:,} for growth first); "
        "its data will be replaced"
    )
    if cfg.growth and cfg.growth != cfg.scale:
        await one_scale(cfg, cfg.growth, False, result)
    await one_scale(cfg, cfg.scale, True, result)
    reads_ = result["reads"]
    per_kind = {
        "page 1 without celebrities": reads_["service_page1_plain"]["rps"] / reads_["pull_page1_plain"]["rps"],
        "page 1 with celebrities": reads_["service_page1_celebrity"]["rps"] / reads_["pull_page1_celebrity"]["rps"],
        "page 2": reads_["service_page2"]["rps"] / reads_["pull_page2"]["rps"],
    }
    result["headline"] = {
        "push_over_pull": min(per_kind.values()),
        "per_kind": per_kind,
        "service_over_minimal": reads_["service_page1_plain"]["rps"] / reads_["minimal_page1"]["rps"],
        "minimal_over_redis": reads_["minimal_page1"]["rps"] / result["redis_floor"]["page_rps"],
    }
    result["aims"] = _aims(result)
    result["total_seconds"] = round(time.monotonic() - started, 1)
    md, js = report.write(result, cfg.out_dir)
    print(report.tables(result))
    capacity.write(capacity.render(result, capacity.Plan()), cfg.out_dir / "capacity.md")
    say(f"done in {result['total_seconds']:.0f}s: {md} and {js}")
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
