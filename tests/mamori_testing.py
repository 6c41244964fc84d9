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
