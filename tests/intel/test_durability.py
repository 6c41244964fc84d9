"""An add acknowledged with 202 survives kill -9 of the server."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from intel_support import TAXII, ServerProcess, make_backend

from mamori.intel import identity, ip_indicator, serialize
from mamori.intel.taxii import add_member, create_collection
from mamori.store import open_store


@pytest.mark.slow
@pytest.mark.parametrize("backend_name", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_acknowledged_objects_survive_kill_9(backend_name: str, tmp_path: Path) -> None:
    # Prepare
    backend = make_backend(backend_name, tmp_path)
    store = open_store(backend.config)
    _, key = add_member(store, "writer", "Bank A", write=["*"], rate_limit=0)
    cid = create_collection(store, "durable").id
    store.close()
    server = ServerProcess(backend.cli_url, "--validation", "library")
    me = identity("Bank A")
    acknowledged: list[list[str]] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        with httpx.Client(timeout=30) as client:
            while not stop.is_set():
                batch = [serialize(ip_indicator(f"10.{n}.{i // 250}.{i % 250}", created_by=me, tlp="green"))
                         for i in range(50)]
                n += 1
                try:
                    resp = client.post(f"{server.base}/mamori/collections/{cid}/objects/",
                                       headers={"Accept": TAXII, "Content-Type": TAXII,
                                                "Authorization": f"Bearer {key}"},
                                       content=json.dumps({"objects": batch}))
                except httpx.HTTPError:
                    return  # the server died mid-request: not acknowledged
                if resp.status_code == 202:
                    acknowledged.append([o["id"] for o in batch])

    # Execute: write continuously, kill -9 in the middle of it
    thread = threading.Thread(target=writer)
    thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    stop.set()
    thread.join(30)
    # Assert: every acknowledged object is in the database; the audit chain is intact
    store = open_store(backend.config)
    try:
        from sqlalchemy import select

        from mamori.store.tables import StixObjectRow

        with store.read() as session:
            stored = set(session.scalars(select(StixObjectRow.object_id).where(StixObjectRow.collection_id == cid)))
        assert len(acknowledged) >= 5
        for batch in acknowledged:
            assert set(batch) <= stored
        assert store.audit.verify().ok
    finally:
        store.close()
        backend.drop()
