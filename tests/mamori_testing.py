"""Test helpers shared across test folders (a module with a unique name, not conftest: several folders have one)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The folder of public datasets: $MAMORI_DATA_DIR, else ../shared/data beside the repository."""
    return Path(os.environ.get("MAMORI_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def require_dataset(relative: str) -> Path:
    """Return the dataset's path, or skip (fail under MAMORI_REQUIRE_DATA=1) with a clear reason."""
    path = data_dir() / relative
    if not path.exists():
        reason = f"dataset {relative!r} not found under {data_dir()} (set MAMORI_DATA_DIR)"
        if os.environ.get("MAMORI_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; MAMORI_REQUIRE_DATA=1 makes this a failure")
        pytest.skip(reason)
    return path


@contextlib.contextmanager
def flower_task_identity(node_id: int) -> Iterator[object]:
    """Flower's process-wide task identity set as a SuperLink or SuperNode process has it, restored afterwards."""
    from flwr.supercore.task_identity import TaskIdentity

    saved = {k: vars(TaskIdentity).get(k) for k in ("_task_id", "_run_id", "_node_id")}
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = 1
    TaskIdentity.node_id = node_id
    try:
        yield TaskIdentity
    finally:
        for key, value in saved.items():
            setattr(TaskIdentity, key, value)


#: The ``[bench]`` mapping of :func:`write_flow_table`'s CSV (``flows.csv`` beside the TOML), 30% test rows; a
#: test appends its own column settings (``text``, ``log1p``)
FLOW_MAPPING = """
[bench]
name = "flows"
path = "flows.csv"
label = "verdict"
positive = ["bad"]
category = "attack_type"
categorical = ["proto"]
test_share = 0.3
"""


def write_flow_table(path: Path, n: int = 1500, seed: int = 0, *, url: bool = True) -> None:
    """A made-up labelled flow table for the generic bench adapter: benign flows, two attack types (exfil rare),
    a categorical ``proto`` and, with ``url``, a text column; label ``verdict`` (ok/bad), category ``attack_type``."""
    import numpy as np  # imported here: most test modules that use this file need neither
    import polars as pl

    rng = np.random.default_rng(seed)
    kind = rng.choice(["benign", "scan", "exfil"], size=n, p=[0.7, 0.2, 0.1])
    bytes_out = np.where(kind == "exfil", rng.lognormal(12, 1, n), rng.lognormal(7, 1, n))
    ports = np.where(kind == "scan", rng.integers(1, 60, n), rng.integers(1, 4, n))
    proto = np.where(kind == "scan", rng.choice(["tcp", "udp"], n), "tcp")
    urls = np.where(kind == "exfil", "/upload?blob=" + pl.Series(rng.integers(0, 10**9, n)).cast(str), "/index.html")
    table = pl.DataFrame(
        {
            "bytes_out": bytes_out,
            "distinct_ports": ports,
            "duration": rng.exponential(2.0, n),
            "proto": proto,
            "url": urls,
            "verdict": np.where(kind == "benign", "ok", "bad"),
            "attack_type": kind,
        }
    )
    (table if url else table.drop("url")).write_csv(path)


def write_simulated_members(out: Path, banks: int = 2, seed: int = 7) -> list[Path]:
    """Write a day of simulated traffic per bank (1% scale) as ``<bank_id>.parquet`` in ``out``; return the paths."""
    from mamori.simulate import SimulationConfig, iter_bank_events

    paths = []
    for profile, events in iter_bank_events(SimulationConfig(banks=banks, days=1, scale=0.01, seed=seed)):
        paths.append(out / f"{profile.bank_id}.parquet")
        events.write_parquet(paths[-1])
    return paths
