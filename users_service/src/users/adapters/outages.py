"""The one rule for which database errors mean "unreachable now, retry soon".

A refused connection, a database not accepting connections or still starting up, a
connection ended under a query (a restart, a failover, an administrator), too many
connections, a deadlock or serialization failure: the request was not at fault and a
retry soon may well succeed (a 503). Anything else (a constraint, a bad statement, a
driver misused by the code) is not an outage, and stays an error (a 500 with its
traceback logged), so that a bug is never retried for ever as if it would pass.
The driver's own exceptions come raw from the asyncpg pools and wrapped by SQLAlchemy
from its engines: both are unwrapped here.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc

# SQLSTATE classes: connection exception, transaction rollback (serialization failure,
# deadlock: a shard move's trigger creation may deadlock a writer), insufficient
# resources (too many connections), operator intervention (shutdown, cannot connect
# now, a statement cancelled or timed out); and an I/O error.
_OUTAGE_CLASSES = {"08", "40", "53", "57"}
_IO_ERROR = "58030"
# A database closed to connections (ALTER DATABASE ... ALLOW_CONNECTIONS false).
_CLOSED = ("55000", "not currently accepting connections")
# asyncpg's own words for a connection that is gone, as opposed to one misused: a pool
# shutting down, a connection closed under the caller, and a pooled connection the
# server ended (its final error read, its end not yet) that is handed out and refuses
# the next statement ("cannot switch to state ...": misuse by two tasks at once is
# refused earlier, as "another operation is in progress").
_GONE = ("connection is closed", "connection was closed", "pool is closing", "pool is closed")
_ENDED_UNDER_POOL = "cannot switch to state"


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or what it wraps or was raised from, says the database cannot
    be reached now."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_outage(current):
            return True
        wrapped = getattr(current, "orig", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return False


def _says_outage(error: BaseException) -> bool:
    if isinstance(error, (OSError, TimeoutError, exc.OperationalError, exc.TimeoutError)):
        return True  # OSError: refused, reset, unreachable; TimeoutError: the clients' timeouts
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True  # SQLAlchemy saw the connection gone
    if isinstance(error, asyncpg.InterfaceError):
        return any(words in str(error) for words in _GONE)
    if isinstance(error, asyncpg.exceptions.InternalClientError):
        return _ENDED_UNDER_POOL in str(error)
    state = getattr(error, "sqlstate", None)
    if not isinstance(state, str):
        return False
    if state[:2] in _OUTAGE_CLASSES or state == _IO_ERROR:
        return True
    return state == _CLOSED[0] and _CLOSED[1] in str(error)
