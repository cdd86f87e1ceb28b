"""The capacity table is arithmetic on the bench's figures: checked on a small made-up
bench result, and the threshold simulation's trade-off (more celebrities, less fan-out
and more merging) holds."""

from __future__ import annotations

from pathlib import Path

from bench import capacity

BENCH = {
    "date": "2026-01-01 00:00 UTC",
    "command": "make bench SCALE=1000",
    "settings": {"max_items": 800},
    "data": {"1000": {"mean_follows": 100.0, "follower_exponent": 0.6}},
    "reads": {
        "service_page1_plain": {"cpu_us_per_request": {"api": 300.0, "redis": 100.0, "nginx": 50.0, "total": 500.0}},
        "service_page1_celebrities_50": {"cpu_us_per_request": {"total": 1000.0}},
    },
    "writes": {"cpu_us_per_request": {"users_api": 1000.0, "api": 200.0, "relay": 300.0, "kafka": 100.0}},
    "fanout": {"cpu_us_per_delivery": {"worker": 5.0, "redis": 4.0, "users_api": 2.0, "postgres": 1.0, "total": 12.0}},
    "memory": {"bytes_per_timeline_entry": 20.0, "bytes_per_cached_tweet": 400.0},
    "coldstart": {"cpu_us_per_rebuild": {"total": 4000.0}},
}


def test_each_line_is_its_rate_times_its_measured_cost() -> None:
    plan = capacity.Plan(reads_per_day=86_400e6, tweets_per_day=8_640e6, peak_over_mean=1.0, utilization=0.5)
    rows = {what: figure for what, figure, _ in capacity.fleet(BENCH, plan)}
    assert rows["reads per second at peak"] == "1,000,000"
    assert rows["Timeline API cores for reads"] == "600"  # 1e6/s x 300 µs at 50%
    assert rows["API cores for writes (Users API, own home)"] == "240"  # 1e5/s x 1,200 µs at 50%
    assert rows["fan-out worker cores"] == "100"  # 1e7 deliveries/s x 5 µs at 50%
    assert rows["Users API cores for the fan-out's follower pages"] == "40"  # 1e7/s x 2 µs at 50%
    assert rows["API pods (2 cores)"] == "440"  # (600 + 240 + 40) / 2
    assert rows["PostgreSQL replica cores for the fan-out's follower reads"] == "20"  # 1e7/s x 1 µs at 50%


def test_a_higher_threshold_trades_fan_out_for_merging() -> None:
    table = capacity.threshold_table(BENCH, capacity.Plan())
    celebrities = [row[1] for row in table]
    fan, merge = [row[2] for row in table], [row[3] for row in table]
    assert celebrities == sorted(celebrities, reverse=True)
    assert fan == sorted(fan) and merge == sorted(merge, reverse=True)
    assert "(least)" in capacity.render(BENCH, capacity.Plan())


def test_the_block_is_replaced_and_the_prose_kept(tmp_path: Path) -> None:
    page = tmp_path / "capacity.md"
    page.write_text(f"intro\n\n{capacity.BEGIN}\nold\n{capacity.END}\n\noutro\n")
    capacity.write("new table", page)
    assert page.read_text() == f"intro\n\n{capacity.BEGIN}\nnew table\n{capacity.END}\n\noutro\n"


def test_a_followed_celebritys_cost_is_the_slope_of_the_panel_beside_its_own_baseline() -> None:
    # The run's first row (500 µs here) is measured minutes before the panel: the
    # baseline measured beside it is the one to compare with, and all four points count.
    panel = {f"service_page1_celebrities_{k}": {"cpu_us_per_request": {"total": 600.0 + 10 * k}} for k in (0, 5, 20)}
    panel["service_page1_celebrities_50"] = {"cpu_us_per_request": {"total": 1100.0}}
    assert capacity._merge_cost({**BENCH["reads"], **panel}) == 10.0
    assert capacity._merge_cost(BENCH["reads"]) == 10.0  # older runs: the first row and 50
