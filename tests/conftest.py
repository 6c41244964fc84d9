"""Shared fixtures: where the public datasets and PostgreSQL are, and whether they must be there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

from mamori_testing import REPO_ROOT, data_dir, require_dataset  # noqa: F401  (re-exported)


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
