"""A refresh (`?prev_cursor=`) walked again and again reaches the head without skipping
or repeating an item (API.md), even when items reach the home out of id order: the
author's own tweet at once, an older one of someone else after it (docs/decisions/0017).
Property-tested (hypothesis) over delivery orders, page sizes and refresh moments."""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from shared_schemas.cursors import MAX_HELD
from shared_schemas.ids import new_id
from tests.unit.services import world
from timeline.domain import items as item_codec
from timeline.domain.refresh import Position, after_page, after_refresh


def _ids(raws: list[bytes]) -> list[uuid.UUID]:
    return [item_codec.decode(raw).tweet_id for raw in raws]


async def _walk(delays: list[int], refresh_after: list[bool], limits: list[int]) -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    await w.timeline(reader)
    await w.follow(reader, author)
    first = await w.tweet(author)
    events = [w.tweet_event(author) for _ in delays]  # made in id order
    # Each is delivered up to its delay later than its turn (fewer than MAX_HELD newer
    # ones ahead of it): the fan-out's partitions, or the author's own written at once.
    order = sorted(range(len(events)), key=lambda i: (i + delays[i], i))
    page = await w.reader.page(reader, None, limits[0])
    held = _ids(page.items)
    assert held == [first] and page.refresh is not None
    cursor: Position = page.refresh

    async def refresh(size: int) -> bool:
        nonlocal cursor
        got = await w.reader.newer(reader, uuid.UUID(bytes=cursor.floor), size, cursor.held)
        held.extend(_ids(got.items))
        assert got.refresh is not None
        cursor = got.refresh
        return bool(got.items)

    for step, i in enumerate(order):
        await w.fanout.handle(events[i])
        if refresh_after[step % len(refresh_after)]:
            await refresh(limits[step % len(limits)])
    while await refresh(limits[-1]):  # until nothing new: the head
        pass
    assert len(held) == len(set(held)), "an item came twice"
    assert set(held) == {first, *(e.tweet_id for e in events)}, "an item was skipped"


@settings(max_examples=150, deadline=None)
@given(
    delays=st.lists(st.integers(0, MAX_HELD - 1), min_size=1, max_size=14),
    refresh_after=st.lists(st.booleans(), min_size=1, max_size=6),
    limits=st.lists(st.integers(1, 5), min_size=1, max_size=4),
)
def test_refreshing_again_and_again_sends_every_item_once_whatever_order_they_land_in(
    delays: list[int], refresh_after: list[bool], limits: list[int]
) -> None:
    asyncio.run(_walk(delays, refresh_after, limits))


def test_a_refresh_with_nothing_new_gives_the_same_position_back() -> None:
    # API.md: "the same token back when nothing is new", so a client can poll with it.
    ids = [new_id().bytes for _ in range(12)][::-1]  # a page, newest first
    for page in (ids, ids[:3], ids[:1]):
        position = after_page(page, 10.0)
        assert position is not None and len(position.held) <= MAX_HELD
        assert after_refresh(position, [], False, 10.0) == position
    assert after_refresh(Position(ids[0]), [], False, 10.0) == Position(ids[0])  # a stream's id
