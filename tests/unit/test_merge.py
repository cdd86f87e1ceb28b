import uuid

from timeline.domain.merge import merge_newest_first
from shared_schemas.ids import new_id


def test_merge_is_newest_first_without_duplicates() -> None:
    ids = sorted((new_id().bytes for _ in range(10)), reverse=True)
    home = ids[0::2] + [ids[3]]
    home.sort(reverse=True)
    celebrity = ids[1::2]
    assert merge_newest_first([home, celebrity], 10) == ids


def test_merge_stops_at_count() -> None:
    ids = sorted((uuid.uuid4().bytes for _ in range(6)), reverse=True)
    assert merge_newest_first([ids[:3], ids[3:]], 4) == ids[:4]
