"""The garbage collector's settings for a long-lived service process."""

from __future__ import annotations

import gc

# Container objects allocated (less those freed) before a young collection; CPython's
# default is 700. A request's ids, rows and lists die with it, by reference counting,
# and are in no cycle: at 700, collecting during rebuild batches took a good share of
# the Users API's CPU, for nothing (py-spy: docs/decisions/0012). Cycles still go, a few
# megabytes later.
YOUNG_COLLECTION_EVERY = 20_000


def settle() -> None:
    """Last of a process's start-up. What exists by then lives as long as the process:
    frozen, the collector's full passes no longer walk it (docs/decisions/0012). And
    young collections are made rarer (above)."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])
