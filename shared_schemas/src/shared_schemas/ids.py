"""Ids and timestamps in the one format both services and every client see."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import uuid_utils.compat as uuid_compat


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7: ids sort by creation time, so timelines, cursors and
    merges compare ids instead of timestamps (see docs/decisions/0002)."""
    return uuid_compat.uuid7()


# The canonical 8-4-4-4-12 form only: uuid.UUID() also takes braces, "urn:uuid:" and
# hyphens anywhere, and an id that is accepted must be the id that is echoed back.
UUID_PATTERN = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_CANONICAL_UUID = re.compile(UUID_PATTERN)


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID in `value`, or None when it is not one (callers turn None into a 400)."""
    if not isinstance(value, str) or not _CANONICAL_UUID.fullmatch(value):
        return None
    return uuid.UUID(value)


def utcnow() -> datetime:
    # Millisecond precision: the API promises milliseconds, and storing more than we
    # print would make a retried tweet's `created_at` differ from the stored one.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso_ms(moment: datetime) -> str:
    """`2026-11-25T09:30:00.123Z`: UTC, milliseconds, `Z`, so it also sorts as a string."""
    # isoformat is C: strftime or an f-string costs more, on every item of a rebuilt home
    # and every item the fan-out caches (docs/benchmarks.md, "runs split in C").
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # "+00:00" -> "Z"


def uuid7_time(value: uuid.UUID) -> datetime:
    """The creation time a UUIDv7 carries in its first 48 bits (Unix milliseconds)."""
    millis = int.from_bytes(value.bytes[:6], "big")
    return datetime.fromtimestamp(millis / 1000, tz=UTC)
