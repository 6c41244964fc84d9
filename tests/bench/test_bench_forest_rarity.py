"""The federated isolation forest's benign-rarity columns in ``mamori bench``: defaults, the CLI option and a run."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from mamori.bench import BenchConfig, load_generic, run_bench
from mamori.cli import app
from mamori_testing import FLOW_MAPPING, write_flow_table


def test_forest_rarity_defaults_and_bounds() -> None:
    assert BenchConfig().forest_rarity_step("csic") == 0
    assert BenchConfig().forest_rarity_step("nsl-kdd") == 5
    assert BenchConfig(forest_rarity=0).forest_rarity_step("nsl-kdd") == 0
    assert BenchConfig(forest_rarity=3).forest_rarity_step("sms") == 3
    with pytest.raises(ValidationError):
        BenchConfig(forest_rarity=-1)


def test_cli_refuses_a_negative_copy_count() -> None:
    result = CliRunner().invoke(app, ["bench", "nsl-kdd", "--forest-rarity", "-1"])
    assert result.exit_code != 0
    assert "--forest-rarity" in result.output


@pytest.mark.slow
def test_cli_says_which_forest_saw_the_rarity_columns(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    args = ["bench", "generic", "--mapping", str(tmp_path / "bench.toml"), "--institutions", "3", "--alpha", "1.0"]
    args += ["--rounds", "2", "--local-epochs", "1", "--no-references", "--no-local-anomaly", "--hybrid-forest"]
    result = CliRunner().invoke(app, [*args, "--forest-rarity", "3", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "with 3 copies of each one-hot field's benign-rarity column" in " ".join(result.output.split())


@pytest.mark.slow
def test_bench_forest_adds_rarity_columns_of_the_categorical_field(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING + 'log1p = ["bytes_out"]\n', encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    assert any(name.startswith("proto=") for name in ds.feature_names)
    config = BenchConfig(
        institutions=3, alpha=1.0, rounds=2, local_epochs=1, references=False, hybrid_forest=True, forest_rarity=4
    )
    result = run_bench(ds, config)
    assert result["federation"]["isolation_forest"]["rarity_copies"] == 4  # the forest reported alone
    for key in ("isolation_forest/federated", "isolation_forest/pooled, as federated", "hybrid/federated"):
        assert 0.0 <= result["results"][key]["tpr_at_1pct_fpr"] <= 1.0, key
