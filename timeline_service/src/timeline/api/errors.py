"""The one place where errors become HTTP: every error body is JSON with a `detail`."""

from __future__ import annotations

import logging

import aiohttp
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.types import ExceptionHandlersMap
from redis import exceptions as redis_errors

from timeline.adapters.users_client import TweetsUnavailable
from timeline.domain.errors import AppError, Busy, Invalid, NotFound, TooManyStreams

log = logging.getLogger("timeline.api")

_STATUS = {Invalid: 400, NotFound: 404, TooManyStreams: 429, Busy: 503}


def _json(status: int, detail: str) -> Response:
    return Response({"detail": detail}, status_code=status, media_type="application/json")


def app_error(_: Request, exc: AppError) -> Response:
    status = _STATUS.get(type(exc), 400)
    response = _json(status, str(exc))
    if status in (429, 503):
        response.headers["Retry-After"] = "1"
    return response


def http_error(_: Request, exc: HTTPException) -> Response:
    response = _json(exc.status_code, exc.detail)
    response.headers.update(exc.headers or {})  # `Allow` on a 405, as RFC 9110 requires
    return response


def unavailable(request: Request, exc: Exception) -> Response:
    # Redis or the Users Service unreachable or too slow (the clients' timeouts): a
    # read that a retry soon may well answer.
    log.warning("a dependency is unavailable", extra={"path": request.url.path, "error": repr(exc)})
    response = _json(503, "the timeline is unavailable; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return _json(500, "internal server error")


HANDLERS: ExceptionHandlersMap = {
    AppError: app_error,
    HTTPException: http_error,
    redis_errors.ConnectionError: unavailable,
    redis_errors.TimeoutError: unavailable,
    redis_errors.ClusterDownError: unavailable,  # MasterDownError too
    # A primary demoted by a failover, a cluster moving a slot: Redis answers, but not
    # yet for this key.
    redis_errors.ReadOnlyError: unavailable,
    redis_errors.TryAgainError: unavailable,
    # Redis full of keys it may not evict (a rebuild's writes refused: OOM), or a replica
    # still loading its copy: it answers, and a retry soon may well be served.
    redis_errors.OutOfMemoryError: unavailable,
    redis_errors.BusyLoadingError: unavailable,
    aiohttp.ClientError: unavailable,
    TweetsUnavailable: unavailable,  # the Users Service could not read an author's database
    OSError: unavailable,
    Exception: unexpected,  # OSError: a refused connection, a timeout
}
