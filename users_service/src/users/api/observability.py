"""Request ids, one JSON log line per request, and the health probes."""

from __future__ import annotations

import contextvars
import logging
import os
import time
import uuid
from collections.abc import Callable
from typing import cast

import msgspec
from litestar import get
from litestar.datastructures import State
from litestar.exceptions import ServiceUnavailableException
from litestar.plugins.prometheus import PrometheusController
from litestar.plugins.prometheus.middleware import PrometheusMiddleware
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import text

log = logging.getLogger("users.request")

# The gateway sets X-Request-ID (or keeps the client's); every log line of the request
# carries it, so one grep follows a request through nginx and the service.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


_line = msgspec.json.Encoder()


def instrument(app_name: str) -> Callable[[ASGIApp], ASGIApp]:
    """Request id, one JSON log line and the request metrics of every HTTP request, in
    one middleware.

    The series are those of Litestar's PrometheusMiddleware (same names, labels and
    registry, so /metrics and the dashboard see no difference), with each label set's
    children looked up once; the line has the keys, in the order, that the root handler
    (logs.configure) writes, encoded by msgspec and written at once. In place of the
    plugin's middleware and an access log through logging, which together cost a
    quarter of the CPU of a follower page (docs/decisions/0011). The Timeline API's
    version also batches its updates (0010): it serves ten times the requests.
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
        found = children.get((method, path, status))
        if found is None:
            values = (method, path, status, app_name)
            found = children[(method, path, status)] = (
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
            given = next((value for name, value in scope["headers"] if name == b"x-request-id"), b"")
            token = request_id.set(given.decode() if given else uuid.uuid4().hex)
            http = cast(HTTPScope, scope)
            method, template = http["method"], http.get("path_template", http["path"])
            started, status = time.perf_counter(), 500
            gauge = series(method, template, 200)[3]
            gauge.inc()

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                seconds = time.perf_counter() - started
                gauge.dec()
                count, histogram, failed, _ = series(method, template, status)
                count.inc()
                histogram.observe(seconds)
                if failed is not None:
                    failed.inc()
                if log.isEnabledFor(logging.INFO):
                    _write(method, scope["path"], status, seconds)
                request_id.reset(token)

        return handle

    return middleware


def _write(method: str, path: str, status: int, seconds: float) -> None:
    now = time.time()
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))
    os.write(
        2,
        _line.encode(
            {
                "asctime": f"{stamp},{int(now % 1 * 1000):03d}",
                "level": "INFO",
                "name": log.name,
                "message": "request",
                "method": method,
                "path": path,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "request_id": request_id.get(),
            }
        )
        + b"\n",
    )


def _series(kind: type, name: str, documentation: str, labels: list[str], **kwargs):
    """One series of the Litestar Prometheus plugin, created once (the plugin's
    controller serves /metrics from the same registry)."""
    if name not in PrometheusMiddleware._metrics:
        PrometheusMiddleware._metrics[name] = kind(name, documentation, labels, **kwargs)
    return PrometheusMiddleware._metrics[name]


@get("/health", operation_id="health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


@get("/ready", operation_id="ready", include_in_schema=False)
async def ready(state: State) -> dict[str, str]:
    """Ready when the shard map was read from the catalog and every database answers:
    before that, the process would route by the map a new data set starts with."""
    if not state.db.map.version:
        raise ServiceUnavailableException("the shard map has not been read from database 0 yet")
    for engine in state.db.primaries:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    return {"status": "ready"}


class MetricsController(PrometheusController):
    """Prometheus metrics at /metrics: for the scraper, not part of the public API (and
    so not in its OpenAPI document)."""

    include_in_schema = False
