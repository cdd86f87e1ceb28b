"""Where a refresh (`?prev_cursor=`) goes on from: a floor and the ids the client holds
above it.

Items do not reach a home in id order: the author's own tweet is written at once (0016)
while an older tweet of someone else is still in the fan-out, and partitions run side
by side. A refresh that read only above the newest item the client has would skip, for
good, an older one that lands after it (API.md: walking `prev_cursor` "reaches the head
without skipping"). So a refresh cursor, as a live stream does (0017), looks back a
grace period below the newest item it knows the client has: it names a floor (the
client has what lies at or below it, as far as it will be told) and the ids the client
holds above the floor (at most `MAX_HELD`, so the token stays short), and the next
refresh sends what lies above the floor less those.
"""

from __future__ import annotations

from typing import NamedTuple

from shared_schemas.cursors import MAX_HELD

# Ids are handled as their 16 bytes (the store's form): a UUIDv7's bytes sort as its
# time, and every page read computes a Position, so no UUID object is made for it.


class Position(NamedTuple):
    floor: bytes
    held: tuple[bytes, ...] = ()  # newest first, all above the floor


def trailing(tweet: bytes, grace: float) -> bytes:
    """The smallest id made `grace` seconds before `tweet` (a UUIDv7's first 48 bits are
    its milliseconds)."""
    millis = max(0, int.from_bytes(tweet[:6], "big") - int(grace * 1000))
    return millis.to_bytes(6, "big") + bytes(10)


def after_page(ids: list[bytes], grace: float) -> Position | None:
    """A page read down (the first, or by `next_cursor`), newest first: the client holds
    these, and nothing below the oldest of them that a refresh should send."""
    if not ids:
        return None
    floor = max(trailing(ids[0], grace), ids[-1])
    above = [tweet for tweet in ids if tweet > floor]
    if len(above) > MAX_HELD:  # (the client has all between: the floor may rise)
        return Position(above[MAX_HELD], tuple(above[:MAX_HELD]))
    return Position(floor, tuple(above))


def after_refresh(before: Position, sent: list[bytes], more: bool, grace: float) -> Position:
    """A refresh from `before` sent `sent` (items above its floor it did not hold);
    `more`: the page was full, and others above the newest sent may wait for the next
    refresh, so the floor stays at or below it."""
    known = sorted(set(before.held).union(sent), reverse=True)
    if not known:
        return before
    floor = max(before.floor, trailing(known[0], grace))
    if more:
        floor = min(floor, max(sent))
    above = [tweet for tweet in known if tweet > floor]
    if len(above) <= MAX_HELD:
        return Position(floor, tuple(above))
    # More than fit: the floor rises to the newest that leaves MAX_HELD above it. (Never
    # past the newest sent: no more than MAX_HELD held ids lie above it.)
    return Position(above[MAX_HELD], tuple(above[:MAX_HELD]))
