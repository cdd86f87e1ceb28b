"""In-memory fakes of the Timeline Service's ports (timeline.services.ports), for unit
tests of the service layer. tests/integration/test_timeline_store.py runs the same
behaviour tests against this fake and the real store on Redis, so the fake cannot drift
from what the real adapter does."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator

from shared_schemas.internal_api import Following, HomeSource, TweetItem, UserInfo
from timeline.adapters.users_client import UnknownUser
from timeline.domain import items as item_codec
from timeline.domain.merge import merge_newer, merge_window
from timeline.services.ports import Delivery, ListPush, Page


class FakeTimelineStore:
    def __init__(self, max_items: int = 800) -> None:
        self.max_items = max_items
        self.homes: dict[uuid.UUID, list[bytes]] = {}
        self.materialized: set[uuid.UUID] = set()
        self.rebuilding: set[uuid.UUID] = set()  # begun, not finished: readers wait
        # Homes being rebuilt and lists being filled that a removal reached (unpush.lua's
        # "x"): their landing is refused. ("home" | "list", owner).
        self.stale: set[tuple[str, uuid.UUID]] = set()
        self.followed: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.lists: dict[uuid.UUID, list[bytes]] = {}
        self.filled: set[uuid.UUID] = set()
        self.closed: set[uuid.UUID] = set()  # lists closed as their author stopped being a celebrity
        self.filling: set[uuid.UUID] = set()  # begun, not finished: readers wait
        self.celebs: set[uuid.UUID] = set()
        self.items: dict[bytes, bytes] = {}
        self.gone: set[uuid.UUID] = set()  # deleted tweets (delete_item)
        # Lists that lost ids at their cap (unpush.lua's "c"): ("home" | "list", owner).
        self.cut: set[tuple[str, uuid.UUID]] = set()
        self.token = uuid.uuid4().bytes

    def _place(self, current: list[bytes], tweet_ids: list[uuid.UUID], cut: bool, partial: bool = False) -> list[bytes]:
        # push.lua: each id once, newest first, the newest `max_items` kept (and no
        # more: push.lua's slack past the cap is a saving of Redis's, not a behaviour);
        # none older than the last of a cut list, nor than the oldest of a part.
        new = {t.bytes for t in tweet_ids if not (cut and current and t.bytes < current[-1])}
        floor = min((t.bytes for t in tweet_ids), default=b"") if partial else b""
        return [i for i in sorted(set(current) | new, reverse=True) if i >= floor][: self.max_items]

    def _unpush(self, key: tuple[str, uuid.UUID], current: list[bytes], tweet_ids: list[uuid.UUID]) -> list[bytes]:
        """unpush.lua: what is left; a list at its cap that loses ids is cut, and a cut
        list left empty goes (its owner's marker with it)."""
        gone = {t.bytes for t in tweet_ids}
        left = [i for i in current if i not in gone]
        kind, owner = key
        # (a closed list's marker stays as it is: close.lua's "d")
        marked = owner in self.filled - self.closed if kind == "list" else owner in self.materialized - self.rebuilding
        if marked and len(left) < len(current) and (key in self.cut or len(current) >= self.max_items):
            self.cut.add(key)
            if not left:
                self.cut.discard(key)
                (self.filled if kind == "list" else self.materialized).discard(owner)
        return left

    def _short_of_older(self, key: tuple[str, uuid.UUID], ids: list[bytes]) -> bool:
        return len(ids) >= self.max_items or key in self.cut

    # -- homes ------------------------------------------------------------------------
    async def push_to_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID], *, partial: bool = False) -> None:
        for user in users:
            if user in self.materialized:
                key = ("home", user)
                self.homes[user] = self._place(self.homes.get(user, []), tweet_ids, key in self.cut, partial)
                if partial and tweet_ids and user not in self.rebuilding:
                    self.cut.add(key)

    async def deliver(self, deliveries: list[Delivery]) -> None:
        for item, homes in deliveries:
            await self.put_items([item])
            await self.push_to_homes(homes, [item.tweet_id])

    async def unpush_from_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        self.stale.update(("home", user) for user in users if user in self.rebuilding)
        for user in users:
            self.homes[user] = self._unpush(("home", user), self.homes.get(user, []), tweet_ids)

    async def home_ids(self, user: uuid.UUID) -> list[bytes]:
        return list(self.homes.get(user, []))

    async def is_materialized(self, user: uuid.UUID) -> bool:
        return user in self.materialized

    async def homes_materialized(self, users: list[uuid.UUID]) -> list[bool]:
        return [user in self.materialized for user in users]

    async def generation(self) -> bytes:
        return self.token

    def lose_everything(self) -> None:
        """As a Redis that restarts empty."""
        self.__init__(self.max_items)  # type: ignore[misc]

    async def begin_rebuild(
        self, user: uuid.UUID, celebrities: list[uuid.UUID] | tuple = (), *, take_over: bool = True
    ) -> bool:
        if not take_over and (user in self.materialized or user in self.rebuilding):
            return False
        if take_over and user in self.rebuilding and ("home", user) not in self.stale:
            self.followed[user].update(celebrities)  # begin.lua: joins the rebuild at it
            return True
        self.rebuilding.add(user)
        self.stale.discard(("home", user))
        self.materialized.add(user)  # fan-out writes into it from now on
        self.cut.discard(("home", user))
        self.homes[user] = []
        self.followed[user] = set(celebrities)
        return True

    async def finish_rebuild(
        self,
        user: uuid.UUID,
        celebrities: list[uuid.UUID] | tuple = (),
        tweet_ids: bytes = b"",
        items: list[TweetItem] | tuple = (),
    ) -> bool:
        await self.put_items(list(items))
        if ("home", user) in self.stale:  # whole.lua: refused, the home gone (the next read rebuilds it)
            await self.abandon_rebuild(user)
            self.homes.pop(user, None)
            self.followed.pop(user, None)
            return False
        if user not in self.rebuilding:  # not this rebuild's to land (one process here: none began)
            return False
        self.followed.setdefault(user, set()).update(celebrities)
        ids = [uuid.UUID(bytes=tweet_ids[i : i + 16]) for i in range(0, len(tweet_ids), 16)]
        self.homes[user] = self._place(self.homes.get(user, []), ids, False)
        self.rebuilding.discard(user)  # no expiry here
        return True

    async def abandon_rebuild(self, user: uuid.UUID) -> None:
        if user in self.rebuilding:  # abandon.lua: a home landed meanwhile stays
            self.materialized.discard(user)
            self.rebuilding.discard(user)
            self.stale.discard(("home", user))

    async def merge_into_home(self, user: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        await self.push_to_homes([user], tweet_ids)

    async def follow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        for user in users:
            if user in self.materialized:
                self.followed.setdefault(user, set()).add(celebrity)

    async def unfollow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        for user in users:
            self.followed.get(user, set()).discard(celebrity)

    @staticmethod
    def _slice(ids: list[bytes], short: bool, older_than: uuid.UUID | None, count: int) -> tuple[list[bytes], bool]:
        start = [i for i in ids if older_than is None or i < older_than.bytes]
        part = start[:count]
        return part, len(part) < count and short

    @staticmethod
    def _slice_newer(ids: list[bytes], short: bool, newer_than: uuid.UUID, count: int) -> tuple[list[bytes], bool]:
        above = [i for i in ids if i > newer_than.bytes]
        return above[-count:] if count else [], len(above) == len(ids) and short

    async def read_page(self, user: uuid.UUID, older_than: uuid.UUID | None, count: int) -> Page:
        return self._read(
            user, lambda ids, short: self._slice(ids, short, older_than, count), lambda s: merge_window(s, count)
        )

    async def read_newer(self, user: uuid.UUID, newer_than: uuid.UUID, count: int) -> Page:
        return self._read(
            user, lambda ids, short: self._slice_newer(ids, short, newer_than, count), lambda s: merge_newer(s, count)
        )

    def _read(self, user: uuid.UUID, cut, merge) -> Page:
        if user in self.rebuilding:
            return Page(False, [], False, [], [], rebuilding=True)
        if user not in self.materialized:
            return Page(False, [], False, [], [])
        home = self.homes.get(user, [])
        sources = [cut(home, self._short_of_older(("home", user), home))]
        unfilled = []
        for celebrity in sorted(self.followed.get(user, set())):
            if celebrity in self.filled:
                theirs = self.lists.get(celebrity, [])
                sources.append(cut(theirs, self._short_of_older(("list", celebrity), theirs)))
            else:
                unfilled.append(celebrity)
        ids, ended = merge(sources)
        return Page(True, ids, ended, [self.items.get(i) for i in ids], unfilled)

    # -- celebrity lists --------------------------------------------------------------
    async def push_to_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> ListPush:
        if author in self.closed:
            return ListPush.CLOSED
        if author in self.filled or author in self.filling:
            self.lists[author] = self._place(self.lists.get(author, []), tweet_ids, ("list", author) in self.cut)
            return ListPush.PLACED
        return ListPush.ABSENT

    async def close_celebrity_list(self, author: uuid.UUID) -> list[bytes] | None:
        if author not in self.filled:  # (a closed list stays filled: read as it is)
            return None
        self.closed.add(author)
        return list(self.lists.get(author, []))

    async def drop_closed_celebrity_list(self, author: uuid.UUID) -> None:
        self.lists.pop(author, None)

    async def unpush_from_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        if author in self.filling:
            self.stale.add(("list", author))
        self.lists[author] = self._unpush(("list", author), self.lists.get(author, []), tweet_ids)

    async def celebrity_ids(self, author: uuid.UUID) -> list[bytes]:
        return list(self.lists.get(author, []))

    async def is_celebrity_list_filled(self, author: uuid.UUID) -> bool:
        return author in self.filled

    async def begin_celebrity_list(self, author: uuid.UUID, *, take_over: bool = False) -> bool:
        if not take_over and (author in self.filled or author in self.filling):
            return False
        if take_over and author in self.filling and ("list", author) not in self.stale:
            return True  # begin.lua: joins the fill at it
        self.filled.discard(author)
        self.filling.add(author)
        self.cut.discard(("list", author))
        self.stale.discard(("list", author))
        self.lists[author] = []
        return True

    async def finish_celebrity_list(self, author: uuid.UUID, items: list[TweetItem]) -> bool:
        await self.put_items(items)
        if ("list", author) in self.stale:  # whole.lua: refused, the list gone
            await self.forget_celebrity_list(author)
            return False
        if author not in self.filling:  # not this fill's to land
            return False
        self.lists[author] = self._place(self.lists.get(author, []), [item.tweet_id for item in items], False)
        self.filling.discard(author)
        self.filled.add(author)
        return True

    async def abandon_celebrity_list(self, author: uuid.UUID) -> None:
        if author in self.filling:  # abandon.lua: a filled list stays filled
            self.filling.discard(author)
            self.stale.discard(("list", author))

    async def forget_celebrity_list(self, author: uuid.UUID) -> None:
        await self.abandon_celebrity_list(author)
        self.filled.discard(author)
        self.closed.discard(author)
        self.cut.discard(("list", author))
        self.lists.pop(author, None)

    async def mark_celebrity(self, author: uuid.UUID, is_celebrity: bool) -> bool:
        was = author in self.celebs
        (self.celebs.add if is_celebrity else self.celebs.discard)(author)
        return was != is_celebrity

    # -- the tweet cache --------------------------------------------------------------
    async def put_items(self, items: list[TweetItem]) -> None:
        for item in items:
            self.items[item.tweet_id.bytes] = item_codec.encode(item)

    async def get_items(self, tweet_ids: list[bytes]) -> list[bytes | None]:
        return [self.items.get(t) for t in tweet_ids]

    async def delete_item(self, tweet_id: uuid.UUID) -> None:
        self.items.pop(tweet_id.bytes, None)
        self.gone.add(tweet_id)

    async def deleted_among(self, tweet_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return self.gone.intersection(tweet_ids)


def _id(item: TweetItem) -> bytes:
    return item.tweet_id.bytes


class Unreachable(ConnectionError):
    """What the fake source raises while it is 'down'."""


class FakeUsers:
    """The source of truth in memory: users, the follow graph, tweets. `down` > 0 makes
    that many calls fail as an unreachable service would."""

    def __init__(self) -> None:
        self.names: dict[uuid.UUID, str] = {}
        self.follows: dict[uuid.UUID, set[uuid.UUID]] = {}
        self.tweets: dict[uuid.UUID, TweetItem] = {}
        self.down = 0
        self.calls = 0

    def _call(self) -> None:
        self.calls += 1
        if self.down > 0:
            self.down -= 1
            raise Unreachable("the Users Service is down")

    def add_user(self, name: str) -> uuid.UUID:
        user = uuid.uuid4()
        self.names[user] = name
        self.follows[user] = set()
        return user

    def follow(self, follower: uuid.UUID, followee: uuid.UUID) -> None:
        self.follows[follower].add(followee)

    def unfollow(self, follower: uuid.UUID, followee: uuid.UUID) -> None:
        self.follows[follower].discard(followee)

    def followers(self, user: uuid.UUID) -> list[uuid.UUID]:
        return sorted(u for u, theirs in self.follows.items() if user in theirs)

    def info(self, user: uuid.UUID) -> UserInfo:
        return UserInfo(
            user, self.names[user], "2026-01-01T00:00:00.000Z", len(self.followers(user)), len(self.follows[user])
        )

    def post(self, author: uuid.UUID, tweet_id: uuid.UUID, text: str = "hi") -> TweetItem:
        item = TweetItem(tweet_id, author, self.names[author], text, "2026-01-01T00:00:00.000Z")
        self.tweets[tweet_id] = item
        return item

    async def user(self, user_id: uuid.UUID) -> UserInfo:
        self._call()
        if user_id not in self.names:
            raise UnknownUser(str(user_id))
        return self.info(user_id)

    async def following(self, user_id: uuid.UUID) -> Following:
        self._call()
        if user_id not in self.names:
            raise UnknownUser(str(user_id))
        return Following(self.info(user_id), [self.info(u) for u in sorted(self.follows[user_id])])

    async def follower_pages(self, user_id: uuid.UUID, page_size: int) -> AsyncGenerator[list[uuid.UUID], None]:
        self._call()
        everyone = self.followers(user_id)
        for i in range(0, len(everyone), page_size):
            yield everyone[i : i + page_size]

    async def recent_tweets(self, authors: list[uuid.UUID], before: uuid.UUID | None, limit: int) -> list[TweetItem]:
        self._call()
        found = [t for t in self.tweets.values() if t.user_id in authors and (before is None or t.tweet_id < before)]
        return sorted(found, key=lambda t: t.tweet_id.bytes, reverse=True)[:limit]

    async def newer_tweets(self, authors: list[uuid.UUID], after: uuid.UUID, limit: int) -> list[TweetItem]:
        self._call()
        found = sorted((t for t in self.tweets.values() if t.user_id in authors and t.tweet_id > after), key=_id)
        return found[:limit][::-1]

    async def tweets_by_ids(self, tweet_ids: list[uuid.UUID]) -> list[TweetItem]:
        self._call()
        return [self.tweets[t] for t in tweet_ids if t in self.tweets]

    async def home_source(self, user_id: uuid.UUID, threshold: int, limit: int, items: int) -> HomeSource:
        followees = (await self.following(user_id)).following
        celebrities = [u.user_id for u in followees if u.followers_count >= threshold]
        authors = {user_id, *(u.user_id for u in followees if u.followers_count < threshold)}
        found = [t for t in self.tweets.values() if t.user_id in authors]
        recent = sorted(found, key=lambda t: t.tweet_id.bytes, reverse=True)[:limit]
        return HomeSource(celebrities, b"".join(t.tweet_id.bytes for t in recent), recent[:items])
