"""The read model on Redis: homes, celebrity lists and the tweet cache, on a single
server or on Redis Cluster, behind the port `TimelineStore` (after Mastodon's
FeedManager: one class owns every feed key, with paired verbs)."""

from __future__ import annotations

import operator
import secrets
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError

from shared_schemas.coalesce import Coalescer
from shared_schemas.internal_api import TweetItem, ids_of
from timeline.adapters.store import keys
from timeline.adapters.store.connection import mget, script_source
from timeline.domain import items as item_codec
from timeline.domain.merge import merge_newer, merge_window
from timeline.services.ports import Delivery, ListPush, Page

# Homes per push script call on a single Redis: enough to make one call cheaper than
# many, few enough that no call holds the server for long (docs/decisions/0005).
PUSH_HOMES = 100


class _Finish(NamedTuple):
    """A rebuilt home to land (finish_rebuild's arguments, and the rebuild's token)."""

    user: uuid.UUID
    token: str
    celebrities: list[uuid.UUID] | tuple
    tweet_ids: bytes
    items: list[TweetItem] | tuple


class _Slice(NamedTuple):
    """page.lua's reply for one list ("list" way)."""

    materialized: bool
    truncated: bool
    ids: list[bytes]


def _newest_first(tweet_ids: list[uuid.UUID]) -> list[bytes]:
    """Ids as push.lua takes them best: in that order, many are merged in one pass."""
    return sorted({t.bytes for t in tweet_ids}, reverse=True)


def _evalsha(pipe: Any, sha: str, script_keys: list, args: list) -> None:
    # Through execute_command: redis-py's cluster pipeline refuses evalsha() because it
    # cannot reload a missing script mid-pipeline; _pipelined does that itself (reload,
    # then run the idempotent pipeline again). The cluster client still routes by keys.
    pipe.execute_command("EVALSHA", sha, len(script_keys), *script_keys, *args)


