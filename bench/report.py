"""The table (stdout), docs/benchmarks.md (the block between the bench markers; the
hand-written parts around it stay) and docs/benchmarks.json (every figure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

BEGIN, END = "<!-- bench:begin (written by `make bench`; edit outside this block) -->", "<!-- bench:end -->"

READ_ROWS = [
    ("service_page1_plain", "page 1, users without celebrities", "timeline service, via the gateway"),
    ("service_page1_celebrity", "page 1, users with celebrities", "timeline service, via the gateway"),
    ("service_page2", "page 2 (next_cursor), both kinds", "timeline service, via the gateway"),
    ("service_refresh", "a refresh (prev_cursor) from page 2's positions", "timeline service, via the gateway"),
    (
        "service_page1_celebrities_0",
        "page 1, users without celebrities, again beside the panel",
        "timeline service, via the gateway",
    ),
    ("service_page1_celebrities_5", "page 1, users following 5 celebrities", "timeline service, via the gateway"),
    ("service_page1_celebrities_20", "page 1, users following 20 celebrities", "timeline service, via the gateway"),
    ("service_page1_celebrities_50", "page 1, users following 50 celebrities", "timeline service, via the gateway"),
    (
        "service_page1_beside_writes",
        "page 1, users without celebrities, again beside the writes",
        "timeline service, via the gateway",
    ),
    (
        "service_page1_beside_split",
        "page 1, users without celebrities, again beside the tweet's two halves",
        "timeline service, via the gateway",
    ),
    ("pull_page1_plain", "page 1, users without celebrities", "pull model, via a gateway copy"),
    ("pull_page1_celebrity", "page 1, users with celebrities", "pull model, via a gateway copy"),
    ("pull_page2", "page 2 (next_cursor), both kinds", "pull model, via a gateway copy"),
    ("minimal_page1", "page 1, users without celebrities", "minimal endpoint, via a gateway copy"),
    ("minimal_page1_direct", "page 1, users without celebrities", "minimal endpoint, direct"),
    ("service_page1_plain_direct", "page 1, users without celebrities", "timeline service, direct"),
]


CPU_KINDS = [
    ("api", "API"),
    ("redis", "Redis"),
    ("nginx", "nginx"),
    ("postgres", "PostgreSQL"),
    ("load generator", "wrk"),
    ("total", "all"),
]


def _cpu_line(what: str, used: dict | None) -> str:
    if not used:
        return f"{what}: n/a."
    parts = sorted(((k, v) for k, v in used.items() if k != "total"), key=lambda kv: -kv[1])
    names = {
        "users_api": "Users API",
        "api": "Timeline API",
        "postgres": "PostgreSQL",
        "redis": "Redis",
        "kafka": "Kafka",
        "relay": "relay",
        "worker": "worker",
        "nginx": "nginx",
    }
    return (
        f"{what}: "
        + ", ".join(f"{names.get(k, k)} {_n(v)}" for k, v in parts if v >= 1)
        + f"; all {_n(used['total'])}."
    )


def tweet_over_page(result: dict) -> float | None:
    """CPU per tweet, everything it caused until every follower had it, over CPU per
    page 1 (users without celebrities) measured right after the writes, all processes,
    the load generators left out of both. (Older runs had only CPU while writing, which
    left out the fan-out that lagged behind the POSTs, or compared with the run's first
    row: docs/benchmarks.md, "What is measured".)"""
    writes, reads = result.get("writes", {}), result.get("reads", {})
    tweet = _without_generator(writes.get("cpu_us_per_tweet_delivered") or writes.get("cpu_us_per_request"))
    row = reads.get("service_page1_beside_writes") or reads.get("service_page1_plain") or {}
    page = _without_generator(row.get("cpu_us_per_request"))
    if tweet is None or page is None:
        return None
    return tweet / max(1e-9, page)


class IdleShare(NamedTuple):
    ratio: float  # a tweet over a page, the idle stack's pace taken out of both
    tweet_us: float  # the idle stack's pace over the writes' window, a tweet
    page_us: float  # and over the page's measurement, a page
    of_tweet: float  # tweet_us over the whole tweet


def idle_share(result: dict) -> IdleShare | None:
    """What the stack spends with nothing asked of it (measured just before the writes,
    µs a second) runs on through the writes' window and the page's measurement: its
    share of a tweet and of a page, and the ratio without it in either. Reported beside
    `tweet_over_page`, which the aim is judged on."""
    writes, reads = result.get("writes", {}), result.get("reads", {})
    row = reads.get("service_page1_beside_writes") or {}
    pace = _without_generator(result.get("idle_stack"))
    tweet = _without_generator(writes.get("cpu_us_per_tweet_delivered"))
    page = _without_generator(row.get("cpu_us_per_request"))
    window, tweets = writes.get("delivered_in_seconds"), writes.get("requests")
    if None in (pace, tweet, page, window) or not tweets or not row.get("seconds") or not row.get("requests"):
        return None
    tweet_us = pace * window / tweets
    page_us = pace * row["seconds"] / row["requests"]
    return IdleShare((tweet - tweet_us) / max(1e-9, page - page_us), tweet_us, page_us, tweet_us / max(1e-9, tweet))


# The cold start's aim: homes rebuilt a second after a lost Redis, on this machine.
REBUILDS_AIM = 500


class RebuildInPages(NamedTuple):
    ratio: float  # CPU a rebuild over CPU a page 1 beside the writes, all processes in both
    budget_us: float  # CPU a rebuild may cost, all processes, for REBUILDS_AIM a second on this machine's cores
    budget_pages: float  # that budget in the same pages: the aim asks for ratio <= budget_pages


def rebuild_in_pages(result: dict) -> RebuildInPages | None:
    """A rebuild counted in pages of the same run: the rebuild's figure that moves least
    with the machine's speed, which moved by half between sessions (docs/benchmarks.md,
    session 26), and what REBUILDS_AIM a second asks of it in the same unit. The page is
    the one the tweet is compared with (users without celebrities, measured beside the
    writes, minutes before the cold start)."""
    row = result.get("reads", {}).get("service_page1_beside_writes") or {}
    return rebuild_over_page(
        (result.get("coldstart") or {}).get("cpu_us_per_rebuild"),
        row.get("cpu_us_per_request"),
        (result.get("machine") or {}).get("cores"),
    )


def rebuild_over_page(rebuild_cpu: dict | None, page_cpu: dict | None, cores: int | None) -> RebuildInPages | None:
    """`rebuild_in_pages` from the CPU of a rebuild and of a page (bench/cpu.py's figures
    by kind of process) and the machine's cores (None: a figure missing). All processes
    in both, the load generator too, as in the aim's budget: the two compare directly."""
    rebuild, page = (rebuild_cpu or {}).get("total"), (page_cpu or {}).get("total")
    if not rebuild or not page or not cores:
        return None
    budget = cores * 1e6 / REBUILDS_AIM
    return RebuildInPages(float(rebuild) / float(page), budget, budget / float(page))


