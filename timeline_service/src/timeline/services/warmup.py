"""After a lost Redis, rebuild the homes of the people who were reading, before they ask.

A Redis that comes back empty (a crash without persistence, a failover to an empty
replica, a flush) makes every next read a rebuild: the first reads after it are far
fewer a second, and far slower, than warm ones. Each API process remembers the
callers it served most recently (a bounded memory: the store lost it, the processes did
not), notices the loss by the store's generation token, and rebuilds those homes, the
most recent reader first, a few at a time, and only while no read of this process is
waiting on a repair: the reads it serves meanwhile come first (docs/decisions/0018).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from prometheus_client import Counter

from timeline.services.ports import TimelineStore
from timeline.services.reader import Reader
from timeline.services.recent_readers import RecentReaders

WARMED = Counter("timeline_warmed_homes_total", "Homes rebuilt ahead of their reader after the store was lost")
log = logging.getLogger("timeline.warmup")

BATCH = 200  # homes looked up per round trip
YIELD_SECONDS = 0.02  # how often a warm-up that let reads go first looks again


class Warmup:
    def __init__(
        self, reader: Reader, store: TimelineStore, recent: RecentReaders, concurrency: int, check_seconds: float
    ) -> None:
        self.reader, self.store, self.recent = reader, store, recent
        self.concurrency, self.check_seconds = max(1, concurrency), check_seconds
        self._generation: bytes | None = None
        self._pending: bytes | None = None

    async def lost(self) -> bool:
        """Whether the store lost its data since the last look (never at the first)."""
        now = await self.store.generation()
        lost = self._generation is not None and now != self._generation
        self._pending = now
        if not lost:
            self._generation = now
        return lost

    def warmed(self) -> None:
        """The loss `lost()` reported is handled: look for the next one (until then, a
        warm-up that failed halfway is tried again at the next look)."""
        self._generation = self._pending

    async def warm(self) -> int:
        """Rebuild the remembered readers' missing homes, most recent first."""
        warmed = 0
        readers = self.recent.newest_first()
        for start in range(0, len(readers), BATCH):
            batch = readers[start : start + BATCH]
            present = await self.store.homes_materialized(batch)
            missing = [user for user, there in zip(batch, present) if not there]
            for i in range(0, len(missing), self.concurrency):
                await self._after_the_readers()
                done = await asyncio.gather(
                    *(self._one(user) for user in missing[i : i + self.concurrency]), return_exceptions=True
                )
                warmed += sum(1 for ok in done if ok is True)
        return warmed

    async def _after_the_readers(self) -> None:
        """Wait while reads here are repairing what they lack. A read that misses its home
        rebuilds it anyway; a warm-up rebuild beside it is a guess (a recent reader who may
        not come back soon) that takes the CPU and the batch the reads wait for: after a
        flush, more reads are served a second without it (docs/decisions/0018, "Reads
        first"). The guesses go on once the reads find their homes, or in a quiet
        moment."""
        # Looked at every YIELD_SECONDS rather than woken when the last repair ends: the
        # warm-up then starts on a look that finds no read repairing, not in every gap
        # between two reads.
        while self.reader.repairing:  # noqa: ASYNC110
            await asyncio.sleep(YIELD_SECONDS)

    async def _one(self, user: uuid.UUID) -> bool:
        if not await self.reader.rebuild(user, take_over=False):
            return False  # a reader's own rebuild got there first (or a removal spoiled it)
        WARMED.inc()
        return True

    async def run(self) -> None:
        """Forever: look at the store's generation; after a loss, warm."""
        if not self.recent.size:
            return
        while True:
            try:
                if await self.lost():
                    log.info("the store was lost: warming %d recent readers' homes", len(self.recent.newest_first()))
                    warmed = await self.warm()
                    self.warmed()
                    log.info("warmed %d homes", warmed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("warm-up check failed", exc_info=True)
            await asyncio.sleep(self.check_seconds)