class RedisTimelineStore:
    def __init__(
        self,
        redis: Redis | RedisCluster,
        max_items: int,
        ttl_seconds: int,
        item_ttl_seconds: int,
        rebuild_seconds: int = 60,
    ) -> None:
        self.redis, self.max_items, self.ttl, self.item_ttl = redis, max_items, ttl_seconds, item_ttl_seconds
        # A home being rebuilt is marked for this long only (reads do not extend it), so a
        # process that dies mid-rebuild leaves a partial home that lapses, not one that
        # lives a week; finish_rebuild gives it the full TTL.
        self.rebuild_ttl = rebuild_seconds
        # On a single Redis a page is one script call (the script reads keys it is not
        # given, which only a single server allows); on a cluster, three calls.
        self.single = not isinstance(redis, RedisCluster)
        self._push = redis.register_script(script_source("push.lua"))
        self._page = redis.register_script(script_source("page.lua"))
        self._unpush = redis.register_script(script_source("unpush.lua"))
        self._streams = redis.register_script(script_source("streams.lua"))
        self._begin = redis.register_script(script_source("begin.lua"))
        self._put = redis.register_script(script_source("cache_put.lua")) if self.single else None
        self._whole = redis.register_script(script_source("whole.lua"))
        self._abandon = redis.register_script(script_source("abandon.lua"))
        self._close = redis.register_script(script_source("close.lua"))
        # The token of each rebuild (and celebrity list's fill) this process began and has
        # not landed: only the rebuild holding a list's mark may land it (begin.lua).
        self._tokens: dict[uuid.UUID, str] = {}
        self._fill_tokens: dict[uuid.UUID, str] = {}
        # After a lost Redis, hundreds of rebuilds a second each mark a home, then land
        # it: on a single Redis the ones that wait meanwhile go in one round trip
        # (group commit, docs/decisions/0021). A cluster's homes share no slot.
        self._begins: Coalescer[tuple[uuid.UUID, list], bool] | None = None
        self._finishes: Coalescer[_Finish, bool | Exception] | None = None
        if self.single:
            # At most PUSH_HOMES homes a call, for the reason PUSH_HOMES gives.
            self._begins = Coalescer(self._begin_many, max_batch=PUSH_HOMES)
            self._finishes = Coalescer(self._finish_many, max_batch=PUSH_HOMES)

    async def _pipelined(self, queue: Callable[[Any], object], *, transaction: bool = False) -> list:
        """Run the commands `queue(pipe)` adds, in one round trip (per node on a cluster).

        Scripts go in as EVALSHA; a server that lacks them (restarted, flushed, a new
        cluster node) answers NOSCRIPT, and the whole pipeline runs again after loading
        them: every command here is idempotent.
        """
        for attempt in (1, 2):
            async with self.redis.pipeline(transaction=transaction) as pipe:
                queue(pipe)
                try:
                    return await pipe.execute()
                except NoScriptError:
                    if attempt == 2:
                        raise
                    for script in self._scripts():
                        await self.redis.script_load(script.script)  # every primary on a cluster
        return []

    async def _script(self, sha: str, source: Any, script_keys: list, args: list) -> Any:
        # The hot path of every read: EVALSHA straight through execute_command (what
        # AsyncScript.__call__ does, less a layer), loading the script on NOSCRIPT.
        command = ("EVALSHA", sha, len(script_keys), *script_keys, *args)
        try:
            return await self.redis.execute_command(*command)
        except NoScriptError:
            # A server without this script (restarted, flushed) has none of them: load
            # them all, so that no transaction after this meets a NOSCRIPT halfway
            # (finish_rebuild's would mark a home whole before its ids are in).
            for script in self._scripts():
                await self.redis.script_load(script.script)
            return await self.redis.execute_command(*command)

    def _scripts(self) -> list[Any]:
        # whole.lua last: a server that has it has every other (see whole.lua).
        scripts = [self._push, self._page, self._unpush, self._begin, self._streams, self._abandon]
        return [*scripts, *([self._put] if self._put else []), self._whole]

    def _by_slot(self, users: list[uuid.UUID]) -> list[list[str]]:
        """The (marker, home) keys of `users`, in groups that one script call may touch:
        all of them on a single Redis (in calls of at most PUSH_HOMES homes, so that no
        call holds the server for long), the homes of one slot on a cluster."""
        if self.single:
            pairs = keys.home_lists(users)
            step = 2 * PUSH_HOMES
            return [pairs[i : i + step] for i in range(0, len(pairs), step)]
        cluster = cast(RedisCluster, self.redis)
        groups: dict[int, list[str]] = {}
        for user in users:
            home = keys.home(user)
            groups.setdefault(cluster.keyslot(home.marker), []).extend((home.marker, home.ids))
        return list(groups.values())

    # -- homes ------------------------------------------------------------------------
    async def push_to_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID], *, partial: bool = False) -> None:
        args = [self.max_items, "1p" if partial else "1", keys.CHANGES, *_newest_first(tweet_ids)]

        def queue(pipe: Any) -> None:
            for group in self._by_slot(users):
                _evalsha(pipe, self._push.sha, group, args)

        await self._pipelined(queue)

    async def deliver(self, deliveries: list[Delivery]) -> None:
        def queue(pipe: Any) -> None:
            for item, homes in deliveries:
                pipe.set(keys.item(item.tweet_id), item_codec.encode(item), ex=self.item_ttl)
                args = [self.max_items, "1", keys.CHANGES, item.tweet_id.bytes]
                for group in self._by_slot(homes):
                    _evalsha(pipe, self._push.sha, group, args)

        await self._pipelined(queue)

    async def unpush_from_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        await self._unpush_from(
            [
                (home.marker, home.ids, keys.removals(home.ids), keys.streamed(user))
                for user, home in zip(users, map(keys.home, users), strict=True)
            ],
            tweet_ids,
        )

    async def _unpush_from(self, lists: list[tuple[str, str, str, str]], tweet_ids: list[uuid.UUID]) -> None:
        """unpush.lua on each list: (marker, list, its removals, the key that asks for them)."""
        args = [keys.CHANGES, self.max_items, keys.REMOVALS_SECONDS * 1000, *(t.bytes for t in tweet_ids)]

        def queue(pipe: Any) -> None:
            for list_keys in lists:  # one list a call: on a cluster, lists share no slot
                _evalsha(pipe, self._unpush.sha, list(list_keys), args)

        await self._pipelined(queue)

    async def home_ids(self, user: uuid.UUID) -> list[bytes]:
        return cast(list[bytes], await self.redis.lrange(keys.home(user).ids, 0, -1))

    async def is_materialized(self, user: uuid.UUID) -> bool:
        return bool(await self.redis.exists(keys.home(user).marker))

    async def homes_materialized(self, users: list[uuid.UUID]) -> list[bool]:
        found = await self._pipelined(lambda pipe: [pipe.exists(keys.home(user).marker) for user in users])
        return [bool(n) for n in found]

    async def generation(self) -> bytes:
        # SET NX then GET: whoever asks first after a loss makes the new token.
        token = uuid.uuid4().bytes
        made = await self.redis.set(keys.GENERATION, token, nx=True)
        return token if made else cast(bytes, await self.redis.get(keys.GENERATION)) or token

    async def begin_rebuild(
        self, user: uuid.UUID, celebrities: list[uuid.UUID] | tuple = (), *, take_over: bool = True
    ) -> bool:
        token = secrets.token_hex(8)
        args = [self.rebuild_ttl, "1" if take_over else "0", token, *(keys.followed(c) for c in celebrities)]
        if self._begins is not None:
            began = await self._begins((user, args))
        else:
            began = bool(await self._script(self._begin.sha, self._begin.script, list(keys.home(user)), args))
        if began:
            self._tokens[user] = token
        return began

    async def _begin_many(self, begins: list[tuple[uuid.UUID, list]]) -> list[bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, args in begins:
                _evalsha(pipe, self._begin.sha, list(keys.home(user)), args)
            replies = await pipe.execute(raise_on_error=False)
        # A begin is not idempotent (a second one finds the first's mark), so after a
        # NOSCRIPT only the begins that did not run go again: not the whole pipeline,
        # part of which may have run (another process loaded the scripts meanwhile).
        for i, reply in enumerate(replies):
            if isinstance(reply, NoScriptError):
                user, args = begins[i]
                replies[i] = await self._script(self._begin.sha, self._begin.script, list(keys.home(user)), args)
            elif isinstance(reply, Exception):
                raise reply
        return [bool(began) for began in replies]

    async def finish_rebuild(
        self,
        user: uuid.UUID,
        celebrities: list[uuid.UUID] | tuple = (),
        tweet_ids: bytes = b"",
        items: list[TweetItem] | tuple = (),
    ) -> bool:
        finish = _Finish(user, self._tokens.get(user, ""), celebrities, tweet_ids, items)
        if not finish.token:
            return False  # not begun here
        if self._finishes is not None:
            landed = await self._finishes(finish)
        else:
            await self.put_items(list(items))
            (landed,) = await self._land([finish])
        if isinstance(landed, Exception):
            raise landed  # (its token stays, for abandon_rebuild)
        # Only now: a landing that failed leaves the token for abandon_rebuild.
        self._tokens.pop(user, None)
        return landed

    async def _finish_many(self, finishes: list[_Finish]) -> list[bool | Exception]:
        return await self._land(finishes, [item for finish in finishes for item in finish.items])

    async def _land(self, finishes: list[_Finish], items: list[TweetItem] | None = None) -> list[bool | Exception]:
        """Land rebuilt homes in one transaction (one slot's on a cluster), `items` cached
        in it first (a single Redis): each home's ids put in by a RPUSH of their own and
        whole.lua; a home that fan-out pushed into while it was rebuilt (whole.lua's 2)
        then has them merged by push.lua, in a second transaction. Whether each landed,
        or what failed its second transaction: the homes the first landed are whole,
        and their readers are not failed by the others'."""
        replies = await self._land_once(finishes, items or [], merge=False)
        again = [finish for finish, reply in zip(finishes, replies, strict=True) if reply == 2]
        if not again:
            return [reply == 1 for reply in replies]
        try:
            merged: list[bool | Exception] = [reply == 1 for reply in await self._land_once(again, [], merge=True)]
        except Exception as exc:  # noqa: BLE001 - raised to the homes of the second transaction only
            merged = [exc] * len(again)
        outcomes = iter(merged)
        return [next(outcomes) if reply == 2 else reply == 1 for reply in replies]

    async def _land_once(self, finishes: list[_Finish], items: list[TweetItem], *, merge: bool) -> list[int]:
        """whole.lua's reply for each of `finishes`, landed in one transaction."""
        ends: list[int] = []  # where each finish's whole.lua reply is

        def queue(pipe: Any) -> None:
            count = 0
            if items:
                _evalsha(pipe, cast(Any, self._put).sha, *self._put_arguments(items))
                count += 1
            for finish in finishes:
                count += self._queue_finish(pipe, finish, merge=merge)
                ends.append(count - 1)

        replies = await self._pipelined(queue, transaction=True)
        return [replies[i] for i in ends[-len(finishes) :]]  # (a NOSCRIPT queued them twice)

    def _queue_finish(self, pipe: Any, finish: _Finish, *, merge: bool) -> int:
        """Queue a landing (whole.lua last); returns how many commands it queued."""
        home = keys.home(finish.user)
        whole = [home.marker, home.ids, home.celebrities]
        queued = 1
        if finish.tweet_ids:  # one run, checked newest first and distinct here
            ids = ids_of(finish.tweet_ids)
            in_order = all(map(operator.gt, ids, ids[1:]))  # in C here, not on the server's one thread (0018)
            if in_order and not merge:
                # Into a key of their own, which whole.lua renames to the home if nothing was
                # pushed into it meanwhile: far less of the server's time to land them than
                # as push.lua's one argument (whole.lua says why). Emptied first, as
                # _pipelined may run this twice, and given a lifetime, as the EVALSHA
                # that renames it may be refused (NOSCRIPT) while these commands run.
                landing = keys.landing(finish.user, finish.token)
                pipe.delete(landing)
                pipe.rpush(landing, *ids[: self.max_items])
                pipe.pexpire(landing, self.rebuild_ttl * 1000)
                whole.append(landing)
                queued += 3
            else:  # push.lua trusts "1s" runs to be in order
                args = [self.max_items, f"{'1s' if in_order else '1'}@{finish.token}", keys.CHANGES, finish.tweet_ids]
                _evalsha(pipe, self._push.sha, [home.marker, home.ids], args)
                queued += 1
        celebrities = [keys.followed(c) for c in finish.celebrities]
        # Readers stop waiting.
        _evalsha(pipe, self._whole.sha, whole, [self.ttl, finish.token, keys.CHANGES, *celebrities])
        return queued

    async def abandon_rebuild(self, user: uuid.UUID) -> None:
        token = self._tokens.pop(user, None)
        if token is not None:
            await self._script(self._abandon.sha, self._abandon.script, [keys.home(user).marker], [token])

    async def merge_into_home(self, user: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        if tweet_ids:
            home = keys.home(user)
            args: list[Any] = [self.max_items, "1", keys.CHANGES, *_newest_first(tweet_ids)]
            await self._push(keys=[home.marker, home.ids], args=args)

    async def follow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        present = await self._pipelined(lambda pipe: [pipe.exists(keys.home(user).marker) for user in users])
        readers = [user for user, exists in zip(users, present) if exists]

        def queue(pipe: Any) -> None:
            for user in readers:
                pipe.sadd(keys.home(user).celebrities, keys.followed(celebrity))
                pipe.expire(keys.home(user).celebrities, self.ttl)

        if readers:
            await self._pipelined(queue)

    async def followed_celebrities(self, user: uuid.UUID) -> list[uuid.UUID]:
        found = await self.redis.smembers(keys.home(user).celebrities)
        return [keys.follower_of(cast(bytes, c)) for c in found]

    async def unfollow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        members = (keys.followed(celebrity), celebrity.bytes)  # homes made before the hex form hold the bytes
        await self._pipelined(lambda pipe: [pipe.srem(keys.home(user).celebrities, *members) for user in users])

    async def read_page(self, user: uuid.UUID, older_than: uuid.UUID | None, count: int) -> Page:
        return await self._read(user, older_than.bytes if older_than else b"", count, "older")

    async def read_newer(self, user: uuid.UUID, newer_than: uuid.UUID, count: int) -> Page:
        return await self._read(user, newer_than.bytes, count, "newer")

    async def _read(self, user: uuid.UUID, cursor: bytes, count: int, direction: str) -> Page:
        args = [cursor, count, self.ttl, "page" if self.single else "home", self.max_items, direction, self.rebuild_ttl]
        if self.single:
            args += [keys.ITEM, keys.CELEBRITY_MARKER, keys.CELEBRITY_IDS]
        reply = await self._script(self._page.sha, self._page.script, list(keys.home(user)), args)
        if reply[0] != 1:  # no home (0), or one being rebuilt (2)
            return Page(False, [], False, [], [], rebuilding=reply[0] == 2)
        if self.single:
            _, ended, ids, found, unfilled = reply
            return Page(True, ids, ended == 1, found, [keys.follower_of(c) for c in unfilled])
        _, truncated, ids, celebs = reply
        slices = await self._celebrity_slices([keys.follower_of(c) for c in celebs], cursor, count, direction)
        filled = [s for _, s in slices if s.materialized]
        merge = merge_newer if direction == "newer" else merge_window
        merged, ended = merge([(ids, truncated == 1), *((s.ids, s.truncated) for s in filled)], count)
        unfilled = [author for author, s in slices if not s.materialized]
        return Page(True, merged, ended, await self.get_items(merged), unfilled)

    async def _celebrity_slices(
        self, authors: list[uuid.UUID], cursor: bytes, count: int, direction: str
    ) -> list[tuple[uuid.UUID, _Slice]]:
        if not authors:
            return []
        args = [cursor, count, self.ttl, "list", self.max_items, direction, self.rebuild_ttl]

        def queue(pipe: Any) -> None:
            for author in authors:
                listing = keys.celebrity(author)
                # KEYS[3] is unused for a list; the marker stands in, in the same slot.
                _evalsha(pipe, self._page.sha, [listing.marker, listing.ids, listing.marker], args)

        replies = await self._pipelined(queue)
        return [(a, _Slice(m == 1, t == 1, ids)) for a, (m, t, ids) in zip(authors, replies)]

    # -- celebrity lists --------------------------------------------------------------
    async def push_to_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> ListPush:
        listing = keys.celebrity(author)
        args: list[Any] = [self.max_items, "1c", keys.CHANGES, *_newest_first(tweet_ids)]
        placed = int(await self._push(keys=[listing.marker, listing.ids], args=args))
        return ListPush.CLOSED if placed == -1 else ListPush.ABSENT if placed == -2 else ListPush.PLACED

    async def close_celebrity_list(self, author: uuid.UUID) -> list[bytes] | None:
        listing = keys.celebrity(author)
        return cast(list[bytes] | None, await self._close(keys=[listing.marker, listing.ids]))

    async def drop_closed_celebrity_list(self, author: uuid.UUID) -> None:
        await self.redis.delete(keys.celebrity(author).ids)

    async def unpush_from_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        listing = keys.celebrity(author)  # its removals always kept: few lists, read by many
        await self._unpush_from([(listing.marker, listing.ids, keys.removals(listing.ids), listing.ids)], tweet_ids)

    async def celebrity_ids(self, author: uuid.UUID) -> list[bytes]:
        return cast(list[bytes], await self.redis.lrange(keys.celebrity(author).ids, 0, -1))

    async def is_celebrity_list_filled(self, author: uuid.UUID) -> bool:
        # "1" or "c" (cut): filled; "d": closed, its author no longer a celebrity, read as
        # it is (close.lua); "r" or "x": being filled (begin.lua, unpush.lua).
        return await self.redis.get(keys.celebrity(author).marker) in (b"1", b"c", b"d")

    async def begin_celebrity_list(self, author: uuid.UUID, *, take_over: bool = False) -> bool:
        # A home's rebuild mark, on the list (its third key stands for the home's set of
        # followed celebrities, which a list has not).
        listing, token = keys.celebrity(author), secrets.token_hex(8)
        args = [self.rebuild_ttl, "1" if take_over else "0", token]
        script_keys = [listing.marker, listing.ids, listing.ids]
        began = bool(await self._script(self._begin.sha, self._begin.script, script_keys, args))
        if began:
            self._fill_tokens[author] = token
        return began

    async def finish_celebrity_list(self, author: uuid.UUID, items: list[TweetItem]) -> bool:
        token = self._fill_tokens.get(author, "")
        if not token:
            return False  # not begun here
        await self.put_items(items)
        listing = keys.celebrity(author)
        args = [self.max_items, f"1@{token}", keys.CHANGES, *_newest_first([item.tweet_id for item in items])]

        def queue(pipe: Any) -> None:
            if items:
                _evalsha(pipe, self._push.sha, [listing.marker, listing.ids], args)
            _evalsha(pipe, self._whole.sha, [listing.marker, listing.ids, listing.ids], ["", token, ""])  # no TTL

        # One slot (the author's hash tag): a transaction on a cluster too.
        replies = await self._pipelined(queue, transaction=True)
        self._fill_tokens.pop(author, None)  # only now, as for a home
        return replies[-1] == 1

    async def abandon_celebrity_list(self, author: uuid.UUID) -> None:
        token = self._fill_tokens.pop(author, None)
        if token is not None:
            await self._script(self._abandon.sha, self._abandon.script, [keys.celebrity(author).marker], [token])

    async def forget_celebrity_list(self, author: uuid.UUID) -> None:
        listing = keys.celebrity(author)
        await self.redis.delete(listing.marker, listing.ids)

    async def mark_celebrity(self, author: uuid.UUID, is_celebrity: bool) -> bool:
        if is_celebrity:
            return bool(await self.redis.sadd(keys.CELEBRITIES, author.bytes))
        return bool(await self.redis.srem(keys.CELEBRITIES, author.bytes))

    # -- live streams -----------------------------------------------------------------
    async def hold_stream(self, user: uuid.UUID, stream: str, lapse_seconds: float, limit: int | None) -> bool:
        """Take (limit given) or renew (None) one of the caller's places for open streams,
        and mark the home as streamed (its removals recorded) for REMOVALS_SECONDS."""
        args = [stream, int(lapse_seconds * 1000), "" if limit is None else limit, keys.REMOVALS_SECONDS]
        script_keys = [keys.streams(user), keys.streamed(user)]
        return bool(await self._script(self._streams.sha, self._streams.script, script_keys, args))

    async def release_stream(self, user: uuid.UUID, stream: str) -> None:
        """Give the place back; the home stays marked as streamed (a resume's removals)."""

        def queue(pipe: Any) -> None:
            pipe.zrem(keys.streams(user), stream)
            pipe.set(keys.streamed(user), b"1", ex=keys.REMOVALS_SECONDS)

        await self._pipelined(queue)

    async def remember_sent(self, user: uuid.UUID, last: uuid.UUID, ids: list[uuid.UUID], ttl_seconds: int) -> None:
        await self.redis.set(keys.sent(user, last), b"".join(t.bytes for t in ids), ex=ttl_seconds)

    async def removed_since(self, user: uuid.UUID, celebrities: list[uuid.UUID], since_ms: int) -> list[uuid.UUID]:
        lists = [keys.home(user).ids, *(keys.celebrity(c).ids for c in celebrities)]

        def queue(pipe: Any) -> None:
            for listing in lists:  # on a cluster, in as many slots
                pipe.zrangebyscore(keys.removals(listing), f"({since_ms}", "+inf")

        found = await self._pipelined(queue)
        return [uuid.UUID(bytes=raw) for raw in dict.fromkeys(raw for ids in found for raw in ids)]

    async def recall_sent(self, user: uuid.UUID, last: uuid.UUID) -> list[uuid.UUID] | None:
        raw = cast(bytes | None, await self.redis.get(keys.sent(user, last)))
        if raw is None:
            return None
        return [uuid.UUID(bytes=raw[i : i + 16]) for i in range(0, len(raw), 16)]

    # -- the tweet cache --------------------------------------------------------------
    async def put_items(self, items: list[TweetItem]) -> None:
        if not items:
            return
        if self._put is not None and len(items) > 1:
            # One call for many items (a rebuild's 800): far cheaper for the API than a
            # pipeline of SETs. On a cluster the items' keys share no slot: a pipeline.
            script_keys, args = self._put_arguments(items)
            await self._put(keys=script_keys, args=args)
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.set(keys.item(item.tweet_id), item_codec.encode(item), ex=self.item_ttl)
            await pipe.execute()

    def _put_arguments(self, items: list[TweetItem]) -> tuple[list, list]:
        return [keys.item(item.tweet_id) for item in items], [self.item_ttl, *(item_codec.encode(i) for i in items)]

    async def get_items(self, tweet_ids: list[bytes]) -> list[bytes | None]:
        """One MGET (per slot on a cluster): a page costs one round trip for its items."""
        if not tweet_ids:
            return []
        return await mget(self.redis, [keys.item(t) for t in tweet_ids])

    async def delete_item(self, tweet_id: uuid.UUID) -> None:
        def queue(pipe: Any) -> None:
            pipe.delete(keys.item(tweet_id))
            pipe.set(keys.gone(tweet_id), b"1", ex=self.item_ttl)

        await self._pipelined(queue)

    async def deleted_among(self, tweet_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        found = await self._pipelined(lambda pipe: [pipe.exists(keys.gone(t)) for t in tweet_ids])
        return {t for t, n in zip(tweet_ids, found) if n}
