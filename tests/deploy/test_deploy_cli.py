"""``mamori pki`` end to end through the CLI (no processes started)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from mamori.cli import app
from mamori.deploy import load_members
from mamori.errors import ConfigError

runner = CliRunner()


def test_pki_init_issue_list_revoke(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    r = runner.invoke(app, ["pki", "init", "--dir", str(pki)])
    assert r.exit_code == 0, r.output
    assert (pki / "server.crt").is_file()
    r = runner.invoke(app, ["pki", "issue", "--dir", str(pki), "--node", "bank-a", "--out", str(tmp_path / "keys")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "keys" / "bank-a.key").is_file()
    # a member makes its own pair and hands in only the .pub
    r = runner.invoke(app, ["pki", "issue", "--node", "bank-b", "--out", str(tmp_path / "b"), "--no-register",
                            "--dir", str(pki)])
    assert r.exit_code == 0, r.output
    assert "bank-b" not in load_members(pki)
    r = runner.invoke(app, ["pki", "issue", "--dir", str(pki), "--node", "bank-b", "--public-key",
                            str(tmp_path / "b" / "bank-b.pub")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["pki", "list", "--dir", str(pki)])
    assert r.exit_code == 0 and "bank-a" in r.output and "bank-b" in r.output
    r = runner.invoke(app, ["pki", "revoke", "bank-a", "--dir", str(pki)])
    assert r.exit_code == 0, r.output
    assert load_members(pki)["bank-a"].status == "revoked"
    r = runner.invoke(app, ["pki", "issue", "--dir", str(pki), "--server", "--host", "127.0.0.1"])
    assert r.exit_code == 0, r.output


def test_errors_exit_with_a_message(tmp_path: Path) -> None:
    r = runner.invoke(app, ["pki", "revoke", "nobody", "--dir", str(tmp_path)])
    assert r.exit_code != 0
    r = runner.invoke(app, ["coordinator", "run-round", "--config", str(tmp_path / "missing.toml")])
    assert r.exit_code != 0


def test_pki_list_refuses_a_folder_without_a_pki(tmp_path: Path) -> None:
    # a mistyped --dir listed an empty consortium
    r = runner.invoke(app, ["pki", "list", "--dir", str(tmp_path / "typo")])
    assert r.exit_code != 0
    assert isinstance(r.exception, ConfigError) and "no consortium PKI in" in str(r.exception)
    assert runner.invoke(app, ["pki", "init", "--dir", str(tmp_path / "pki")]).exit_code == 0
    listed = runner.invoke(app, ["pki", "list", "--dir", str(tmp_path / "pki")])  # initialised, no member yet
    assert listed.exit_code == 0 and "name" in listed.output
