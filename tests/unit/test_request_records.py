"""Both APIs' request bookkeeping, applied per batch (docs/decisions/0010)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta

from shared_schemas.http_observability import RequestRecords


class _Child:
    """Stands in for a prometheus_client child: records what it was told."""

    def __init__(self) -> None:
        self.value, self.observed = 0.0, []

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def set(self, value: float) -> None:
        self.value = value

    def observe(self, seconds: float) -> None:
        self.observed.append(seconds)


def test_a_batch_counts_each_label_set_observes_each_duration_and_sets_in_flight_per_route() -> None:
    records = RequestRecords(logging.getLogger("test.request"))
    timeline, health = _Child(), _Child()  # the in-progress gauges of two routes
    ok = (_Child(), _Child(), None, timeline)
    failed = (_Child(), _Child(), _Child(), timeline)
    records.in_flight = {timeline: 2, health: 0}
    records.samples = [(ok, 0.01), (ok, 0.02), (failed, 0.5)]
    records.flush()
    assert ok[0].value == 2 and ok[1].observed == [0.01, 0.02]
    assert failed[0].value == 1 and failed[2].value == 1 and failed[1].observed == [0.5]
    assert timeline.value == 2 and health.value == 0
    assert records.samples == []
    records.flush()  # nothing pending: nothing counted twice
    assert ok[0].value == 2 and failed[2].value == 1


def test_outside_an_event_loop_a_request_is_applied_at_once() -> None:
    records = RequestRecords(logging.getLogger("test.request"))
    ok = (_Child(), _Child(), None, _Child())
    records.add(ok, 0.003, "GET", "/api/v1/timeline", 200)
    assert ok[0].value == 1 and ok[1].observed == [0.003]


async def test_a_request_under_way_is_in_the_gauge_before_any_request_ends() -> None:
    # Requests that all hang (a store stalled until its timeout) must show while they
    # do: the batch is due from a request's start, not only from an end.
    records = RequestRecords(logging.getLogger("test.request"))
    gauge = _Child()
    records.started(gauge)
    records.started(gauge)
    await asyncio.sleep(0.3)
    assert gauge.value == 2


def test_a_request_line_is_json_whose_time_is_utc_as_every_other_line(capfd, monkeypatch) -> None:
    # The request lines are written apart from logging (for speed); their time must read
    # as the other lines' do, or a merge of the two by time sorts them wrong.
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        log = logging.getLogger("test.request.line")
        log.setLevel(logging.INFO)
        records = RequestRecords(log)
        records.add((_Child(), _Child(), None, _Child()), 0.003, "GET", "/api/v1/timeline", 200)
        records.flush()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    line = json.loads(capfd.readouterr().err.splitlines()[-1])
    assert line["message"] == "request" and line["status"] == 200
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]), line["time"]
    assert abs(datetime.fromisoformat(line["time"]) - datetime.now(UTC)) < timedelta(hours=1)
