"""The deployment's lr_schedule / lr_floor / tail_average: consortium.toml -> the app's run config -> the members'
learning-rate factor per round and the published model as the mean of the last rounds' checkpoints."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.app import Context, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from pydantic import ValidationError

from mamori.deploy import ConsortiumConfig
from mamori.deploy.flowerapp import client_app, secure_client_app, server_app
from mamori.deploy.runtime import write_app_dir
from mamori.federation import EstimatorTrainer, lr_factor, weights_hash
from mamori.federation.inprocess import InProcessGrid
from mamori.store import ModelRegistry, open_store
from mamori_testing import flower_task_identity, write_simulated_members

MODEL = "consortium-attack-classifier"


def test_consortium_toml_options_reach_the_apps_run_config(tmp_path: Path) -> None:
    # Prepare
    cfg = ConsortiumConfig.model_validate(
        {
            "coordinator": {"state_dir": tmp_path / "state"},
            "federation": {"num_rounds": 8, "lr_schedule": "cosine", "lr_floor": 0.5, "tail_average": 3},
        }
    )
    # Execute
    run_config = tomllib.loads((write_app_dir(cfg) / "pyproject.toml").read_text())["tool"]["flwr"]["app"]["config"]
    # Assert
    assert (run_config["lr-schedule"], run_config["lr-floor"], run_config["tail-average"]) == ("cosine", 0.5, 3)
    assert ConsortiumConfig().federation.lr_schedule == "constant"


@pytest.mark.parametrize(
    ("federation", "message"),
    [
        ({"num_rounds": 3, "tail_average": 4}, "tail_average=4 exceeds num_rounds=3"),
        ({"lr_floor": 0.5}, "lr_floor=0.5 has no effect"),
        ({"lr_schedule": "cosine", "lr_floor": 0.0}, "lr_floor"),
    ],
)
def test_consortium_toml_rejects_bad_schedule_settings(federation: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ConsortiumConfig.model_validate({"federation": federation})


@pytest.fixture(scope="module")
def member_files(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_simulated_members(tmp_path_factory.mktemp("members"))


@pytest.fixture()
def task_identity() -> Iterator[None]:
    with flower_task_identity(SUPERLINK_NODE_ID):
        yield


@pytest.mark.slow
@pytest.mark.parametrize("secure", [False, True], ids=["plain", "secagg+"])
def test_members_get_the_factor_and_the_published_model_is_the_tail_mean(
    secure: bool, member_files: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, task_identity: None
) -> None:
    # Prepare: record the train config every member's trainer sees
    seen: list[tuple[int, float | None]] = []
    fit = EstimatorTrainer.fit

    def spy(self: EstimatorTrainer, arrays: list[np.ndarray], config: Mapping[str, Any]) -> Any:
        seen.append((int(config["server_round"]), config.get("lr_factor")))
        return fit(self, arrays, config)

    monkeypatch.setattr(EstimatorTrainer, "fit", spy)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    node_ids = [11, 12]
    grid = InProcessGrid(secure_client_app if secure else client_app, node_ids, run_id=1, default_timeout=60)
    for i, node_id in enumerate(node_ids):
        grid._contexts[node_id].node_config.update(
            {"data-path": str(member_files[i]), "node-name": f"bank-{i}", "model-dir": str(tmp_path / f"model-{i}")}
        )
    run_config = {
        "num-rounds": 3,
        "store-url": url,
        "hidden": "8",
        "min-train-nodes": 2,
        "min-available-nodes": 2,
        "round-timeout": 60.0,
        "secure-aggregation": secure,
        "fraction-evaluate": 0.0,
        "min-evaluate-nodes": 0,
        "lr-schedule": "linear",
        "lr-floor": 0.5,
        "tail-average": 2,
    }
    context = Context(run_id=1, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config=run_config)
    # Execute
    try:
        server_app(grid, context)
    finally:
        grid.close()
    # Assert: each member trained rounds 1..3 with factors 1, 0.75, 0.5
    assert sorted(seen) == sorted((r, lr_factor("linear", r, 3, 0.5)) for r in (1, 2, 3) for _ in node_ids)
    store = open_store(url)
    registry = ModelRegistry(store)
    checkpoints = {r.version: registry.get(r.sha256, name=MODEL).arrays() for r in registry.list(MODEL)}
    published = registry.get("latest", name=f"{MODEL}.published")
    expected = [
        ((a.astype(np.float64) + b) / 2).astype(a.dtype) for a, b in zip(checkpoints[2], checkpoints[3], strict=True)
    ]
    for got, want in zip(published.arrays(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    meta = published.record.metadata
    assert meta["tail_average"] == 2 and meta["averaged_rounds"] == [2, 3]
    assert meta["federation_sha256"] == weights_hash(published.arrays())
    assert meta["checkpoint_sha256"] == registry.list(MODEL)[-1].sha256
    store.close()
