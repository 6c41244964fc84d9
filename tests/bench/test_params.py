"""Per-parameter request profiles: a new parameter name or an unusual character lights up its own column."""

from __future__ import annotations

import numpy as np
import pytest

from mamori.bench.params import PARAM_CLASSES, param_profile, param_profile_names
from mamori.errors import ConfigError


def _columns(row: np.ndarray) -> set[str]:
    names = param_profile_names()
    return {names[j] for j in np.flatnonzero(row)}


def test_profile_width_matches_names_and_get_equals_post() -> None:
    X = param_profile(["login=ana&pwd=x1", None], [None, "login=ana&pwd=x1"])
    assert X.shape == (2, len(param_profile_names()))
    assert np.array_equal(X[0], X[1])  # the same parameters in the query or the body: the same row


def test_a_quote_in_a_field_sets_only_that_fields_quote_flag() -> None:
    normal, attack = param_profile(["id=3&nombre=vino", "id=3&nombre=vino'--"], [None, None])
    new = _columns(attack) - _columns(normal)
    assert {c.rsplit("_", 1)[-1] for c in new} <= {"quote", "dash"} and any(c.endswith("_quote") for c in new)
    assert "quote" in PARAM_CLASSES


def test_a_parameter_name_nobody_sends_lands_in_its_own_bucket() -> None:
    normal, odd = param_profile(["modo=entrar&b1=entrar", "modo=entrar&b1a=entrar"], [None, None])
    assert _columns(odd) != _columns(normal)
    assert sum(c.endswith("_present") for c in _columns(odd)) == 2


def test_bad_input_is_named() -> None:
    with pytest.raises(ConfigError, match="param_profile"):
        param_profile(["a=1"], [])
    with pytest.raises(ConfigError, match="buckets"):
        param_profile(["a=1"], [None], buckets=0)