def _without_generator(cpu_us: dict | None) -> float | None:
    """All processes' CPU but the load generator's (None: not measured)."""
    if not cpu_us or not cpu_us.get("total"):
        return None
    return float(cpu_us["total"]) - float(cpu_us.get("load generator", 0.0))


def tweet_halves(result: dict) -> tuple[float, float] | None:
    """The POST with its relay, and the fan-out, each over the page 1 measured right
    after them (all processes, the load generator left out): bench/tweet_split.py."""
    split = result.get("tweet_split") or {}
    reads = result.get("reads", {})
    row = reads.get("service_page1_beside_split") or reads.get("service_page1_beside_writes") or {}
    post = _without_generator(split.get("post_cpu_us_per_tweet"))
    fan = _without_generator(split.get("fanout_cpu_us_per_tweet"))
    page = _without_generator(row.get("cpu_us_per_request"))
    if post is None or fan is None or not page:
        return None
    return post / page, fan / page


def _tweet_split(result: dict) -> list[str]:
    split = result.get("tweet_split")
    halves = tweet_halves(result)
    if not split or halves is None:
        return []
    fan = split["fanout_cpu_us_per_tweet"]
    per = split["deliveries_per_tweet"]
    # (A run whose tweets reached nobody has no figure a delivery.)
    each = f" ({halves[1] / per:.3f}x a delivery; Redis {fan.get('redis', 0.0) / per:.1f} µs a delivery)" if per else ""
    return [
        _cpu_line(
            f"CPU per tweet, the POST and its relay alone ({split['tweets']:,} POSTs at {_n(split['rps'])}/s, "
            "the workers frozen; µs)",
            split["post_cpu_us_per_tweet"],
        ),
        _cpu_line(
            f"CPU per tweet, its fan-out alone (the workers thawed until caught up, {per:.1f} deliveries a tweet; µs)",
            fan,
        ),
        f"The POST and its relay alone cost {halves[0]:.1f}x a page 1 measured right after them, the fan-out "
        f"{halves[1]:.1f}x{each}; each half with its own batching and its own idle stack, so their sum is "
        "not the whole's (bench/tweet_split.py).",
    ]


