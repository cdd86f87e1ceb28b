"""The ports of the Timeline Service's core: what the services need from the read
model's store and from the Users Service, in their own words. The adapters implement
them (adapters/store, adapters/users_client); the unit tests drive the services with
in-memory fakes of the same ports (tests/fakes.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from enum import Enum
from typing import NamedTuple, Protocol

from shared_schemas.internal_api import Following, HomeSource, TweetItem, UserInfo


class Page(NamedTuple):
    """One page of a home as the store holds it (the followed celebrities merged in)."""

    materialized: bool  # False: the home is not in the store; rebuild it, read again
    ids: list[bytes]  # newest first, each once, at most the count asked for
    # The cached window ended before the page was full: older tweets exist that the
    # store does not hold; continue from the source of truth after the last id.
    window_ended: bool
    items: list[bytes | None]  # each id's cached item (the API's JSON), None if not cached
    # Followed celebrities whose list the store has not filled: the page lacks them.
    unfilled: list[uuid.UUID]
    # Not materialized because another reader is rebuilding it: wait, read again.
    rebuilding: bool = False


class Delivery(NamedTuple):
    """A tweet's item, and the homes to put its id into."""

    item: TweetItem
    homes: list[uuid.UUID]


class ListPush(Enum):
    """What became of a celebrity's tweet pushed into the author's list."""

    PLACED = "placed"  # in the list (or in it already): readers merge it from there
    ABSENT = "absent"  # no list: one that was lost is filled from the source when read
    CLOSED = "closed"  # closed: the author is no longer a celebrity (being demoted)


