import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mamori import __version__
from mamori.cli import app
from mamori.cli.app import option_errors
from mamori.cli.cmd_bench import _parse_seeds
from mamori.errors import ConfigError

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


def _mamori(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``mamori`` console script's entry point as a user's shell would (its error handler included)."""
    script = f"import sys\nfrom mamori.cli import main\nsys.argv = ['mamori', *{list(args)!r}]\nmain()\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_error_messages_show_square_brackets_as_written(tmp_path: Path) -> None:
    # rich read "[bench]" in "has no [bench] table" as markup and printed "has no  table"
    mapping = tmp_path / "flows.toml"
    mapping.write_text('name = "flows"\npath = "flows.csv"\n')
    done = _mamori("bench", "generic", "--mapping", str(mapping))
    assert done.returncode == 2
    assert "has no [bench] table" in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0,1,2", [0, 1, 2]), (" 3 , 4,", [3, 4]), ("-1", [-1])],
)
def test_bench_seeds_parse_whole_numbers(text: str, expected: list[int]) -> None:
    assert _parse_seeds(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [("0,x", "'x' is not a whole number"), ("0,1.5", "'1.5' is not a whole number"), ("1,0,1", "seed 1 is given twice"),
     (",", "no seed given"), ("", "no seed given")],
)
def test_bench_seeds_refuse_what_is_not_a_list_of_distinct_whole_numbers(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _parse_seeds(text)


def test_a_bad_seeds_option_is_an_error_line_not_a_traceback(tmp_path: Path) -> None:
    done = _mamori("bench", "nsl-kdd", "--seeds", "0,x", "--data-dir", str(tmp_path))
    assert done.returncode == 2
    assert "--seeds '0,x': 'x' is not a whole number" in done.stderr.replace("\n", " ")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("args", "said_first"), [
    (["simulate", "--banks", "0", "--out", "unused"], "mamori simulate: invalid option: --banks 0: "),
    # analytics run simulated first and then died on a raw ValidationError traceback
    (["analytics", "run", "--banks", "0"], "analytics run: invalid option: --banks 0: "),
], ids=["simulate", "analytics"])
def test_refused_options_are_named_with_the_value_given_in_one_line(args: list[str], said_first: str) -> None:
    # the CLI printed pydantic's multi-line report ("1 validation error for SimulationConfig ... errors.pydantic.dev")
    done = _mamori(*args)
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert said_first + "Input should be greater than or equal to 1" in said
    assert "pydantic.dev" not in said and "Traceback" not in said


def test_option_errors_names_each_refused_field_as_its_option() -> None:
    from pydantic import BaseModel, Field, ValidationError

    class _Settings(BaseModel):
        max_body_bytes: int = Field(2048, ge=1024)
        banks: int = Field(1, ge=1)

    with pytest.raises(ValidationError) as caught:
        _Settings(max_body_bytes=5, banks=0)
    said = option_errors(caught.value)
    assert said.startswith("--max-body-bytes 5: Input should be greater than or equal to 1024; --banks 0: ")
    assert option_errors(ValueError("plain reason")) == "plain reason"


def test_a_path_that_cannot_be_created_is_an_error_line_not_a_traceback(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    done = _mamori("pki", "init", "--dir", str(blocker / "pki"))
    assert done.returncode == 2
    said = " ".join(done.stderr.split())
    assert "error: Not a directory" in said and str(blocker) in said
    assert "Traceback" not in done.stderr
