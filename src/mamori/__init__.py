"""mamori: federated threat intelligence for financial institutions."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mamori")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
