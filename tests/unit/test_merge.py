import uuid

from shared_schemas.ids import new_id
from timeline.domain.merge import merge_newest_first, merge_window


def test_merge_is_newest_first_without_duplicates() -> None:
    ids = sorted((new_id().bytes for _ in range(10)), reverse=True)
    home = [*ids[0::2], ids[3]]
    home.sort(reverse=True)
    celebrity = ids[1::2]
    assert merge_newest_first([home, celebrity], 10) == ids


def test_merge_stops_at_count() -> None:
    ids = sorted((uuid.uuid4().bytes for _ in range(6)), reverse=True)
    assert merge_newest_first([ids[:3], ids[3:]], 4) == ids[:4]


def _desc(n: int) -> list[bytes]:
    return sorted((new_id().bytes for _ in range(n)), reverse=True)


def test_a_window_that_ends_early_hides_nothing_below_it() -> None:
    ids = _desc(10)
    home = ids[0::2]  # complete for the whole range
    celebrity = [ids[1], ids[3]]  # a full list: its older tweets are not cached
    kept, go_on = merge_window([(home, False), (celebrity, True)], 6)
    assert kept == ids[:3]  # nothing below the celebrity list's end
    assert go_on


def test_a_complete_merge_needs_no_source() -> None:
    ids = _desc(6)
    kept, go_on = merge_window([(ids[0::2], False), (ids[1::2], False)], 4)
    assert kept == ids[:4] and not go_on


def test_a_full_list_with_nothing_below_the_cursor_defers_everything() -> None:
    assert merge_window([(_desc(3), False), ([], True)], 4) == ([], True)


def test_a_full_list_that_fills_the_page_is_trusted() -> None:
    ids = _desc(5)
    assert merge_window([(ids, True)], 5) == (ids, False)


def test_one_list_is_its_own_merge_up_to_count() -> None:
    ids = _desc(5)
    assert merge_newest_first([ids], 3) == ids[:3]
    assert merge_newest_first(iter([ids]), 9) == ids  # any iterable of lists, not only a list
    assert merge_newest_first([], 3) == []
