"""Fixtures of the detect tests: a tiny trained scoring model, simulated events, a live server on a free port."""

from __future__ import annotations

import polars as pl
import pytest

from mamori.detect import ScoringModel, train_simulated_model
from mamori.simulate import SimulationConfig, iter_bank_events


@pytest.fixture(scope="session")
def tiny_model() -> ScoringModel:
    """A small classifier trained on one simulated bank-day of full canonical events (seconds)."""
    return train_simulated_model(banks=1, days=1, scale=0.02, epochs=1, log_format=None, seed=3)


@pytest.fixture(scope="session")
def nginx_model() -> ScoringModel:
    """The same on what nginx logs keep of each event."""
    return train_simulated_model(banks=1, days=1, scale=0.02, epochs=1, log_format="nginx", seed=3)


@pytest.fixture(scope="session")
def sim_events() -> pl.DataFrame:
    """One simulated bank-day (another seed than the model's), with labels."""
    _profile, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=1, scale=0.02, seed=11))))
    return events
