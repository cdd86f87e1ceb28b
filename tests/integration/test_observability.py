"""Health, readiness and the named Prometheus series of every process, moving with traffic."""

from __future__ import annotations

import os
import re

import httpx
import pytest

from tests.support import GATEWAY, TIMELINE_API, USERS_API, unique_name, wait_for

RELAYS = [
    int(os.environ.get("USERS_RELAY_METRICS_BASE_PORT", "9101")) + i
    for i in range(int(os.environ.get("USERS_RELAY_COUNT", "1")))
]
WORKERS = [
    int(os.environ.get("TIMELINE_WORKER_METRICS_BASE_PORT", "9111")) + i
    for i in range(int(os.environ.get("TIMELINE_WORKER_COUNT", "1")))
]


def _sum(urls: list[str], series: str, **labels: str) -> float:
    """The sum of a series over every process (several relays, workers or API workers)."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for url in urls:
        for line in httpx.get(url, timeout=5).text.splitlines():
            name, _, rest = line.partition("{") if "{" in line.split(" ")[0] else (line.split(" ")[0], "", line)
            if name == series and all(w in rest for w in wanted):
                total += float(line.rsplit(" ", 1)[1])
    return total


def _present(url: str, *series: str) -> None:
    text = httpx.get(url, timeout=5).text
    for name in series:
        assert re.search(rf"^# TYPE {re.escape(name.removesuffix('_bucket'))} ", text, re.M), (
            f"{name} missing from {url}"
        )


@pytest.mark.parametrize("base", [USERS_API, TIMELINE_API])
def test_apis_are_alive_and_ready(base: str) -> None:
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/ready").json() == {"status": "ready"}


@pytest.mark.parametrize("port", [*RELAYS, *WORKERS])
def test_relays_and_workers_are_alive_and_ready_on_their_own_loop(port: int) -> None:
    # Answered by the process's event loop: prometheus_client's own server answered any
    # path, from a thread of its own, while the loop could be stuck.
    base = f"http://127.0.0.1:{port}"
    assert httpx.get(f"{base}/health").json() == {"status": "ok"}
    assert httpx.get(f"{base}/ready").json() == {"status": "ready"}
    assert httpx.get(f"{base}/anything").status_code == 404
    assert "# TYPE " in httpx.get(f"{base}/metrics").text


def test_request_latency_histograms_by_route_and_status_move() -> None:
    users_before = _sum([f"{USERS_API}/metrics"], "litestar_requests_total", path="/api/v1/users", status_code="201")
    with httpx.Client(base_url=GATEWAY) as api:
        user = api.post("/api/v1/users", json={"username": unique_name()}).json()["user_id"]
        before = _sum(
            [f"{TIMELINE_API}/metrics"],
            "litestar_request_duration_seconds_count",
            path="/api/v1/timeline",
            status_code="200",
        )
        for _ in range(3):
            assert api.get("/api/v1/timeline", headers={"X-User-ID": user}).status_code == 200
    # With several API worker processes the scrape sums them (multiprocess mode). Both
    # APIs apply their request metrics in batches, at most 0.1 s late: wait.
    wait_for(
        lambda: (
            _sum(
                [f"{TIMELINE_API}/metrics"],
                "litestar_request_duration_seconds_count",
                path="/api/v1/timeline",
                status_code="200",
            )
            - before
            >= 3
        ),
        timeout=5,
        what="three timeline requests counted",
    )
    _present(f"{USERS_API}/metrics", "litestar_request_duration_seconds_bucket", "litestar_requests_total")
    # The Users API counts by route template and status too.
    wait_for(
        lambda: (
            _sum([f"{USERS_API}/metrics"], "litestar_requests_total", path="/api/v1/users", status_code="201")
            > users_before
        ),
        timeout=5,
        what="the sign-up counted by the Users API",
    )


def test_relay_worker_and_timeline_series_move_when_a_tweet_flows() -> None:
    relays = [f"http://127.0.0.1:{p}/metrics" for p in RELAYS]
    workers = [f"http://127.0.0.1:{p}/metrics" for p in WORKERS]
    published = _sum(relays, "outbox_published_total")
    events = _sum(workers, "timeline_events_total", topic="tweets.v1")
    deliveries = _sum(workers, "timeline_fanout_deliveries_total")
    rebuilds = _sum([f"{TIMELINE_API}/metrics"], "timeline_rebuilds_total")
    waited = _sum([f"{TIMELINE_API}/metrics"], "timeline_read_repair_seconds_count", repair="rebuild")
    follows = _sum(workers, "timeline_events_total", topic="follows.v1")
    with httpx.Client(base_url=GATEWAY) as api:
        author, fan = (api.post("/api/v1/users", json={"username": unique_name()}).json()["user_id"] for _ in range(2))
        assert (
            api.post("/api/v1/follow", headers={"X-User-ID": fan}, json={"follow_user_id": author}).status_code == 201
        )
        assert api.get("/api/v1/timeline", headers={"X-User-ID": fan}).status_code == 200  # a rebuild
        wait_for(lambda: _sum(workers, "timeline_events_total", topic="follows.v1") > follows, what="follow applied")
        assert api.post("/api/v1/tweet", headers={"X-User-ID": author}, json={"text": "metrics"}).status_code == 201
    wait_for(lambda: _sum(relays, "outbox_published_total") > published, what="outbox_published_total to move")
    wait_for(lambda: _sum(workers, "timeline_events_total", topic="tweets.v1") > events, what="events applied")
    wait_for(lambda: _sum(workers, "timeline_fanout_deliveries_total") > deliveries, what="a fan-out delivery")
    assert _sum([f"{TIMELINE_API}/metrics"], "timeline_rebuilds_total") > rebuilds
    for url in relays:
        _present(url, "outbox_backlog", "outbox_publish_delay_seconds_bucket", "outbox_relay_batch_seconds_bucket")
    for url in workers:
        _present(url, "timeline_consumer_lag", "timeline_fanout_batch_size_bucket", "timeline_dead_letters_total")
        # A series at 0 before any dead letter: `increase()` would miss the first one.
        text = httpx.get(url, timeout=5).text
        assert re.search(r'^timeline_dead_letters_total\{topic="tweets.v1"\} ', text, re.M), url
    _present(f"{TIMELINE_API}/metrics", "timeline_tweet_cache_lookups_total")
    # The fan's first read waited for its home's rebuild.
    assert _sum([f"{TIMELINE_API}/metrics"], "timeline_read_repair_seconds_count", repair="rebuild") > waited