def celebrity_costs(reads: dict) -> list[tuple[int, float, float]]:
    """(celebrities followed, CPU per page over all processes, ratio to none) for the
    panel's rows: none (measured beside the panel; older runs have only the run's first
    row, docs/benchmarks.md "What is measured"), 5, 20 and 50."""
    zero = "service_page1_celebrities_0" if "service_page1_celebrities_0" in reads else "service_page1_plain"
    base = (reads.get(zero, {}).get("cpu_us_per_request") or {}).get("total")
    rows = [(0, zero)] + [(k, f"service_page1_celebrities_{k}") for k in (5, 20, 50)]
    out = []
    for k, key in rows:
        total = (reads.get(key, {}).get("cpu_us_per_request") or {}).get("total")
        if base and total:
            out.append((k, total, total / base))
    return out if len(out) > 1 else []


def _n(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def tables(result: dict) -> str:
    s = result["settings"]
    out = []
    out.append(
        f"SCALE={s['scale']:,} users; {s['connections']} connections; {s['seconds']:g} s per measurement; "
        f"celebrity threshold {s['threshold']:,}; {s['max_items']} ids per home; "
        f"{result['machine']['asgi_server']} x{result['machine']['api_workers']} per API."
    )
    out.append("")
    out.append("**Data**")
    out.append("")
    out.append(
        "| users | follows | tweets | celebrities | users following a celebrity | most followers | load time (s) |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for scale, d in result["data"].items():
        out.append(
            f"| {d['users']:,} | {d['follows']:,} | {d['tweets']:,} | {d['celebrities']:,} | "
            f"{d['users_following_celebrities']:,} | {d['max_followers']:,} | {_n(d['load_seconds'])} |"
        )
        if d.get("panel_fans"):
            members = ", ".join(f"{n:,} following {k}" for k, n in d["panel_members"].items())
            notes.append(
                f"At SCALE={int(scale):,}, the celebrity panel (bench/graph.py): 50 accounts made celebrities by "
                f"{d['panel_fans']:,} fan accounts (counted in users), and users who followed none following "
                f"exactly 5, 20 or 50 of them ({members})."
            )
    if notes:
        out.append("")
        out.extend(notes)
    out.append("")
    out.append(
        f"**Timeline reads** (pages of 20, wrk from a separate process, {s['connections']} connections, "
        f"requests rotating over up to {s['sample']:,} users)"
    )
    out.append("")
    out.append(
        "| page | served by | pages/s | p50 ms | p99 ms | p99.9 ms | errors | "
        + " | ".join(f"CPU µs/page: {label}" for _, label in CPU_KINDS)
        + " |"
    )
    out.append("|---|---|---:|---:|---:|---:|---:|" + "---:|" * len(CPU_KINDS))
    reads = result["reads"]
    for key, page, who in READ_ROWS:
        if key not in reads:
            continue
        r = reads[key]
        used = r.get("cpu_us_per_request") or {}
        out.append(
            f"| {page} | {who} | {_n(r['rps'])} | {_n(r['p50_ms'], 2)} | {_n(r['p99_ms'], 2)} | "
            f"{_n(r['p999_ms'], 2)} | {r['errors']} | "
            + " | ".join(_n(used.get(kind), 0) if used else "n/a" for kind, _ in CPU_KINDS)
            + " |"
        )
    f = result["redis_floor"]
    blank = " |" * len(CPU_KINDS)
    floor = "raw Redis: LRANGE + MGET (redis-benchmark)"
    out.append(f"| page 1 ({f['items']} ids) | {floor} | {_n(f['page_rps'])} | | | | |{blank}")
    out.append(f"| | raw Redis: LRANGE alone | {_n(f['lrange_rps'])} | | | | |{blank}")
    out.append(f"| | raw Redis: MGET alone | {_n(f['mget_rps'])} | | | | |{blank}")
    script = "raw Redis: the service's page script (EVALSHA page.lua: ids and items in one call)"
    out.append(f"| | {script} | {_n(f['page_script_rps'])} | | | | |{blank}")
    refresh, page2 = reads.get("service_refresh"), reads.get("service_page2")
    if refresh and page2 and refresh.get("cpu_us_per_request") and page2.get("cpu_us_per_request"):
        ratio = refresh["cpu_us_per_request"]["total"] / max(1e-9, page2["cpu_us_per_request"]["total"])
        out.append("")
        out.append(f"A refresh page costs {ratio:.2f}x the CPU of a page 2 (all processes).")
    panel = celebrity_costs(reads)
    if panel:
        out.append("")
        out.append(
            "CPU of a page 1 by the celebrities it merges, all processes, against one that merges none: "
            + ", ".join(f"{k}: {_n(cost)} µs ({ratio:.2f}x)" for k, cost, ratio in panel)
            + "."
        )
    out.append("")
    out.append(
        "CPU µs/page: user + system CPU time each kind of process spent during the run, divided by the "
        "pages served (bench/cpu.py); steadier than pages/s, and what to compare between rows. "
        '"API" is whichever Python server that row measured; "all" includes the load generator '
        "and everything else on the machine."
    )
    out.append("")
    h = result["headline"]
    out.append(
        "**Push over pull** (timeline service / pull model, pages per second): "
        + ", ".join(f"{k.replace('_', ' ')} {_n(v, 1)}x" for k, v in h["per_kind"].items())
        + f"; headline (the smallest): **{_n(h['push_over_pull'], 1)}x**. "
        f"Service / minimal endpoint (both via a gateway): **{_n(h['service_over_minimal'], 3)}**; "
        f"minimal endpoint / raw Redis page: {_n(h['minimal_over_redis'], 3)}."
    )
    out.append("")
    fo = result["fanout"]
    d0, d1 = fo["delay"], fo["delay_with_celebrity"]
    out.append("**Fan-out** (the stack's worker(s); delay = POST /api/v1/tweet sent -> id in the follower's timeline)")
    out.append("")
    out.append(
        "| deliveries/s sustained | tweets/s offered | delay p50 ms | delay p99 ms | max ms | "
        "with a celebrity posting: p50 ms | p99 ms | celebrity's tweet p50 ms | p99 ms | not delivered |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    out.append(
        f"| {_n(fo['deliveries_per_second'])} | {_n(d0['rate_offered'])} | {_n(d0['p50_ms'])} | {_n(d0['p99_ms'])} | "
        f"{_n(d0['max_ms'])} | {_n(d1['p50_ms'])} | {_n(d1['p99_ms'])} | {_n(d1['celebrity_p50_ms'])} | "
        f"{_n(d1['celebrity_p99_ms'])} | {d0['not_delivered_in_60s'] + d1['not_delivered_in_60s']} |"
    )
    out.append("")
    m = result["memory"]
    out.append("**Redis memory**")
    out.append("")
    out.append(
        "| bytes per timeline entry | bytes per cached tweet | timeline entries | cached tweets | used_memory (MiB) |"
    )
    out.append("|---:|---:|---:|---:|---:|")
    out.append(
        f"| {_n(m['bytes_per_timeline_entry'], 1)} | {_n(m['bytes_per_cached_tweet'], 0)} | "
        f"{m['timeline_entries']:,} | {m['tweet_cache_items']:,} | {_n(m['used_memory_total'] / 2**20, 0)} |"
    )
    out.append("")
    w = result["writes"]
    out.append("**Writes** (POST /api/v1/tweet via the gateway, wrk)")
    out.append("")
    out.append("| requests/s | p50 ms | p99 ms | p99.9 ms | errors |")
    out.append("|---:|---:|---:|---:|---:|")
    out.append(
        f"| {_n(w['rps'])} | {_n(w['p50_ms'], 2)} | {_n(w['p99_ms'], 2)} | {_n(w['p999_ms'], 2)} | {w['errors']} |"
    )
    out.append("")
    out.append(
        _cpu_line(
            "CPU per tweet while writing (µs; the POST, the relay, and as much of the fan-out as kept up)",
            w.get("cpu_us_per_request"),
        )
    )
    out.append(
        _cpu_line(
            "CPU per tweet until every follower had it (µs; the writes and the fan-out's backlog after them)",
            w.get("cpu_us_per_tweet_delivered"),
        )
    )
    ratio = tweet_over_page(result)
    if ratio is not None:
        out.append(
            f"A tweet costs {ratio:.1f}x the CPU of a page 1 measured beside the writes (all processes but "
            "the load generator)."
        )
    idle, share = result.get("idle_stack"), idle_share(result)
    if idle and share:
        out.append(
            _cpu_line("The stack idle just before the writes (µs of CPU a second, nothing asked of it)", idle)
            + f" Over the writes' {w['delivered_in_seconds']:.0f} s until every follower had them, that pace is "
            f"{share.tweet_us:,.0f} µs a tweet ({share.of_tweet:.0%} of it), and {share.page_us:,.0f} µs "
            f"a page 1 beside them: without it in either, a tweet costs {share.ratio:.1f}x a page (the aim is "
            "judged with it)."
        )
    out.append(
        _cpu_line(
            f"CPU per tweet in the delay test at {_n(d0['rate_offered'])} tweets/s (µs)", d0.get("cpu_us_per_tweet")
        )
    )
    out += _tweet_split(result)
    out.append("")
    live = result.get("streams")
    if live:
        out.append(
            f"**Live streams** (bench/streams.py: {live['streams']} open through the gateway, "
            f"{_n(live['rate_offered'])} tweets/s; delay from sending the POST to the event)"
        )
        out.append("")
        out.append(
            "| streams | KiB per stream | deliveries | p50 ms | p99 ms | max ms | missed | repeated | reconnected |"
        )
        out.append("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        out.append(
            f"| {live['streams']} | {_n(live['kib_per_stream'], 1)} | {live['deliveries']:,} | {_n(live['p50_ms'])} | "
            f"{_n(live['p99_ms'])} | {_n(live['max_ms'])} | {live['missed']} | {live['repeated']} | "
            f"{live['reconnected']} (missed {live['missed_by_reconnected']}) |"
        )
        out.append("")
    cold = result.get("coldstart")
    if cold:
        during, reads_ = cold["reads_during_warmup"], cold["cold_reads"]
        out.append(
            "**Cold start** (bench/coldstart.py: the timeline's Redis flushed; wrk through the gateway, "
            f"{s['connections']} connections)"
        )
        out.append("")
        out.append("| after the flush | homes/s | reads/s | p50 ms | p99 ms | errors |")
        out.append("|---|---:|---:|---:|---:|---:|")
        out.append(
            f"| warm-up: {cold['remembered']:,} recent readers' homes back in {_n(cold['warmed_in_seconds'], 1)} s, "
            f"read meanwhile | {_n(cold['warm_homes_per_second'])} | {_n(during['rps'])} | {_n(during['p50_ms'], 1)} | "
            f"{_n(during['p99_ms'], 1)} | {during['errors']} |"
        )
        out.append(
            f"| reads of users nobody had read (each a rebuild), the warm-up running too | "
            f"{_n(cold['rebuilds_per_second'])} | {_n(reads_['rps'])} | {_n(reads_['p50_ms'], 1)} | "
            f"{_n(reads_['p99_ms'], 1)} | {reads_['errors']} |"
        )
        out.append("")
        waited = during.get("waited")
        if waited:
            names = {
                "rebuild": "their home rebuilt by their process",
                "another": "their home someone else's to land (another process's rebuild; one that did not land)",
                "celebrities": "their celebrities' lists filled",
            }
            parts = [
                f"{names[k]} {100 * v['share']:.1f}% (mean {_n(v['mean_ms'], 1)} ms)"
                for k, v in waited.items()
                if k in names
            ]
            out.append(
                "Reads during the warm-up that waited (timeline_read_repair_seconds), share of reads and their mean "
                f"wait: {'; '.join(parts)}. wrk's {s['connections']} connections are a closed loop, whose mean latency "
                f"is connections / throughput (Little's law): {s['connections']} / {_n(during['rps'])} reads/s = "
                f"{_n(during.get('closed_loop_mean_ms'), 1)} ms"
                + (f" (wrk measured {_n(during['mean_ms'], 1)})" if during.get("mean_ms") is not None else "")
                + ". At saturation the service lowers it only by serving more reads a second: cheaper rebuilds."
            )
            out.append("")
        out.append(
            _cpu_line("CPU per rebuild (µs, the read that asked for it included)", cold.get("cpu_us_per_rebuild"))
        )
        in_pages = rebuild_in_pages(result)
        if in_pages:
            out.append(
                f"A rebuild costs {in_pages.ratio:.1f}x the CPU of the page 1 measured beside the writes (all "
                f"processes in both): the rebuild's figure that moves least with the machine's speed. "
                f"{REBUILDS_AIM} rebuilds a second on {result['machine']['cores']} cores leave each "
                f"{_n(in_pages.budget_us)} µs of CPU, all processes: {in_pages.budget_pages:.1f} of this run's pages 1."
            )
        out.append("")
    out.append("**The worst request for each endpoint** (bench/hostile.py: one at a time via the gateway; µs of CPU")
    out.append("per request of the processes on its path)")
    out.append("")
    out.append("| endpoint | crafted | status | API | Users API | nginx | Redis | PostgreSQL | total |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in result.get("hostile", []):
        out.append(
            f"| {row['endpoint']} | {row['what']} | {row['status']} | {_n(row['api'])} | {_n(row['users_api'])} | "
            f"{_n(row['nginx'])} | {_n(row['redis'])} | {_n(row['postgres'])} | {_n(row['path_total'])} |"
        )
    out.append("")
    out.append("**Growth** (page 1 of users without celebrities, via a gateway; fan-out as above)")
    out.append("")
    out.append(
        "| users | service pages/s | service p99 ms | pull pages/s | pull p99 ms | push/pull "
        "| deliveries/s | bytes/entry |"
    )
    out.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scale, g in result["growth"].items():
        out.append(
            f"| {int(scale):,} | {_n(g['service']['rps'])} | {_n(g['service']['p99_ms'], 2)} | "
            f"{_n(g['pull']['rps'])} | {_n(g['pull']['p99_ms'], 2)} | {_n(g['push_over_pull'], 1)}x | "
            f"{_n(g['deliveries_per_second'])} | {_n(g['bytes_per_timeline_entry'], 1)} |"
        )
    out.append("")
    out.append("**Aims**")
    out.append("")
    out.append("| aim | target | measured | met |")
    out.append("|---|---|---|---|")
    for aim in result["aims"]:
        out.append(f"| {aim['aim']} | {aim['target']} | {aim['measured']} | {'yes' if aim['met'] else '**no**'} |")
    notes = result.get("notes") or []
    if notes:
        out.append("")
        out += [f"- {n}" for n in notes]
    return "\n".join(out)


def machine_lines(result: dict) -> str:
    m = result["machine"]
    return (
        f"Run {result['date']} with `{result['command']}` on: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['os']}, kernel {m['kernel']}; Python {m['python']}, Redis {m['redis']}, PostgreSQL {m['postgresql']}, "
        f"Kafka {m['kafka']}, nginx {m['nginx']}, wrk {m['wrk']}. Load generator, gateway, services, "
        f"databases and broker all share this machine."
    )


def write(result: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "benchmarks.json"
    json_path.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    md_path = out_dir / "benchmarks.md"
    block = f"{BEGIN}\n{machine_lines(result)}\n\n{tables(result)}\n{END}"
    if md_path.exists() and BEGIN in md_path.read_text() and END in md_path.read_text():
        text = md_path.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        md_path.write_text(head + block + tail)
    else:
        md_path.write_text(f"# Benchmarks\n\n{block}\n")
    return md_path, json_path
