"""Progress lines on stderr while the bench works (stdout carries the final table)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_T0 = time.monotonic()


def say(message: str) -> None:
    elapsed = time.monotonic() - _T0
    print(f"{time.strftime('%H:%M:%S')} [bench +{elapsed:5.0f}s] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(what: str) -> Iterator[None]:
    say(f"{what} ...")
    started = time.monotonic()
    yield
    say(f"{what}: done in {time.monotonic() - started:.1f}s")
