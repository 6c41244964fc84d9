from __future__ import annotations

import pytest

from mamori.simulate import Consortium, SimulationConfig, simulate_consortium


@pytest.fixture(scope="session")
def week() -> Consortium:
    """Five banks, seven days, at 1% of the default customer counts (about 65k events, under a second)."""
    return simulate_consortium(SimulationConfig(banks=5, days=7, seed=1, scale=0.01))
