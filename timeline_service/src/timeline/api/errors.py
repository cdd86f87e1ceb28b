"""The one place where errors become HTTP: every error body is JSON with a `detail`."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException

from timeline.domain.errors import AppError, Invalid, NotFound

log = logging.getLogger("timeline.api")

_STATUS = {Invalid: 400, NotFound: 404}


def _json(status: int, detail: str) -> Response:
    return Response({"detail": detail}, status_code=status, media_type="application/json")


def app_error(_: Request, exc: AppError) -> Response:
    return _json(_STATUS.get(type(exc), 400), str(exc))


def http_error(_: Request, exc: HTTPException) -> Response:
    return _json(exc.status_code, exc.detail)


def unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return _json(500, "internal server error")


HANDLERS = {AppError: app_error, HTTPException: http_error, Exception: unexpected}