class TimelineStore(Protocol):
    # The newest ids kept per home and per celebrity list (at least: the Redis store
    # holds up to a 25th more between trims, as exact as the rest; the fake, none).
    max_items: int

    # -- homes ------------------------------------------------------------------------
    async def push_to_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID], *, partial: bool = False) -> None:
        """Place the ids in each materialized home among `users`, in id order, once.
        `partial`: they are only the newest of their authors' tweets (older ones exist):
        a home keeps nothing older than the oldest of them, and its window ends there
        (docs/decisions/0023)."""

    async def deliver(self, deliveries: list[Delivery]) -> None:
        """Each item into the tweet cache and its id into each materialized home among
        its `homes` (`push_to_homes`), all in one round trip."""

    async def unpush_from_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        """Take `tweet_ids` out of each home; a home being rebuilt is told of the removal
        even when it holds none of them (`finish_rebuild`)."""

    async def home_ids(self, user: uuid.UUID) -> list[bytes]: ...

    async def is_materialized(self, user: uuid.UUID) -> bool: ...

    async def homes_materialized(self, users: list[uuid.UUID]) -> list[bool]:
        """`is_materialized` of many homes in one round trip (a home being rebuilt is)."""

    async def generation(self) -> bytes:
        """A token the store keeps until it loses its data (made on first asking): a
        changed token says the store was lost and came back empty."""

    async def begin_rebuild(
        self, user: uuid.UUID, celebrities: list[uuid.UUID] | tuple = (), *, take_over: bool = True
    ) -> bool:
        """Mark the home being rebuilt and empty (following `celebrities`), *before* its
        tweets are fetched: what is fanned out meanwhile is kept. Without `take_over`,
        only a home with no mark at all: False when another reader is rebuilding it (or
        it is whole again), and this one must not. With it, a rebuild under way is
        joined (its list kept), and anything else started afresh."""

    async def finish_rebuild(
        self,
        user: uuid.UUID,
        celebrities: list[uuid.UUID] | tuple = (),
        tweet_ids: bytes = b"",
        items: list[TweetItem] | tuple = (),
    ) -> bool:
        """Cache `items` (the newest tweets whole), add the followed `celebrities` and the
        `tweet_ids` (16-byte ids, newest first, as one run), and mark the home whole for
        the full TTL, in one step (till now it lapses soon, so a rebuild that died leaves
        no partial home behind for long); True once landed. Of the rebuilds at a home (a
        take-over joins the one it waited for), the first to finish lands it; none does
        once a removal (`unpush_from_homes`) reached the home since they began (what they
        read may predate it: the home is dropped, and its next read rebuilds it)."""

    async def abandon_rebuild(self, user: uuid.UUID) -> None:
        """Unmark a home whose rebuild failed, so the next read rebuilds it (unless
        another rebuild at it goes on)."""

    async def merge_into_home(self, user: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None: ...

    async def follow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        """Merge `celebrity` into the pages of each materialized home among `users`."""

    async def unfollow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None: ...

    async def read_page(self, user: uuid.UUID, older_than: uuid.UUID | None, count: int) -> Page: ...

    async def read_newer(self, user: uuid.UUID, newer_than: uuid.UUID, count: int) -> Page:
        """The `count` ids immediately newer than `newer_than` (the oldest of the newer
        ones), newest first, celebrities merged. `window_ended` here means a list lost
        ids just above the position (it is capped): ask the source of truth instead."""

    # -- celebrity lists --------------------------------------------------------------
    async def push_to_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> ListPush:
        """Add to a list filled or being filled only: a missing one is filled from the
        source, a closed one takes nothing (its tweets go to the homes)."""

    async def close_celebrity_list(self, author: uuid.UUID) -> list[bytes] | None:
        """Close a filled list as its author stops being a celebrity, and its ids, in one
        step: no push lands after the read (`push_to_celebrity` says CLOSED). None if
        the list is not filled. A closed list is read again, as it is, until dropped."""

    async def drop_closed_celebrity_list(self, author: uuid.UUID) -> None:
        """The closed list's ids go; it stays closed (until `forget_celebrity_list`)."""

    async def unpush_from_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None: ...

    async def celebrity_ids(self, author: uuid.UUID) -> list[bytes]: ...

    async def is_celebrity_list_filled(self, author: uuid.UUID) -> bool:
        """Filled, and not being filled."""

    async def begin_celebrity_list(self, author: uuid.UUID, *, take_over: bool = False) -> bool:
        """Mark the list being filled, and empty, *before* its tweets are fetched (as a
        rebuild marks a home): what fan-out pushes meanwhile is kept, and readers wait
        instead of merging part of it. Without `take_over`, only a list with no mark at
        all: False when another reader fills it (or it is filled), and this one must not."""

    async def finish_celebrity_list(self, author: uuid.UUID, items: list[TweetItem]) -> bool:
        """Cache `items` (the author's newest tweets), add their ids to the list and mark
        it filled, in one step; True once landed. As `finish_rebuild`: the first of the
        fills at the list lands it, and none once a removal (`unpush_from_celebrity`)
        reached it (the list dropped)."""

    async def abandon_celebrity_list(self, author: uuid.UUID) -> None: ...

    async def forget_celebrity_list(self, author: uuid.UUID) -> None:
        """Drop the list (its author is no longer a celebrity: it would miss what they
        post from now on, should they become one again)."""

    async def mark_celebrity(self, author: uuid.UUID, is_celebrity: bool) -> bool:
        """Record the author's status; True when it changed (a threshold was crossed)."""

    # -- the tweet cache --------------------------------------------------------------
    async def put_items(self, items: list[TweetItem]) -> None: ...

    async def get_items(self, tweet_ids: list[bytes]) -> list[bytes | None]: ...

    async def delete_item(self, tweet_id: uuid.UUID) -> None:
        """Drop a deleted tweet's item, and remember it deleted (`deleted_among`) for as
        long as items are cached."""

    async def deleted_among(self, tweet_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        """Those of `tweet_ids` deleted (`delete_item`) since: a fan-out of them that
        comes after the delete must deliver nothing."""


class UsersSource(Protocol):
    """The source of truth, as the Timeline Service may ask it (the Users Service's
    internal API)."""

    async def user(self, user_id: uuid.UUID) -> UserInfo: ...

    async def following(self, user_id: uuid.UUID) -> Following: ...

    def follower_pages(self, user_id: uuid.UUID, page_size: int) -> AsyncGenerator[list[uuid.UUID], None]: ...

    async def recent_tweets(
        self, authors: list[uuid.UUID], before: uuid.UUID | None, limit: int
    ) -> list[TweetItem]: ...

    async def newer_tweets(self, authors: list[uuid.UUID], after: uuid.UUID, limit: int) -> list[TweetItem]:
        """The oldest `limit` tweets of `authors` newer than `after`, newest first."""

    async def tweets_by_ids(self, tweet_ids: list[uuid.UUID]) -> list[TweetItem]: ...

    async def home_source(self, user_id: uuid.UUID, threshold: int, limit: int, items: int) -> HomeSource:
        """What a lost home is rebuilt from (raises UnknownUser for no such user)."""
