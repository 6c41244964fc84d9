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
