"""``mamori assess`` end to end on a tiny simulated consortium."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import mamori.cli.cmd_assess  # noqa: F401  (registers the command)
from mamori.cli.app import app
from mamori.detect import train_simulated_model
from mamori.errors import ConfigError, SchemaError
from mamori.simulate import SimulationConfig, iter_bank_events


def test_assess_cli_writes_json_and_html(tmp_path: Path) -> None:
    model = train_simulated_model(banks=1, days=1, scale=0.02, epochs=1, log_format=None, seed=3)
    model_path = model.save(tmp_path / "model.npz")
    _profile, events = next(iter(iter_bank_events(SimulationConfig(banks=1, days=1, scale=0.02, seed=5))))
    events.write_parquet(tmp_path / "events.parquet")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "assess", "--model", str(model_path), "--data", str(tmp_path / "events.parquet"), "--out", str(out),
        "--n-evasion", "10", "--n-hopskipjump", "2", "--no-pdf", "--no-measure-poisoning",
    ])
    assert result.exit_code == 0, result.output
    assert "assessment.pdf not written (--no-pdf)" in result.output
    saved = json.loads((out / "assessment.json").read_text())
    assert saved["evasion"]["n_attacked"] == 10
    assert saved["system_card"]["model"]["sha256"] == model.sha256
    assert (out / "assessment.html").stat().st_size > 10_000
    assert not (out / "assessment.pdf").exists()


def test_assess_cli_rejects_bad_data(tmp_path: Path) -> None:
    model = train_simulated_model(banks=1, days=1, scale=0.01, epochs=1, log_format=None, seed=3)
    model_path = model.save(tmp_path / "model.npz")
    (tmp_path / "x.txt").write_text("nothing")
    result = CliRunner().invoke(app, ["assess", "--model", str(model_path), "--data", str(tmp_path / "x.txt"),
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError)  # mamori.cli.app.main prints it and exits 2
    assert "Parquet" in str(result.exception)
    result = CliRunner().invoke(app, ["assess", "--model", str(model_path), "--data", "sim:zero",
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError)
    assert "sim:BANKS,DAYS,SCALE" in str(result.exception)
    cut = tmp_path / "events.parquet"  # a Parquet file broken off in a copy: polars' ComputeError escaped
    cut.write_bytes(b"PAR1" + b"\x00" * 100)
    result = CliRunner().invoke(app, ["assess", "--model", str(model_path), "--data", str(cut),
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, SchemaError)
    assert "--data: cannot read" in str(result.exception) and "events.parquet" in str(result.exception)


# ---- the one command on the demo consortium's federated model ------------------------------------------------
SECTIONS = ("system_card", "threat_model", "performance", "evasion", "poisoning", "privacy", "explainability",
            "security", "hardening", "findings", "red_team")
#: Leaves named like these are figures: they must be numbers (never text, never NaN / infinity).
FIGURE = re.compile(r"(rate|recall|fpr|tpr|auc|advantage|ece|brier|epsilon|delta|effort|queries|contribution|psi|"
                    r"_sd|margin|change|success|seconds|days_left|span_days|events|attacks|rows|threshold|precision|"
                    r"alerts|median_l2|mean_linf|flagged|flags|trained_on|mean_predicted|bin_low|bin_high)$"
                    r"|^(n|n_[a-z_]+|f1|score|malicious|runs|rounds|round)$")
#: Metrics that are undefined for some slices (a day without attacks has no detection rate): null in the JSON.
MAY_BE_UNDEFINED = re.compile(r"(recall|fpr|tpr|pr_auc|roc_auc|precision|f1|tpr_at_1pct_fpr|margin|median_l2)$")


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _leaves(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


def _key(path: str) -> str:
    return re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]


def _check_figures(saved: dict[str, Any]) -> dict[str, int]:
    """Every figure is a finite number; no number hides in a string; returns figures per section."""
    per_section: dict[str, int] = {}
    for path, value in _leaves(saved):
        key, section = _key(path), path.split(".")[1].split("[")[0]
        if FIGURE.search(key) and not path.startswith(".system_card.config") and not isinstance(value, bool):
            if value is None:
                assert MAY_BE_UNDEFINED.search(key), f"{path} is null"
                continue
            assert isinstance(value, int | float), f"{path} = {value!r} is not a number"
            assert math.isfinite(value), path
            per_section[section] = per_section.get(section, 0) + 1
        elif isinstance(value, str):
            try:
                float(value)
            except ValueError:
                continue
            # a figure written as text; the only numeric-looking texts allowed are identifiers
            assert re.search(r"(sha256|hash|id|day|version)$", key), f"{path} = {value!r} is a number stored as text"
    return per_section


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mamori.compare import ComparisonConfig, DemoConfig, run_demo

    out = tmp_path_factory.mktemp("demo")
    run_demo(DemoConfig(banks=3, days=3, test_days=1, seed=3, scale=0.02,
                        comparison=ComparisonConfig(rounds=2, max_benign_train=5_000, hidden=(16,), seed=3)), out)
    return out


def test_assess_demo_in_one_command_fills_every_section(demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "assessment"
    result = CliRunner().invoke(app, ["assess", "--demo", str(demo_dir), "--out", str(out), "--quick", "--harden"])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "assessment.json").read_text())

    figures = _check_figures(saved)
    for section in SECTIONS:
        assert saved[section], f"section {section} is empty"
        if section not in ("threat_model", "findings"):  # text by nature
            assert figures.get(section, 0) >= 3, f"section {section} has {figures.get(section, 0)} figures"
    card = saved["system_card"]
    assert card["federation"]["secure_aggregation"] is True and card["federation"]["rounds"] == 2
    assert [r["round"] for r in card["registry"]["rounds"]] == [0, 1, 2]  # global-model hash per round
    assert all(m["trained_on"] > 0 for m in card["members"]) and len(card["members"]) == 3
    perf = saved["performance"]
    assert perf["judged_on"] == "events the model did not train on" and perf["thresholds"] == "each member's own"
    assert perf["calibration"]["bins"] and perf["by_family"] and len(perf["by_member"]) == 3
    drift = perf["drift"]
    assert drift["training_window"]["definition"] == "the days the model trained on"
    assert drift["training_window"]["events"] > 0 and drift["latest_window"]["events"] > 0
    assert "benign_score_psi" in drift and drift["feature_shift"]
    # poisoning and privacy were measured, not read from files
    assert saved["poisoning"]["source"].startswith("measured")
    assert {r["mode"] for r in saved["poisoning"]["rows"]} == {"fedavg", "robust"}
    privacy = saved["privacy"]
    assert privacy["membership_status"] == "measured" and set(privacy["membership"]["attacks"]) == {"loss", "art"}
    assert privacy["ledger_state"] == "empty"  # the demo trains without DP: the report says so
    security = saved["security"]
    assert security["audit_log"]["ok"] is True and security["audit_log"]["rows"] >= 3
    assert security["pki"]["configured"] is False  # the in-process demo has no PKI: reported, and a finding
    assert any(f["title"].startswith("No PKI evidence") for f in saved["findings"])
    assert saved["explainability"]["global"] and saved["explainability"]["samples"]
    assert saved["hardening"]["after"]["evasion"]
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    assert [order[f["severity"]] for f in saved["findings"]] == sorted(order[f["severity"]] for f in saved["findings"])
    assert all(f["remediation"] for f in saved["findings"])
    # the red-team record in the AISI guide's three parts, every step with its command and times
    red = saved["red_team"]
    assert red["planning"]["objectives"] and red["reporting"]["findings"] == len(saved["findings"])
    steps = {s["step"]: s for s in red["execution"]["steps"]}
    assert {"performance", "black-box decision attack", "gradient (domain-constrained)", "domain-constrained mimicry",
            "poisoning", "membership inference", "security controls", "hardening"} <= set(steps)
    assert all(s["command"].startswith("mamori assess --demo") and s["started"] <= s["at"] for s in steps.values())
    html = (out / "assessment.html").read_text()
    assert "Not assessed in this run" not in html.split("<h2>7.")[0]  # sections 1-6 are all measured


def test_assess_rejects_demo_with_model(demo_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["assess", "--demo", str(demo_dir), "--data", "sim:2,2,0.01",
                                      "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError) and "--demo" in str(result.exception)
    result = CliRunner().invoke(app, ["assess", "--demo", str(tmp_path), "--out", str(tmp_path / "o")])
    assert isinstance(result.exception, ConfigError) and "results.json" in str(result.exception)
