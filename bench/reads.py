"""Timeline reads: who is asked for (samples of users with and without celebrities
among those they follow), the request lists wrk rotates over, and the second-page
cursors (fetched from the service itself, as a client pages)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
import numpy as np

from bench.graph import Graph

PATH = "/api/v1/timeline"


@dataclass
class Sample:
    name: str
    users: list[int]
    note: str = ""


def samples(graph: Graph, size: int, rng: np.random.Generator) -> dict[str, Sample]:
    """`plain`: users none of whose followees is a celebrity; `celebrity`: users who
    follow at least one; `mixed`: half of each. A kind the graph lacks (no account
    crosses the threshold at a small scale) falls back to all users, with a note."""
    has = graph.follows_celebrity()
    everyone = np.arange(graph.n)
    # The celebrity panel's members and fans are measured on their own (panel()).
    special = graph.fans.copy()
    for users in graph.panel_members.values():
        special[users] = True
    has_, none_ = has & ~special, ~has & ~special

    def draw(pool: np.ndarray, name: str, what: str) -> Sample:
        note = ""
        if len(pool) == 0:
            pool, note = everyone, f"no users {what} at this scale: all users"
        chosen = rng.choice(pool, size=min(size, len(pool)), replace=False)
        return Sample(name, chosen.tolist(), note)

    plain = draw(everyone[none_], "plain", "without celebrities")
    celebrity = draw(everyone[has_], "celebrity", "with celebrities")
    half = max(1, size // 2)
    mixed = Sample("mixed", plain.users[:half] + celebrity.users[:half])
    return {"plain": plain, "celebrity": celebrity, "mixed": mixed}


def panel(graph: Graph, size: int) -> dict[int, Sample]:
    """The users following exactly k celebrities, by k (bench/graph.py's panel)."""
    return {k: Sample(f"celebrities_{k}", users[:size]) for k, users in graph.panel_members.items()}


def first_page_lines(graph: Graph, sample: Sample) -> list[str]:
    return [f"{graph.user_ids[u]}\t{PATH}" for u in sample.users]


async def cursors(base_url: str, graph: Graph, users: list[int]) -> dict[int, str]:
    """Each user's `next_cursor` after page 1 (users whose timeline has one page are
    left out)."""
    found: dict[int, str] = {}
    gate = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:

        async def one(u: int) -> None:
            async with gate:
                response = await client.get(PATH, headers={"X-User-ID": str(graph.user_ids[u])})
                response.raise_for_status()
                cursor = response.json()["next_cursor"]
                if cursor:
                    found[u] = cursor

        await asyncio.gather(*(one(u) for u in users))
    return found


def second_page_lines(graph: Graph, found: dict[int, str]) -> list[str]:
    return [f"{graph.user_ids[u]}\t{PATH}?next_cursor={c}" for u, c in found.items()]


async def pages(base_url: str, graph: Graph, users: list[int], found: dict[int, str] | None = None) -> list[bytes]:
    """The raw bodies of page 1 (or of page 2, with `found` cursors) for `users`."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        bodies = []
        for u in users:
            path = PATH + (f"?next_cursor={found[u]}" if found is not None else "")
            response = await client.get(path, headers={"X-User-ID": str(graph.user_ids[u])})
            response.raise_for_status()
            bodies.append(response.content)
        return bodies
