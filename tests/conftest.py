"""Shared fixtures: where the public datasets and PostgreSQL are, and whether they must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

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


@pytest.fixture
def shared_data() -> Path:
    """The public datasets folder; skips (or fails in CI) when absent."""
    return require_dataset("")


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL URL for store tests; skips when MAMORI_TEST_POSTGRES_URL is unset."""
    url = os.environ.get("MAMORI_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("MAMORI_TEST_POSTGRES_URL is not set; PostgreSQL tests run in CI (.ci/run sets it)")
    return url
