"""The one rule for which database errors mean "unreachable now, retry soon".

A refused connection, a database not accepting connections or still starting up, a
connection ended under a query (a restart, a failover, an administrator), too many
connections: the request was not at fault and a retry soon may well succeed (a 503).
Anything else (a constraint, a bad statement) is not an outage, and stays an error.
The driver's own exceptions come raw from the asyncpg pools and wrapped by SQLAlchemy
from its engines: both are unwrapped here.
"""

from __future__ import annotations

import asyncpg
from sqlalchemy import exc

# SQLSTATE classes: connection exception, insufficient resources (too many
# connections), operator intervention (shutdown, cannot connect now), system error.
_OUTAGE_CLASSES = {"08", "53", "57", "58"}
# A write reaching a primary that a failover demoted; a database closed to connections
# (ALTER DATABASE ... ALLOW_CONNECTIONS false) reports 55000 with this message.
_READ_ONLY = "25006"
_CLOSED = ("55000", "not currently accepting connections")


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or what it wraps, says the database cannot be reached now."""
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
    if isinstance(error, (OSError, TimeoutError, exc.OperationalError, exc.InterfaceError, exc.TimeoutError)):
        return True
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    # A connection the server ended while it sat in a pool, handed out before its
    # end was read: asyncpg finds it mid-error and refuses the next statement.
    if isinstance(error, (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)):
        return True
    state = getattr(error, "sqlstate", None)
    if not isinstance(state, str):
        return False
    if state[:2] in _OUTAGE_CLASSES or state == _READ_ONLY:
        return True
    return state == _CLOSED[0] and _CLOSED[1] in str(error)
