"""Errors the API maps to HTTP once: Invalid -> 400, NotFound -> 404 (and the live
streams' own: services/live.py)."""


class AppError(Exception):
    """Base: `str(error)` is the `detail` the client sees."""


class Invalid(AppError):
    pass


class NotFound(AppError):
    pass


class TooManyStreams(AppError):
    """The caller has as many live streams open as allowed (429)."""


class Busy(AppError):
    """This process holds as many streams as it may, or is stopping (503: retry, and
    another process may take it)."""
