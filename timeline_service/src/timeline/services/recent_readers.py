"""The callers an API process served most recently: whose homes to warm after a loss."""

from __future__ import annotations

import uuid
from collections import OrderedDict


class RecentReaders:
    """The callers this process served most recently, at most `size` (0: none kept)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._seen: OrderedDict[uuid.UUID, None] = OrderedDict()

    def saw(self, user: uuid.UUID) -> None:
        if not self.size:
            return
        seen = self._seen
        if user in seen:
            seen.move_to_end(user)
            return
        seen[user] = None
        if len(seen) > self.size:
            seen.popitem(last=False)

    def newest_first(self) -> list[uuid.UUID]:
        return list(reversed(self._seen))
