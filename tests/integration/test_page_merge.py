"""One rule in two places: a page's merge runs in Lua on a single Redis (page.lua, in the
page's one round trip) and in Python elsewhere (timeline.domain.merge.merge_window and
merge_newer, the references, which the Redis Cluster path and the fake store run).
Hypothesis generates homes, celebrity lists, caps, cursors, page sizes and directions
(down the timeline, or up from a position: a refresh); the Redis store's page must equal
the reference's on every one."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis, RedisCluster

from shared_schemas.ids import new_id
from tests.fakes import FakeTimelineStore
from timeline.adapters.store.redis_store import RedisTimelineStore

POOL = sorted((new_id() for _ in range(40)), reverse=True)  # newest first: byte order is time order
SINGLE = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0").rsplit("/", 1)[0] + "/14"
CLUSTER_PORTS = os.environ.get("REDIS_CLUSTER_PORTS", "").split()

ids_of = st.lists(st.sampled_from(POOL), max_size=15, unique=True)


@st.composite
def timelines(draw):
    cap = draw(st.integers(min_value=1, max_value=8))
    home = draw(ids_of)
    celebrities = draw(st.lists(ids_of, max_size=3))
    unfilled = draw(st.integers(min_value=0, max_value=1))  # a followed celebrity whose list is lost
    cursor = draw(st.one_of(st.none(), st.sampled_from(POOL), st.just(new_id())))
    count = draw(st.integers(min_value=1, max_value=8))
    upward = draw(st.booleans())
    if upward and cursor is None:
        cursor = draw(st.sampled_from(POOL))
    return cap, home, celebrities, unfilled, cursor, count, upward


async def _page(store, case) -> tuple:
    _, home, celebrities, unfilled, cursor, count, upward = case
    user, stars = uuid.uuid4(), [uuid.uuid4() for _ in range(len(celebrities) + unfilled)]
    for star, theirs in zip(stars, celebrities):
        await store.begin_celebrity_list(star)
        await store.finish_celebrity_list(star, [])  # filled (empty)
        await store.push_to_celebrity(star, theirs)
    await store.begin_rebuild(user, stars)
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, home)
    page = await (store.read_newer(user, cursor, count) if upward else store.read_page(user, cursor, count))
    # Which stars are unfilled is all that matters, not their order or ids.
    return page.materialized, page.ids, page.window_ended, len(page.unfilled)


async def _compare(client, case) -> None:
    cap = case[0]
    try:
        real = await _page(RedisTimelineStore(client, cap, ttl_seconds=600, item_ttl_seconds=600), case)
    finally:
        await client.aclose()
    reference = await _page(FakeTimelineStore(cap), case)
    assert real == reference, case


_settings = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(timelines())
def test_the_page_script_merges_as_the_reference_does(case) -> None:
    asyncio.run(_compare(Redis.from_url(SINGLE), case))


@pytest.mark.skipif(not CLUSTER_PORTS, reason="no Redis Cluster in this stack (make test starts one)")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(timelines())
def test_the_cluster_path_pages_as_the_reference_does(case) -> None:
    asyncio.run(_compare(RedisCluster.from_url(f"redis://127.0.0.1:{CLUSTER_PORTS[0]}"), case))
