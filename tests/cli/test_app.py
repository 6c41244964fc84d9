import subprocess
import sys

import pytest
from typer.testing import CliRunner

from mamori import __version__
from mamori.cli import app

runner = CliRunner()


def test_version_flag_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_every_command_has_help() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    import typer.main

    group = typer.main.get_command(app)
    for name in group.list_commands(None):  # type: ignore[arg-type]
        sub = runner.invoke(app, [name, "--help"])
        assert sub.exit_code == 0, f"mamori {name} --help failed: {sub.output}"
        assert "Usage" in sub.output


@pytest.mark.parametrize(("flags", "chatter_shown"), [([], False), (["-v"], True)], ids=["default", "-v"])
def test_flowers_per_round_log_lines_reach_the_terminal_only_when_asked(flags: list[str], chatter_shown: bool) -> None:
    # `mamori demo` printed ~270 Flower DEBUG/INFO lines (every SecAgg+ stage of every round) through its progress
    # bars: Flower's logger is at DEBUG with its own handler, and its records also reach the CLI's root handler.
    script = (
        "import logging\n"
        "from mamori.cli import app\n"
        f"app({[*flags, 'version']!r}, standalone_mode=False)\n"
        "from flwr.common.logger import log\n"
        "log(logging.DEBUG, 'Node 1001: starting stage 3...')\n"
        "log(logging.INFO, 'aggregate_fit: received 5 results')\n"
        "log(logging.WARNING, 'flower warning for the operator')\n"
        "log(logging.WARNING, 'fraction_evaluate is set to 0.0. Federated evaluation will be skipped.')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    shown = done.stdout + done.stderr
    assert shown.count("flower warning for the operator") == 1  # by Flower's handler, not repeated by ours
    assert shown.count("aggregate_fit: received 5 results") == int(chatter_shown)
    assert "starting stage 3" not in shown
    # mamori's train-only federations skip evaluation on purpose: Flower's notice only with -v
    assert shown.count("Federated evaluation will be skipped") == int(chatter_shown)
