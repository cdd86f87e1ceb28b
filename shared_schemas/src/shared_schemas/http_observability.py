"""What every HTTP request of either service leaves behind: its id, one JSON log line
and the request metrics, in one middleware; and the liveness probe and /metrics, which
both serve alike. One place for both APIs (each adds its own readiness check:
api/probes.py)."""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import cast

import msgspec
from litestar import get
from litestar.plugins.prometheus import PrometheusController
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram

from shared_schemas.logs import request_id, second_text

_line = msgspec.json.Encoder()
_clock = [-1, ""]  # the second last formatted, and its text


class RequestRecords:
    """What every request leaves behind: its log line and its metric samples, kept in
    memory and written out together (when 64 KiB of lines are pending, and at most
    0.1 s after a request), as nginx's `access_log ... buffer=` does.

    The lines are exactly what the root handler (shared_schemas.logs.configure: JSON on stderr) would
    write for `log.info("request", extra=...)`: the same keys in the same order, on the
    same stream. The metrics are the series of Litestar's PrometheusMiddleware (same
    names, labels and registry, so `/metrics` and the dashboard see no difference),
    applied per batch: a request then costs a list append instead of five updates of
    prometheus_client's multiprocess values, each behind a lock and an mmap write (see
    docs/benchmarks.md, decision 0010). Scrapes are seconds apart; 0.1 s late is
    invisible to them. Other log records go through logging as usual; the app writes
    what is pending at shutdown (its on_shutdown hook calls `flush`).
    """

    def __init__(self, log: logging.Logger) -> None:
        self.log = log  # the lines' logger: its name, and whether INFO is on
        self.lines: list[bytes] = []
        self.size = 0
        self.samples: list[tuple[tuple, float]] = []  # (children of the label set, seconds)
        self.in_flight: dict = {}  # in-progress gauge child (one per route) -> requests under way
        self._pending = False  # a flush is due within 0.1 s

    def started(self, gauge: object) -> None:
        """A request under way on the route of this in-progress gauge: counted at the
        next flush, which is due from now, so requests that all hang (a store stalled
        until its timeout) show in the gauge while they do, not once they end."""
        self.in_flight[gauge] = self.in_flight.get(gauge, 0) + 1
        self._soon()

    def _soon(self) -> None:
        if self._pending:
            return
        try:
            asyncio.get_running_loop().call_later(0.1, self.flush)
        except RuntimeError:  # no loop: write at once
            self.flush()
            return
        self._pending = True

    def add(self, series: tuple, seconds: float, method: str, path: str, status: int) -> None:
        self.samples.append((series, seconds))
        if self.log.isEnabledFor(logging.INFO):
            now = time.time()
            second = int(now)
            if second != _clock[0]:
                _clock[0], _clock[1] = second, second_text(second)
            line = (
                _line.encode(
                    {
                        "time": f"{_clock[1]}.{int((now - second) * 1000):03d}Z",
                        "level": "INFO",
                        "name": self.log.name,
                        "message": "request",
                        "method": method,
                        "path": path,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "request_id": request_id.get(),
                    }
                )
                + b"\n"
            )
            self.lines.append(line)
            self.size += len(line)
        if self.size >= 65536:
            self.flush()
        else:
            self._soon()

    def flush(self) -> None:
        self._pending = False
        samples, self.samples = self.samples, []
        for series, seconds in samples:
            series[1].observe(seconds)
        for (count, _, failed, _), n in collections.Counter(series for series, _ in samples).items():
            count.inc(n)
            if failed is not None:
                failed.inc(n)
        for gauge, n in self.in_flight.items():
            gauge.set(n)
        if self.lines:
            data, self.lines, self.size = b"".join(self.lines), [], 0
            os.write(2, data)


def _series(kind: type, name: str, documentation: str, labels: list[str], **kwargs):
    """One series of the Litestar Prometheus plugin (same names, labels and registry, so
    dashboards and the /metrics controller see no difference), created once."""
    if name not in PrometheusMiddleware._metrics:
        PrometheusMiddleware._metrics[name] = kind(name, documentation, labels, **kwargs)
    return PrometheusMiddleware._metrics[name]


def instrument(app_name: str, request_records: RequestRecords) -> Callable[[ASGIApp], ASGIApp]:
    """Request id, one JSON log line and the request metrics of every HTTP request, in
    one middleware.

    The series are those of Litestar's PrometheusMiddleware (`litestar_requests_total`,
    `litestar_request_duration_seconds`, `litestar_requests_in_progress`,
    `litestar_requests_error_total`, labelled method, path template, status code and
    app name); this does the same bookkeeping with each label set's children looked up
    once, one `send` wrapper for the log line and the metrics together, and the
    updates applied per batch (RequestRecords): the plugin's middleware and a separate
    access-log middleware were a large share of a timeline read's cost (see
    docs/benchmarks.md, "The read path"). The in-progress gauge of each route is this
    process's count of its requests under way, set at every batch.
    """
    labels = ["method", "path", "status_code", "app_name"]
    total = _series(Counter, "litestar_requests_total", "Total requests", labels)
    duration = _series(Histogram, "litestar_request_duration_seconds", "Request duration, in seconds", labels)
    in_progress = _series(
        Gauge,
        "litestar_requests_in_progress",
        "Total requests currently in progress",
        labels,
        multiprocess_mode="livesum",
    )
    errors = _series(Counter, "litestar_requests_error_total", "Total errors in requests", labels)
    children: dict[tuple[str, str, int], tuple] = {}

    def series(method: str, path: str, status: int) -> tuple:
        key = (method, path, status)
        found = children.get(key)
        if found is None:
            values = (method, path, status, app_name)
            found = children[key] = (
                total.labels(*values),
                duration.labels(*values),
                errors.labels(*values) if status >= 500 else None,
                in_progress.labels(method, path, 200, app_name),
            )
        return found

    def middleware(app: ASGIApp) -> ASGIApp:
        async def handle(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            given = b""
            for name, value in scope["headers"]:
                if name == b"x-request-id":
                    given = value
                    break
            token = request_id.set(given.decode() if given else uuid.uuid4().hex)
            http = cast(HTTPScope, scope)
            method, template = http["method"], http.get("path_template", http["path"])
            started, status, ended = time.perf_counter(), 500, 0.0
            gauge = series(method, template, 200)[3]
            request_records.started(gauge)

            async def send_wrapper(message: Message) -> None:
                nonlocal status, ended
                kind = message["type"]
                if kind == "http.response.start":
                    status = cast(HTTPResponseStartEvent, message)["status"]
                elif kind == "http.response.body":
                    ended = time.perf_counter()
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                request_records.in_flight[gauge] -= 1
                request_records.add(
                    series(method, template, status),
                    (ended or time.perf_counter()) - started,
                    method,
                    scope["path"],
                    status,
                )
                request_id.reset(token)

        return handle

    return middleware


@get("/health", operation_id="health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


class MetricsController(PrometheusController):
    """Prometheus metrics at /metrics: for the scraper, not part of the public API (and
    so not in its OpenAPI document)."""

    include_in_schema = False
