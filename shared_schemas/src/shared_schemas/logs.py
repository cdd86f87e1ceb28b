"""One JSON line per log record on stderr, in every process of both services
(python-json-logger builds the record, msgspec encodes it: the standard json module
made logging a costly part of a timeline read; docs/benchmarks.md, "The read path"), and
the request id every line of a request carries."""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from types import TracebackType

from pythonjsonlogger.msgspec import MsgspecFormatter

# The gateway sets X-Request-ID (or keeps the client's); every log line of the request
# carries it, so one grep follows a request through nginx and the service. Set by the
# request middleware (shared_schemas.http_observability).
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


# Each line's "time": ISO 8601 in UTC with milliseconds and a Z, as the API's times and
# the gateway's lines ($time_iso8601) are, whatever the host's timezone.
SECOND_FORMAT = "%Y-%m-%dT%H:%M:%S"


def second_text(second: int) -> str:
    """A log line's time to the second (its milliseconds follow: ".123Z")."""
    return time.strftime(SECOND_FORMAT, time.gmtime(second))


def request_headers() -> dict[str, str]:
    """The header that passes the request id on to a call made for the request (none
    outside a request: the callee makes its own)."""
    current = request_id.get()
    return {} if current == "-" else {"x-request-id": current}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def configure(level: str = "INFO", *, requests: bool = False) -> None:
    """JSON lines on stderr for the whole process; `requests`: an HTTP API's, whose
    lines also carry the id of the request they were written for."""
    handler = logging.StreamHandler(sys.stderr)
    formatter = MsgspecFormatter(
        "{asctime}{levelname}{name}{message}", style="{", rename_fields={"asctime": "time", "levelname": "level"}
    )
    formatter.converter = time.gmtime
    formatter.default_time_format, formatter.default_msec_format = SECOND_FORMAT, "%s.%03dZ"
    handler.setFormatter(formatter)
    if requests:
        handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs plain-text handlers of its own; send its records through ours,
    # and silence its access log: the API middleware writes one JSON line per request.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("aiokafka").setLevel("WARNING")
    # What ends a process unhandled (a relay or worker that cannot start) and Python's
    # warnings: JSON lines too, not a plain traceback on stderr.
    sys.excepthook = _log_uncaught
    logging.captureWarnings(True)


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("uncaught").critical("the process ends on an error", exc_info=(kind, error, trace))
