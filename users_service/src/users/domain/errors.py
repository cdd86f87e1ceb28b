"""The application's error hierarchy; the API maps each class to one status, once."""


class AppError(Exception):
    """Base: `str(error)` is the `detail` the client sees."""


class Invalid(AppError):
    """The request breaks a rule (HTTP 400)."""


class NotFound(AppError):
    """The user or tweet does not exist, or is not the caller's (HTTP 404)."""


class Conflict(AppError):
    """The request clashes with stored state: a taken name, a reused key (HTTP 409)."""


class ShardMoved(AppError):
    """A write reached a database that no longer holds its logical shard (a move just
    took it): read the map again and retry there (HTTP 503 if it keeps happening)."""

    def __init__(self, logicals: list[int]) -> None:
        super().__init__("this data is moving between databases; retry in a moment")
        self.logicals = logicals
