"""`python -m bench.capacity` (`make capacity`): the fleet for a planned load, worked out
from what `make bench` measured (docs/benchmarks.json), printed and written into
docs/capacity.md (between its markers; the prose around them is hand-written).

Every input is a flag with the original design's figure as its default (245M daily
users, 24.5B reads and 2.45B tweets a day); every figure is a multiplication a reader
can redo, shown in the table's "how" column. Per-request costs are CPU microseconds of
each kind of process on the bench machine (bench/cpu.py), so a core here means one of
its cores; the fleet's cores are assumed no faster.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

from bench import report
from bench.config import ROOT

BEGIN, END = "<!-- capacity:begin (written by `make capacity`; edit outside this block) -->", "<!-- capacity:end -->"
DAY = 86_400


@dataclass(frozen=True)
class Plan:
    daily_users: float = 245e6
    reads_per_day: float = 24.5e9
    tweets_per_day: float = 2.45e9
    peak_over_mean: float = 2.0  # the busiest hour against the day's mean
    utilization: float = 0.6  # of a core, planned at peak: headroom for failures and bursts
    cores_per_pod: int = 2
    redis_gib_per_shard: float = 25.0
    redis_cores_per_shard: float = 1.0  # Redis runs its commands on one thread
    cached_tweet_days: float = 3.0  # TIMELINE_TWEET_CACHE_TTL
    homes_kept_over_daily: float = 1.5  # homes live 7 days unread: weekly users keep theirs
    pg_writes_per_shard: float = 5_000  # tweets/s one PostgreSQL primary takes (planning figure)
    tweet_row_bytes: float = 400  # a tweet row with its index entries


def _cpu(row: dict | None, kind: str) -> float:
    return float(((row or {}).get("cpu_us_per_request") or {}).get(kind) or 0.0)


def _cores(rate: float, micros: float, plan: Plan) -> float:
    return rate * micros / 1e6 / plan.utilization


def fleet(bench: dict, plan: Plan) -> list[tuple[str, str, str]]:
    """(what, figure, how) rows."""
    reads, writes, fan = bench["reads"], bench["writes"], bench["fanout"]
    page = reads["service_page1_plain"]
    reads_peak = plan.reads_per_day / DAY * plan.peak_over_mean
    tweets_peak = plan.tweets_per_day / DAY * plan.peak_over_mean
    follows = float(next(iter(bench["data"].values()))["mean_follows"])
    deliveries_peak = tweets_peak * follows
    per_delivery = fan.get("cpu_us_per_delivery") or {}
    rows: list[tuple[str, str, str]] = []

    def add(what: str, value: float, how: str, unit: str = "") -> None:
        rows.append((what, f"{value:,.0f}{unit}", how))

    add("reads per second at peak", reads_peak, f"{plan.reads_per_day:,.0f} / {DAY:,} x {plan.peak_over_mean}")
    add("tweets per second at peak", tweets_peak, f"{plan.tweets_per_day:,.0f} / {DAY:,} x {plan.peak_over_mean}")
    add("deliveries per second at peak", deliveries_peak, f"tweets x {follows:.0f} followers on average")
    u = f"at {plan.utilization:.0%} of a core"
    api = _cpu(page, "api")
    read_cores = _cores(reads_peak, api, plan)
    add("Timeline API cores for reads", read_cores, f"reads x {api:.0f} µs {u}")
    write_api = _cpu(writes, "users_api") + _cpu(writes, "api")
    write_cores = _cores(tweets_peak, write_api, plan)
    add("API cores for writes (Users API, own home)", write_cores, f"tweets x {write_api:,.0f} µs {u}")
    # The fan-out asks the Users API for each tweet's followers: its share of a delivery
    # (the pages' requests and JSON), measured with the fan-out's own rate.
    pages = float(per_delivery.get("users_api") or 0.0)
    pages_cores = _cores(deliveries_peak, pages, plan)
    add("Users API cores for the fan-out's follower pages", pages_cores, f"deliveries x {pages:.1f} µs {u}")
    add(
        f"API pods ({plan.cores_per_pod} cores)",
        math.ceil((read_cores + write_cores + pages_cores) / plan.cores_per_pod),
        "the three lines above",
    )
    nginx = _cpu(page, "nginx")
    add("gateway cores", _cores(reads_peak + tweets_peak, nginx, plan), f"requests x {nginx:.0f} µs {u}")
    relay = _cpu(writes, "relay")
    add("relay cores", _cores(tweets_peak, relay, plan), f"tweets x {relay:.0f} µs {u}")
    worker = float(per_delivery.get("worker") or 0.0)
    worker_cores = _cores(deliveries_peak, worker, plan)
    add("fan-out worker cores", worker_cores, f"deliveries x {worker:.1f} µs {u}")
    add(
        "Kafka partitions of the tweets topic",
        max(64, 2 ** math.ceil(math.log2(max(1.0, worker_cores * 2)))),
        "two per worker process (one a core), a power of two, at least 64",
    )
    kafka = _cpu(writes, "kafka")
    add("Kafka broker cores", _cores(tweets_peak, kafka, plan), f"tweets x {kafka:.0f} µs {u}")
    redis_read = _cpu(page, "redis")
    redis_fan = float(per_delivery.get("redis") or 0.0)
    redis_cores = _cores(reads_peak, redis_read, plan) + _cores(deliveries_peak, redis_fan, plan)
    add(
        "Redis cores (reads and fan-out)",
        redis_cores,
        f"reads x {redis_read:.0f} µs + deliveries x {redis_fan:.1f} µs {u}",
    )
    mem = bench["memory"]
    entry, item = float(mem["bytes_per_timeline_entry"]), float(mem["bytes_per_cached_tweet"])
    max_items = int(bench["settings"]["max_items"])
    homes = plan.daily_users * plan.homes_kept_over_daily
    home_gib = homes * max_items * entry / 2**30
    cache_gib = plan.tweets_per_day * plan.cached_tweet_days * item / 2**30
    add("Redis memory for homes (GiB)", home_gib, f"{homes:,.0f} homes x {max_items} ids x {entry:.1f} B")
    add(
        "Redis memory for the tweet cache (GiB)", cache_gib, f"{plan.cached_tweet_days:g} days of tweets x {item:.0f} B"
    )
    shards = max(
        math.ceil((home_gib + cache_gib) / plan.redis_gib_per_shard),
        math.ceil(redis_cores / plan.redis_cores_per_shard),
    )
    add("Redis primaries", shards, f"the larger of memory / {plan.redis_gib_per_shard:g} GiB and cores / 1")
    pg = _cpu(writes, "postgres")
    add("PostgreSQL cores for writes", _cores(tweets_peak, pg, plan), f"tweets x {pg:.0f} µs {u}")
    followers = float(per_delivery.get("postgres") or 0.0)
    add(
        "PostgreSQL replica cores for the fan-out's follower reads",
        _cores(deliveries_peak, followers, plan),
        f"deliveries x {followers:.1f} µs {u}",
    )
    add(
        "PostgreSQL primaries",
        math.ceil(tweets_peak / plan.pg_writes_per_shard),
        f"tweets / {plan.pg_writes_per_shard:,.0f} a primary; a replica each for the fan-out's reads",
    )
    add(
        "tweets stored per year (TiB)",
        plan.tweets_per_day * 365 * plan.tweet_row_bytes / 2**40,
        f"{plan.tweets_per_day:,.0f} x 365 x {plan.tweet_row_bytes:.0f} B",
    )
    cold = bench.get("coldstart") or {}
    per_rebuild = float(((cold.get("cpu_us_per_rebuild") or {}).get("total")) or 0.0)
    if per_rebuild:
        homes_per_shard = homes / shards
        spare = (read_cores + write_cores + pages_cores) * (1 - plan.utilization)  # idle at peak, planned
        rate = spare * 1e6 / per_rebuild
        add(
            "warm-up of a lost Redis shard, at peak (seconds)",
            homes_per_shard / rate,
            f"{homes_per_shard:,.0f} homes x {per_rebuild:,.0f} µs a rebuild (all tiers), on as many cores as "
            f"the API pods keep idle at peak ({spare:,.0f}: {rate:,.0f} rebuilds/s)",
        )
    return rows


def threshold_table(bench: dict, plan: Plan) -> list[tuple[int, float, float, float, float, float]]:
    """(threshold, celebrities, fan-out cores, merge cores, total, core-seconds of the
    largest fan-out of one tweet) for thresholds from
    1,000 to 1,000,000 followers, on the bench's follower distribution (a power law by
    popularity rank, f(r) = C r^-a, its mean the bench's mean follows) extended to the
    planned users: tweets by non-celebrities are fanned out to each follower; each read
    merges every followed celebrity's list."""
    data = next(iter(bench["data"].values()))
    a, mean = float(data.get("follower_exponent", 0.6)), float(data["mean_follows"])
    n = plan.daily_users
    c = mean * n * (1 - a) / n ** (1 - a)  # sum of r^-a over 1..n ~ n^(1-a) / (1-a)
    per_delivery = bench["fanout"].get("cpu_us_per_delivery") or {}
    delivery_us = float(per_delivery.get("total") or 0.0)
    merge_us = _merge_cost(bench["reads"])
    reads_peak = plan.reads_per_day / DAY * plan.peak_over_mean
    tweets_peak = plan.tweets_per_day / DAY * plan.peak_over_mean
    out = []
    for threshold in (1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000):
        top = min(n, (c / threshold) ** (1 / a))  # ranks at or over the threshold
        # Followers held by celebrities: the integral of C r^-a over 1..top.
        held = c * (top ** (1 - a) - 1) / (1 - a) if top >= 1 else 0.0
        followed_per_reader = held / n
        fanned_per_tweet = (mean * n - held) / n
        fan_cores = tweets_peak * fanned_per_tweet * delivery_us / 1e6 / plan.utilization
        merge_cores = reads_peak * followed_per_reader * merge_us / 1e6 / plan.utilization
        largest = threshold * delivery_us / 1e6  # an author just under the threshold
        out.append((threshold, top, fan_cores, merge_cores, fan_cores + merge_cores, largest))
    return out


