"""The one place where errors become HTTP: every error body is JSON with a `detail`."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from users.adapters.outages import is_outage
from users.domain.errors import AppError, Conflict, Invalid, NotFound, ShardMoved

log = logging.getLogger("users.api")

_STATUS = {Invalid: 400, NotFound: 404, Conflict: 409, ShardMoved: 503}


def _json(status: int, detail: str, **extra: object) -> Response:
    return Response({"detail": detail, **extra}, status_code=status, media_type="application/json")


def app_error(_: Request, exc: AppError) -> Response:
    response = _json(_STATUS.get(type(exc), 400), str(exc))
    if response.status_code == 503:
        response.headers["Retry-After"] = "1"
    return response


def http_error(_: Request, exc: HTTPException) -> Response:
    if isinstance(exc, ValidationException):
        # Malformed JSON, a non-object body, a missing field or one of the wrong type.
        extra = {"errors": exc.extra} if exc.extra else {}
        return _json(400, exc.detail or "invalid request", **extra)
    response = _json(exc.status_code, exc.detail)
    response.headers.update(exc.headers or {})  # `Allow` on a 405, as RFC 9110 requires
    return response


def bad_encoding(_: Request, exc: UnicodeDecodeError) -> Response:
    # msgspec reports invalid UTF-8 inside a JSON string as UnicodeDecodeError, which
    # the framework does not translate: it is still the client's malformed body.
    return _json(400, "request body is not valid UTF-8")


def too_deep(_: Request, exc: RecursionError) -> Response:
    # The JSON decoder refuses nesting past its depth limit (a kilobyte of `[`): the
    # client's malformed body, cheaply refused, not a server error.
    return _json(400, "request body is nested too deeply")


def unexpected(request: Request, exc: Exception) -> Response:
    if is_outage(exc):
        # A database unreachable, restarting or too slow (the clients' timeouts):
        # nothing was written that the client cannot retry, and a retry soon may well
        # succeed.
        log.warning("a database is unavailable", extra={"path": request.url.path, "error": repr(exc)})
        response = _json(503, "a database is unavailable; retry shortly")
        response.headers["Retry-After"] = "1"
        return response
    log.exception("unhandled error", extra={"path": request.url.path})
    return _json(500, "internal server error")


HANDLERS: ExceptionHandlersMap = {
    AppError: app_error,
    HTTPException: http_error,
    UnicodeDecodeError: bad_encoding,
    RecursionError: too_deep,
    Exception: unexpected,  # an outage (users.adapters.outages) is a 503, the rest a 500
}
