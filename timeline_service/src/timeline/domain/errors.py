"""Errors the API maps to HTTP once: Invalid -> 400, NotFound -> 404."""


class AppError(Exception):
    """Base: `str(error)` is the `detail` the client sees."""


class Invalid(AppError):
    pass


class NotFound(AppError):
    pass
