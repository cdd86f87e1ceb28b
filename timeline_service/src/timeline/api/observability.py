"""Request ids, one JSON log line per request, and the health probes."""

from __future__ import annotations

import contextvars
import logging
import time
import uuid

from litestar import get
from litestar.datastructures import State
from litestar.types import ASGIApp, Message, Receive, Scope, Send
log = logging.getLogger("timeline.request")

# The gateway sets X-Request-ID (or keeps the client's); every log line of the request
# carries it, so one grep follows a request through nginx and the service.
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def access_log(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        token = request_id.set(headers.get(b"x-request-id", b"").decode() or uuid.uuid4().hex)
        started, status = time.perf_counter(), 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            log.info(
                "request",
                extra={
                    "method": scope["method"], "path": scope["path"], "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            request_id.reset(token)

    return middleware


@get("/health", operation_id="health", include_in_schema=False)
async def health() -> dict[str, str]:
    """Alive."""
    return {"status": "ok"}


@get("/ready", operation_id="ready", include_in_schema=False)
async def ready(state: State) -> dict[str, str]:
    """Ready when Redis answers: pages are served from Redis alone. The Users Service is
    needed only on a miss, and its outage must not take timeline reads out of service."""
    await state.redis.ping()
    return {"status": "ready"}