def _merge_cost(reads: dict) -> float:
    """CPU per page per followed celebrity, all processes: the least-squares slope of
    the bench's celebrity rows (0, 5, 20 and 50 followed), steadier than two of them."""
    points = [(k, cost) for k, cost, _ in report.celebrity_costs(reads)]
    if len(points) < 2:
        return 0.0
    mean_k = sum(k for k, _ in points) / len(points)
    mean_cost = sum(c for _, c in points) / len(points)
    spread = sum((k - mean_k) ** 2 for k, _ in points)
    slope = sum((k - mean_k) * (c - mean_cost) for k, c in points) / spread
    return max(0.0, slope)


def render(bench: dict, plan: Plan) -> str:
    lines = [
        f"From the bench run of {bench['date']} ({bench['command']}; docs/benchmarks.json), for "
        f"{plan.daily_users:,.0f} daily users, {plan.reads_per_day:,.0f} reads and "
        f"{plan.tweets_per_day:,.0f} tweets a day, peak {plan.peak_over_mean:g}x the mean, cores planned at "
        f"{plan.utilization:.0%}.",
        "",
        "| what | figure | how |",
        "|---|---:|---|",
        *(f"| {what} | {value} | {how} |" for what, value, how in fleet(bench, plan)),
        "",
        "**The celebrity threshold** (cores at peak for fan-out, against cores for merging "
        "celebrities into pages at read time; follower counts a power law by rank, as the bench's, "
        f"extended to {plan.daily_users:,.0f} users; a delivery costs "
        f"{float((bench['fanout'].get('cpu_us_per_delivery') or {}).get('total') or 0):.1f} µs, "
        f"a followed celebrity {_merge_cost(bench['reads']):.1f} µs a page)",
        "",
        "| threshold (followers) | celebrities | fan-out cores | merge cores | total cores | "
        "one tweet's largest fan-out (core-seconds) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    table = threshold_table(bench, plan)
    best = min(table, key=lambda row: row[4])[0] if table else None
    for threshold, top, fan_cores, merge_cores, total, largest in table:
        mark = " (least)" if threshold == best else ""
        lines.append(
            f"| {threshold:,}{mark} | {top:,.0f} | {fan_cores:,.0f} | {merge_cores:,.0f} | {total:,.0f} | "
            f"{largest:,.1f} |"
        )
    return "\n".join(lines)


def write(text: str, path: Path) -> None:
    current = path.read_text() if path.exists() else f"# Capacity\n\n{BEGIN}\n{END}\n"
    head, _, rest = current.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = Plan()
    for name, value in vars(defaults).items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    parser.add_argument("--bench", type=Path, default=ROOT / "docs/benchmarks.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/capacity.md")
    args = parser.parse_args()
    plan = Plan(**{name: getattr(args, name) for name in vars(defaults)})
    text = render(json.loads(args.bench.read_text()), plan)
    print(text)
    write(text, args.out)


if __name__ == "__main__":
    main()
