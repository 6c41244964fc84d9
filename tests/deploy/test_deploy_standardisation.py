"""Deployment trains on consortium-wide standardised features, and the node scores with the same standardiser."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID

from mamori.deploy import HttpService, NodeConfig, create_registry_app, pull_global_model, seed_local_registry
from mamori.deploy.flowerapp import (
    _member,
    load_member_matrices,
    new_model,
    secure_client_app,
    server_app,
    standardizer_from_json,
)
from mamori.features import Standardizer
from mamori.federation.inprocess import InProcessGrid
from mamori.store import ModelRegistry, open_store
from mamori_testing import flower_task_identity

MODEL = "consortium-attack-classifier"


@pytest.fixture(scope="module")
def task_identity() -> Iterator[None]:
    with flower_task_identity(SUPERLINK_NODE_ID):
        yield


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory, task_identity: None) -> tuple[list[Path], str, Path]:
    """Two members, one secure-aggregation round (the deployment default) on the in-process grid."""
    from mamori.simulate import SimulationConfig, iter_bank_events

    out = tmp_path_factory.mktemp("std")
    paths = []
    for profile, events in iter_bank_events(SimulationConfig(banks=2, days=1, scale=0.01, seed=11)):
        paths.append(out / f"{profile.bank_id}.parquet")
        events.write_parquet(paths[-1])
    url = f"sqlite:///{out / 'coordinator.db'}"
    grid = InProcessGrid(secure_client_app, [31, 32], run_id=1, default_timeout=60)
    for i, node_id in enumerate((31, 32)):
        grid._contexts[node_id].node_config.update(
            {"data-path": str(paths[i]), "node-name": f"bank-{i}", "model-dir": str(out / f"model-{i}")})
    run_config = {"num-rounds": 1, "store-url": url, "hidden": "8", "min-train-nodes": 2, "min-available-nodes": 2,
                  "round-timeout": 60.0, "secure-aggregation": True}
    try:
        server_app(grid, Context(run_id=1, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(),
                                 run_config=run_config))
    finally:
        grid.close()
    return paths, url, out


def _published(url: str) -> tuple[list[np.ndarray], str, int]:
    store = open_store(url)
    try:
        registry = ModelRegistry(store)
        record = registry.list(f"{MODEL}.published")[-1]
        return registry.get(record.sha256).arrays(), str(record.metadata["standardizer"]), record.version
    finally:
        store.close()


def test_members_train_on_the_consortium_standardisation(federated: tuple[list[Path], str, Path]) -> None:
    paths, url, _ = federated
    _, std_json, _ = _published(url)
    scaler = standardizer_from_json(std_json)
    raw = [load_member_matrices(p)[0] for p in paths]
    pooled = np.vstack(raw).astype(np.float64)
    # the securely summed statistics give the pooled rows' mean and standard deviation (up to SecAgg+ quantization)
    central = Standardizer().fit(pooled)
    # SecAgg+ rounds each member's vector stochastically onto its fixed-point grid, and a column with small values
    # has a small sum of squares, so its standard deviation carries a relative error of ~1e-3 that varies run to
    # run (CI once saw 0.2%); 1% of a standard deviation is immaterial to standardisation, checked just below
    np.testing.assert_allclose((scaler.mean_ - central.mean_) / central.scale_, 0.0, atol=5e-3)
    np.testing.assert_allclose(scaler.scale_, central.scale_, rtol=1e-2, atol=1e-4)
    z = (pooled - scaler.mean_) / scaler.scale_  # before clipping: the pooled training rows are mean 0, std 1
    varying = pooled.std(axis=0) > 1e-6
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-2)
    np.testing.assert_allclose(z.std(axis=0)[varying], 1.0, atol=1e-2)
    # and the node's trainer holds exactly the standardised matrix, not the raw one
    for path, X in zip(paths, raw, strict=True):  # noqa: N806
        trainer = _member(str(path), (8,), 1, std_json)
        np.testing.assert_array_equal(trainer.X_train, scaler.transform(X))
        assert not np.allclose(trainer.X_train, X)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_node_scores_the_pulled_model_as_it_was_trained(federated: tuple[list[Path], str, Path],
                                                           tmp_path: Path) -> None:
    from mamori.detect import train_simulated_model
    from mamori.detect.loading import resolve_model
    from mamori.intel.taxii import add_member

    paths, url, _ = federated
    arrays, std_json, version = _published(url)
    store = open_store(url)
    _, key = add_member(store, "bank-a", "bank-a", read=["*"], write=[])
    service = HttpService("registry", create_registry_app(store), "127.0.0.1", _free_port())
    service.start()
    try:
        # the node's scoring bundle (feature spec, threshold) with the same architecture, its own standardiser
        bundle = train_simulated_model(banks=1, days=1, scale=0.005, hidden_layers=(8,), epochs=1).save(
            tmp_path / "node.mamori-model.npz")
        (tmp_path / "key").write_text(key + "\n")
        (tmp_path / "key").chmod(0o600)
        node = NodeConfig(name="bank-a", member="bank-a", api_key_file=tmp_path / "key", model_dir=tmp_path / "m",
                          registry_url=service.url, scoring_bundle=bundle)
        assert seed_local_registry(node)
        pulled = pull_global_model(node, key)
        assert pulled is not None and pulled.new and pulled.version == version
        assert not pull_global_model(node, key).new  # type: ignore[union-attr]
    finally:
        service.stop()
        store.close()
    # what `mamori serve --db <node store> --name <model>` loads
    scoring, registry = resolve_model(None, db=node.resolved_local_store_url, name=node.model_name)
    registry.store.close()  # type: ignore[union-attr]
    X = load_member_matrices(paths[0])[0]  # noqa: N806
    trained = new_model(X.shape[1], (8,), 1)
    trained.set_weights(arrays)
    at_training = trained.decision_function(standardizer_from_json(std_json).transform(X))
    served = scoring.detector().decision_function(scoring.standardizer().transform(X))
    np.testing.assert_allclose(served, at_training, rtol=1e-5, atol=1e-5)
    assert scoring.version == version
