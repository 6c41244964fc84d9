"""The coordinator's HTTP services and the node's pull/push against them, on 127.0.0.1 (no Flower)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from mamori.deploy import (
    HttpService,
    NodeConfig,
    Schedule,
    create_registry_app,
    pull_global_model,
    push_sightings,
    seed_local_registry,
)
from mamori.errors import ConfigError, IntelError
from mamori.store import ModelRegistry, Store, open_store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_schedule_is_due_one_interval_after_the_previous_run_ended() -> None:
    now = {"t": 100.0}
    schedule = Schedule(3.0, clock=lambda: now["t"])
    assert not schedule.due()
    now["t"] = 103.0
    assert schedule.due()
    now["t"] = 160.0  # the run took 57 s
    schedule.done()
    assert not schedule.due()
    now["t"] = 163.0
    assert schedule.due()
    assert not Schedule(0.0, clock=lambda: 1e9).due()  # 0 = only `coordinator run-round`


@pytest.fixture
def coordinator_store(tmp_path: Path) -> Iterator[tuple[Store, dict[str, str]]]:
    from mamori.intel.taxii import add_member, create_collection

    store = open_store(f"sqlite:///{tmp_path / 'coordinator.db'}")
    create_collection(store, "Sightings", alias="sightings")
    keys = {}
    for name in ("bank-a", "bank-b"):
        _, keys[name] = add_member(store, name, name, read=["*"], write=["sightings"])
    yield store, keys
    store.close()


@pytest.fixture
def registry_service(coordinator_store: tuple[Store, dict[str, str]]) -> Iterator[HttpService]:
    service = HttpService("registry", create_registry_app(coordinator_store[0]), "127.0.0.1", _free_port())
    service.start()
    yield service
    service.stop()


def _node(tmp_path: Path, **kw: object) -> NodeConfig:
    (tmp_path / "key").write_text(kw.pop("key", "x") + "\n")  # type: ignore[operator]
    (tmp_path / "key").chmod(0o600)
    return NodeConfig(name="bank-a", member="bank-a", api_key_file=tmp_path / "key", model_dir=tmp_path / "model",
                      **kw)  # type: ignore[arg-type]


def test_nodes_pull_only_published_models_with_their_member_key(
    tmp_path: Path, coordinator_store: tuple[Store, dict[str, str]], registry_service: HttpService
) -> None:
    store, keys = coordinator_store
    node = _node(tmp_path, key=keys["bank-a"], registry_url=registry_service.url)
    url = f"{registry_service.url}/v1/models/{node.model_name}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("bank-a", "mamori_wrong"), timeout=10).status_code == 401
    # a round checkpoint of a run in progress is not served; only the run's published model
    registry = ModelRegistry(store)
    registry.register(node.model_name, 1, [np.ones((2, 2), dtype=np.float32)])
    assert pull_global_model(node, keys["bank-a"]) is None
    weights = [np.full((2, 2), 0.5, dtype=np.float32), np.zeros(2, dtype=np.float32)]
    digest = registry.register(f"{node.model_name}.published", 2, weights)

    got = pull_global_model(node, keys["bank-a"])
    assert got is not None and got.new and (got.version, got.sha256) == (2, digest)
    again = pull_global_model(node, keys["bank-a"])
    assert again is not None and not again.new
    with open_store(node.resolved_local_store_url) as local:
        pulled = ModelRegistry(local).get("latest", name=node.model_name)
        assert pulled.record.version == 2 and pulled.record.sha256 == digest
        np.testing.assert_array_equal(pulled.arrays()[0], weights[0])
    with pytest.raises(IntelError, match="API key refused"):
        pull_global_model(node, "mamori_wrong")


def test_seeding_the_local_registry_with_the_scoring_bundle(tmp_path: Path, tiny_bundle: Path) -> None:
    node = _node(tmp_path, scoring_bundle=tiny_bundle)
    assert seed_local_registry(node) is True
    assert seed_local_registry(node) is False  # never over a registry that has models
    with open_store(node.resolved_local_store_url) as local:
        rec = ModelRegistry(local).list(node.model_name)
        assert [(r.version, r.fmt) for r in rec] == [(0, "bytes")]


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    from mamori.detect import train_simulated_model

    return train_simulated_model(banks=1, days=1, scale=0.005, hidden_layers=(8,), epochs=1).save(
        tmp_path / "tiny.mamori-model.npz")


def test_sightings_pushed_by_one_member_are_read_by_another(
    tmp_path: Path, coordinator_store: tuple[Store, dict[str, str]]
) -> None:
    from mamori.detect import Alert
    from mamori.intel import TaxiiClient
    from mamori.intel.taxii import TaxiiConfig, create_app

    store, keys = coordinator_store
    taxii = HttpService("taxii", create_app(store, TaxiiConfig(validation="library")), "127.0.0.1", _free_port())
    taxii.start()
    try:
        alerts = tmp_path / "alerts.jsonl"
        alert = Alert(id="a1", timestamp="2026-01-02T03:04:05Z",
                      entity={"kind": "source.ip", "value": "198.51.100.7", "source.ip": "198.51.100.7",
                              "user.name": "customer-42"},
                      score=4.2, threshold=1.0, family="credential-stuffing", family_similarity=0.9,
                      top_features=[], indicators=[], request={"url.path": "/login"},
                      model={"name": "m", "version": 1, "sha256": "00"}, count=7)
        alerts.write_text(alert.to_json() + "\n" + '{"partial": ')  # the service is still writing a line
        node = _node(tmp_path, key=keys["bank-a"], taxii_url=f"{taxii.url}/taxii2/", alerts_path=alerts)
        assert push_sightings(node, keys["bank-a"]) == 1
        assert push_sightings(node, keys["bank-a"]) == 0  # nothing new (the partial line waits)
        objects = TaxiiClient(f"{taxii.url}/taxii2/", "bank-b", keys["bank-b"]).pull("sightings")
        sightings = [o for o in objects if o["type"] == "sighting"]
        assert len(sightings) == 1 and sightings[0]["count"] == 7
        assert "customer-42" not in str(objects)  # no customer identifier leaves the node
        alerts.write_text(alert.to_json() + "\nnot json\n")
        (tmp_path / "model" / "sightings.offset").write_text("0")
        with pytest.raises(IntelError, match="line 2"):
            push_sightings(node, keys["bank-a"])
    finally:
        taxii.stop()


def test_node_services_need_a_member_key(tmp_path: Path) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="api_key_file"):
        NodeConfig(registry_url="http://127.0.0.1:1")
    with pytest.raises(ValidationError, match="alerts_path"):
        NodeConfig(taxii_url="http://127.0.0.1:1/taxii2/", member="m", api_key_file=tmp_path / "k")
    from mamori.deploy import read_api_key

    with pytest.raises(ConfigError, match="cannot read"):
        read_api_key(tmp_path / "missing")


def test_a_taken_port_is_a_clear_error(coordinator_store: tuple[Store, dict[str, str]]) -> None:
    from mamori.errors import FederationError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = HttpService("registry", create_registry_app(coordinator_store[0]), "127.0.0.1", s.getsockname()[1])
        with pytest.raises(FederationError, match="registry service did not start"):
            busy.start(timeout_s=10)
        busy.stop()
