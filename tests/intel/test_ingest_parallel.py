"""Large envelopes validated by the server's worker processes: same objects, same order, same failures."""

from __future__ import annotations

import json
import uuid

import pytest

from mamori.intel import identity, ip_indicator, serialize
from mamori.intel.taxii import BadRequestError, TaxiiConfig, ingest


def _indicators(n: int) -> list[dict]:
    me = identity("Bank A")
    return [serialize(ip_indicator(f"198.51.{i // 250}.{i % 250 + 1}", created_by=me, tlp="amber"))
            for i in range(n)]


@pytest.fixture(scope="module")
def workers() -> int:
    running = ingest.start_validation_pool(TaxiiConfig(), workers=2)
    assert running == 2
    return running


def test_a_large_envelope_gives_the_same_objects_in_order(workers: int) -> None:
    objects = _indicators(ingest.PARALLEL_MIN_OBJECTS + 101)
    body = json.dumps({"objects": objects}).encode()

    parallel = ingest.parse_envelope(body, TaxiiConfig())
    serial, failures = ingest._check_chunk(objects, 0, TaxiiConfig())

    assert failures == []
    assert [o.object_id for o in parallel] == [o["id"] for o in objects]
    assert parallel == serial


def test_failures_in_every_chunk_are_reported_with_their_envelope_index(workers: int) -> None:
    objects = _indicators(ingest.PARALLEL_MIN_OBJECTS + 50)
    last = len(objects) - 1
    objects[3] = dict(objects[3], pattern="[ipv4-addr:value = ]")
    objects[last] = dict(objects[last], id="indicator--not-a-uuid")
    objects[150] = {"hello": str(uuid.uuid4())}

    with pytest.raises(BadRequestError) as info:
        ingest.parse_envelope(json.dumps({"objects": objects}).encode(), TaxiiConfig())

    details = info.value.details
    assert details["failure_count"] == 3
    assert [f["index"] for f in details["failures"]] == [3, 150, last]
    assert details["failures"][2]["id"] == "indicator--not-a-uuid"
