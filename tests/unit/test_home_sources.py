"""How a group of rebuilds is cut into statements (users/services/graph_reads.py)."""

from __future__ import annotations

import uuid

from users.services.graph_reads import _by_authors


def test_a_group_of_homes_is_read_in_statements_of_bounded_authors_in_order() -> None:
    homes = [(uuid.uuid4(), [uuid.uuid4() for _ in range(n)]) for n in (3, 3, 3, 10, 1, 0)]
    runs = list(_by_authors(homes, 6))
    assert [[len(authors) for _, authors in run] for run in runs] == [[3, 3], [3], [10], [1, 0]]
    assert [home for run in runs for home in run] == homes  # every home once, in order
