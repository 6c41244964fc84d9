"""Fixtures of hand-built events for the feature tests."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from toy_events import toy_bank  # noqa: E402


@pytest.fixture(scope="session")
def bank_events() -> pl.DataFrame:
    return toy_bank(n_sessions=150, n_users=40, seed=0)
