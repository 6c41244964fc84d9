"""``mamori bench --save-scores``: every model's per-row test scores, saved beside the labels for error analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mamori.bench import load_generic, load_test_scores, save_test_scores
from mamori.bench.metrics import score_metrics
from mamori.cli import app
from mamori.errors import ConfigError, SchemaError
from mamori_testing import FLOW_MAPPING, write_flow_table


@pytest.mark.slow
def test_saved_scores_reproduce_the_reported_metrics(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=600, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    out = tmp_path / "out"
    args = ["bench", "generic", "--mapping", str(tmp_path / "bench.toml"), "--institutions", "3", "--alpha", "1.0"]
    args += ["--rounds", "2", "--local-epochs", "1", "--no-local-anomaly", "--hybrid-forest", "--seeds", "0,1"]
    result = CliRunner().invoke(app, [*args, "--save-scores", "--out", str(out)])
    assert result.exit_code == 0, result.output
    runs = json.loads((out / "results-flows.json").read_text(encoding="utf-8"))["runs"]
    for seed, run in zip((0, 1), runs, strict=True):
        assert "test_scores" not in run  # arrays go to the .npz, not the JSON
        saved = load_test_scores(out / f"scores-flows-seed{seed}.npz")
        y = saved["y_test"]
        assert len(saved["category_test"]) == len(y)
        for key, metrics in run["results"].items():
            if "local" in key:
                continue
            again = score_metrics(y, saved[key], metrics["threshold"])
            assert again["tpr_at_1pct_fpr"] == pytest.approx(metrics["tpr_at_1pct_fpr"]), key
            assert again["pr_auc"] == pytest.approx(metrics["pr_auc"]), key
        parts = [saved[f"hybrid/federated: {m} surprise"] for m in ("classifier", "autoencoder", "forest")]
        np.testing.assert_allclose(np.sum(parts, axis=0), saved["hybrid/federated"], rtol=1e-9, atol=1e-9)
    assert "per-row test scores" in result.output


def test_save_refuses_scores_that_do_not_match_the_test_rows(tmp_path: Path) -> None:
    write_flow_table(tmp_path / "flows.csv", n=200, url=False)
    (tmp_path / "bench.toml").write_text(FLOW_MAPPING, encoding="utf-8")
    ds = load_generic(tmp_path / "bench.toml", split_seed=0)
    n = len(ds.y_test)
    with pytest.raises(ConfigError, match=r"'classifier/federated' have shape \(3,\); expected"):
        save_test_scores(tmp_path / "s.npz", ds, {"classifier/federated": np.zeros(3)})
    with pytest.raises(ConfigError, match="clashes"):
        save_test_scores(tmp_path / "s.npz", ds, {"y_test": np.zeros(n)})
    path = save_test_scores(tmp_path / "s.scores", ds, {"classifier/federated": np.arange(n)})
    assert path.name == "s.scores" and load_test_scores(path)["classifier/federated"][-1] == n - 1


def test_load_refuses_a_file_that_is_not_a_whole_scores_file(tmp_path: Path) -> None:
    whole = tmp_path / "scores.npz"
    with whole.open("wb") as fh:
        np.savez_compressed(fh, y_test=np.zeros(1000), **{"hybrid/federated": np.arange(1000.0)})
    cut = tmp_path / "cut.npz"
    cut.write_bytes(whole.read_bytes()[:300])  # a copy broken off: raised zipfile.BadZipFile before
    text = tmp_path / "notes.npz"
    text.write_text("not scores")
    other = tmp_path / "other.npz"
    np.savez(other, weights=np.ones(3))
    for path, why in ((cut, "is not a scores file"), (text, "is not a scores file"), (other, "holds no y_test")):
        with pytest.raises(SchemaError, match=why):
            load_test_scores(path)
