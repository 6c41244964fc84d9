"""The ``mamori`` command: thin edges over the packages below.

Each command group lives in a module ``cmd_<name>.py`` that adds its commands to :data:`app`.
"""

from mamori.cli.app import app, main, register_commands

register_commands()

__all__ = ["app", "main"]
