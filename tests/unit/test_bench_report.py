"""The tweet's aim compares what a tweet costs until every follower has it, not only what
was spent while the POSTs ran: at full speed the fan-out lags behind the writes, and
the part it does after them is the tweets' cost too."""

from __future__ import annotations

from bench import report

PAGE = {"reads": {"service_page1_plain": {"cpu_us_per_request": {"total": 510.0, "load generator": 10.0}}}}


def test_a_tweet_counts_its_whole_fan_out() -> None:
    result = {
        **PAGE,
        "writes": {
            "cpu_us_per_request": {"total": 2_000.0, "load generator": 0.0},  # the 10 s of POSTs
            "cpu_us_per_tweet_delivered": {"total": 5_040.0, "load generator": 40.0},  # until the worker caught up
        },
    }
    assert report.tweet_over_page(result) == 10.0  # (5,040 - 40) / (510 - 10)


def test_a_run_from_before_the_whole_cost_was_measured_keeps_its_figure() -> None:
    result = {**PAGE, "writes": {"cpu_us_per_request": {"total": 2_000.0}}}
    assert report.tweet_over_page(result) == 4.0


def test_no_figure_no_ratio() -> None:
    assert report.tweet_over_page({**PAGE, "writes": {}}) is None


def test_the_tweets_halves_are_each_over_the_page_beside_the_writes() -> None:
    beside = {"service_page1_beside_writes": {"cpu_us_per_request": {"total": 410.0, "load generator": 10.0}}}
    result = {
        "reads": {**PAGE["reads"], **beside},
        "tweet_split": {
            "post_cpu_us_per_tweet": {"total": 1_240.0, "load generator": 40.0},
            "fanout_cpu_us_per_tweet": {"total": 800.0},
        },
    }
    assert report.tweet_halves(result) == (3.0, 2.0)  # (1,240 - 40) / 400, 800 / 400
    assert report.tweet_halves({**result, "tweet_split": {}}) is None


def test_the_idle_stacks_pace_is_taken_out_of_the_tweet_and_the_page_alike() -> None:
    # Idle, the stack spends 100,000 µs of CPU a second (Kafka answering long-polls, say).
    # The writes' window lasted 30 s for 6,000 tweets: 500 µs of each tweet is that pace.
    # The page beside them ran 10 s for 25,000 pages: 40 µs of each page is.
    beside = {
        "cpu_us_per_request": {"total": 440.0, "load generator": 0.0},
        "seconds": 10.0,
        "requests": 25_000,
    }
    result = {
        "reads": {"service_page1_beside_writes": beside},
        "idle_stack": {"total": 100_000.0, "load generator": 0.0},
        "writes": {
            "requests": 6_000,
            "delivered_in_seconds": 30.0,
            "cpu_us_per_tweet_delivered": {"total": 2_040.0, "load generator": 40.0},
        },
    }
    share = report.idle_share(result)
    assert share is not None
    assert (share.tweet_us, share.page_us) == (500.0, 40.0)
    assert share.ratio == 3.75  # (2,000 - 500) / (440 - 40), where the aim's figure reads 2,000 / 440
    assert report.tweet_over_page(result) == 2_000 / 440
    assert report.idle_share({**result, "idle_stack": None}) is None  # a run from before it was measured


def test_a_rebuild_is_counted_in_the_runs_pages_and_so_is_the_aims_budget() -> None:
    result = {
        "machine": {"cores": 2},
        "reads": {"service_page1_beside_writes": {"cpu_us_per_request": {"total": 800.0, "load generator": 50.0}}},
        "coldstart": {"cpu_us_per_rebuild": {"total": 6_400.0, "load generator": 100.0}},
    }
    in_pages = report.rebuild_in_pages(result)
    assert in_pages is not None
    assert in_pages.ratio == 8.0  # 6,400 / 800: all processes in both, as in the budget
    assert in_pages.budget_us == 4_000.0  # 2 cores for 500 rebuilds a second
    assert in_pages.budget_pages == 5.0  # 4,000 / 800: the aim asks for a ratio at most this


def test_no_cold_start_no_rebuild_in_pages() -> None:
    beside = {"service_page1_beside_writes": {"cpu_us_per_request": {"total": 800.0}}}
    assert report.rebuild_in_pages({"reads": beside, "machine": {"cores": 2}}) is None
