from __future__ import annotations

from collections.abc import Iterator

import pytest
from intel_support import ServerProcess, World, make_backend

from mamori.intel.taxii import add_member, create_collection, revoke_member
from mamori.store import open_store


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    backend = make_backend(request.param, tmp_path_factory.mktemp("intel"))
    store = open_store(backend.config)
    keys = {}
    for name, org, read, write, rate, admin in [
        ("alice", "Bank A", ["*"], ["*"], 0, False),
        ("alice2", "Bank A", ["*"], [], 0, False),
        ("bob", "Bank B", ["*"], ["*"], 0, False),
        ("carol", "Bank C", ["public"], [], 0, False),
        ("admin", "Consortium", ["*"], ["*"], 0, True),
        ("revokee", "Bank D", ["*"], ["*"], 0, False),
        ("limited", "Bank E", ["*"], [], 5, False),
    ]:
        _, keys[name] = add_member(store, name, org, read=read, write=write, rate_limit=rate, admin=admin)
    shared = create_collection(store, "Shared indicators", alias="shared").id
    public = create_collection(store, "Public", alias="public").id
    server = ServerProcess(backend.cli_url)
    w = World(backend, store, server, keys, shared, public)
    revoke_member(store, "revokee")
    yield w
    server.stop()
    store.close()
    backend.drop()
