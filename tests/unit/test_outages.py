"""Which database errors are an outage (a 503 to retry) and which a defect (a 500):
the driver's real exception types, raw and as SQLAlchemy wraps them."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg import exceptions as pg
from sqlalchemy import exc

from users.adapters.outages import is_outage

OUTAGES = [
    ConnectionRefusedError(111, "Connection refused"),
    TimeoutError(),
    pg.CannotConnectNowError("the database system is starting up"),
    pg.ObjectNotInPrerequisiteStateError('database "users_shard_1" is not currently accepting connections'),
    pg.AdminShutdownError("terminating connection due to administrator command"),
    pg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    pg.TooManyConnectionsError("sorry, too many clients already"),
    pg.DeadlockDetectedError("deadlock detected"),
    pg.SerializationError("could not serialize access"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    pg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
]

DEFECTS = [
    pg.UniqueViolationError("duplicate key value violates unique constraint"),
    pg.UndefinedColumnError('column "x" does not exist'),
    pg.ObjectNotInPrerequisiteStateError("lastval is not yet defined in this session"),
    pg.ReadOnlySQLTransactionError("cannot execute INSERT in a read-only transaction"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    asyncpg.InterfaceError("the server expects 2 arguments for this query, 1 was passed"),
    pg.InternalClientError("no binary format encoder for type foo"),
    ValueError("not a database error"),
]


def _wrapped(error: Exception) -> exc.DBAPIError:
    """As SQLAlchemy raises it: the driver's error as `orig`, and as the cause."""
    try:
        try:
            raise error
        except Exception as inner:
            raise exc.DBAPIError.instance("SELECT 1", {}, inner, Exception) from inner
    except exc.DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize("error", OUTAGES, ids=repr)
def test_an_unreachable_database_is_an_outage_raw_or_wrapped(error: Exception) -> None:
    assert is_outage(error)
    if not isinstance(error, (OSError, TimeoutError)):
        assert is_outage(_wrapped(error))


@pytest.mark.parametrize("error", DEFECTS, ids=repr)
def test_a_bad_statement_or_a_misused_driver_is_not(error: Exception) -> None:
    assert not is_outage(error)
    assert not is_outage(_wrapped(error))
