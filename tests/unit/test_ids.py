import uuid

from colonnade.kernel.ids import new_id


def test_identifiers_are_version_7_uuids_that_sort_by_creation() -> None:
    ids = [new_id() for _ in range(2000)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert len(set(ids)) == len(ids)
    # Within one millisecond the random tail decides, so compare the time prefix only.
    prefixes = [i[:13] for i in ids]
    assert prefixes == sorted(prefixes)
