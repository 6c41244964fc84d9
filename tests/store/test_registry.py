from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sqlalchemy import update

from mamori.errors import StoreError
from mamori.store import Store, arrays_to_bytes, bytes_to_arrays
from mamori.store.tables import ModelBlobRow


def _weights(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3), np.arange(5, dtype=np.int64)]


def test_arrays_round_trip_and_are_deterministic() -> None:
    w = _weights(0)
    assert arrays_to_bytes(w) == arrays_to_bytes([a.copy() for a in w])
    back = bytes_to_arrays(arrays_to_bytes(w))
    for a, b in zip(w, back, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_corrupt_blob_raises_store_error() -> None:
    with pytest.raises(StoreError, match="corrupt"):
        bytes_to_arrays(arrays_to_bytes(_weights(0))[:-7])
    with pytest.raises(StoreError, match="MAMORIW1"):
        bytes_to_arrays(b"nope")


def test_register_get_list(store: Store) -> None:
    reg = store.models
    h1 = reg.register("fedavg", 1, _weights(1), {"accuracy": np.float32(0.5)})
    h2 = reg.register("fedavg", 2, _weights(2), {"accuracy": 0.9})
    h3 = reg.register("other", 7, b"raw-bytes")
    assert h3 == hashlib.sha256(b"raw-bytes").hexdigest()
    latest = reg.get("latest", name="fedavg")
    assert latest.record.sha256 == h2 and latest.record.version == 2
    assert latest.record.metadata == {"accuracy": 0.9}
    np.testing.assert_array_equal(latest.arrays()[0], _weights(2)[0])
    assert reg.get(h1[:10]).record.version == 1
    assert reg.get("latest").record.name == "other"  # newest registration of any model
    assert [r.version for r in reg.list("fedavg")] == [1, 2]
    assert len(reg.list()) == 3
    with pytest.raises(StoreError, match="raw bytes"):
        reg.get(h3).arrays()
    actions = [e.action for e in store.audit.entries()]
    assert actions == ["model.register"] * 3
    assert store.audit.verify().ok


def test_same_weights_twice_share_one_blob(store: Store) -> None:
    a = store.models.register("m", 1, _weights(3))
    b = store.models.register("m", 2, _weights(3))
    assert a == b
    assert [r.version for r in store.models.list()] == [1, 2]
    assert store.models.get(a).record.version == 2


def test_get_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="no model registered"):
        store.models.get()
    with pytest.raises(StoreError, match="hex sha256"):
        store.models.get("xyz")
    with pytest.raises(StoreError, match="no model with"):
        store.models.get("deadbeef")
    with pytest.raises(StoreError, match="JSON"):
        store.models.register("m", 1, b"x", {"bad": object()} | {"k": {1, 2}})


def test_tampered_weights_are_detected(store: Store) -> None:
    h = store.models.register("m", 1, b"original")
    with store.write() as s:
        s.execute(update(ModelBlobRow).where(ModelBlobRow.sha256 == h).values(data=b"evil"))
    with pytest.raises(StoreError, match="do not match"):
        store.models.get(h)


def test_concurrent_registrations_of_equal_weights(store: Store) -> None:
    import threading

    errors: list[Exception] = []

    def work(version: int) -> None:
        try:
            store.models.register("m", version, _weights(9))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(v,)) for v in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.sha256 for r in store.models.list()}) == 1 and len(store.models.list()) == 6
