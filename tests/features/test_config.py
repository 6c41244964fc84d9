from __future__ import annotations

import pydantic
import pytest

from mamori.features import FeatureConfig


def test_config_is_frozen_and_strict() -> None:
    config = FeatureConfig()
    with pytest.raises(pydantic.ValidationError):
        config.short_window = "1m"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        FeatureConfig(shortwindow="1m")  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        FeatureConfig(long_window="an hour")
    assert FeatureConfig().window_seconds("5m") == 300.0
