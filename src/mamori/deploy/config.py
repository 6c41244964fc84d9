"""``consortium.toml`` (the coordinator) and ``node.toml`` (a member) as frozen pydantic models.

Relative paths in a file are resolved against the file's directory by :func:`load_consortium_config`
and :func:`load_node_config`. Every option has a default, so an empty file is valid.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mamori.errors import ConfigError

__all__ = [
    "ConsortiumConfig",
    "CoordinatorSection",
    "FederationSection",
    "NodeConfig",
    "ScheduleSection",
    "load_consortium_config",
    "load_node_config",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class CoordinatorSection(BaseModel):
    """``[coordinator]``: where the SuperLink listens and where its state lives."""

    model_config = _FROZEN

    host: str = "127.0.0.1"
    port: int = Field(default=9093, ge=1, le=65535)
    state_dir: Path = Path("coordinator-state")
    pki_dir: Path = Path("pki")
    store_url: str = ""  # default: sqlite in state_dir/mamori.db


class FederationSection(BaseModel):
    """``[federation]``: what each run does."""

    model_config = _FROZEN

    model_name: str = "consortium-attack-classifier"
    num_rounds: int = Field(default=3, ge=1)
    local_epochs: int = Field(default=1, ge=1)
    min_train_nodes: int = Field(default=2, ge=1)
    min_evaluate_nodes: int = Field(default=1, ge=0)
    min_available_nodes: int = Field(default=2, ge=1)
    fraction_evaluate: float = Field(default=1.0, ge=0.0, le=1.0)
    round_timeout_s: float = Field(default=300.0, gt=0)
    hidden: str = "64,32"
    seed: int = 1

    @model_validator(mode="after")
    def _check(self) -> FederationSection:
        if self.min_train_nodes > self.min_available_nodes:
            raise ValueError(
                f"min_train_nodes ({self.min_train_nodes}) exceeds min_available_nodes ({self.min_available_nodes})"
            )
        if not all(p.strip().isdigit() for p in self.hidden.split(",")):
            raise ValueError(f"hidden must be comma-separated layer sizes like '64,32', got {self.hidden!r}")
        return self


class ScheduleSection(BaseModel):
    """``[schedule]``: start a run every ``interval_minutes`` (0 = only on ``run-round``)."""

    model_config = _FROZEN

    interval_minutes: float = Field(default=0.0, ge=0.0)


class ConsortiumConfig(BaseModel):
    """The whole ``consortium.toml``."""

    model_config = _FROZEN

    coordinator: CoordinatorSection = CoordinatorSection()
    federation: FederationSection = FederationSection()
    schedule: ScheduleSection = ScheduleSection()

    @property
    def resolved_store_url(self) -> str:
        """The store URL, defaulting to SQLite in the state directory."""
        return self.coordinator.store_url or f"sqlite:///{(self.coordinator.state_dir / 'mamori.db').resolve()}"


class NodeConfig(BaseModel):
    """``node.toml``: one member's SuperNode."""

    model_config = _FROZEN

    name: str = "member"
    superlink: str = "127.0.0.1:9093"
    ca_cert: Path = Path("ca.crt")
    private_key: Path = Path("node.key")
    data_path: Path = Path("events")
    model_dir: Path = Path("model")
    runtime_host: str = "127.0.0.1"
    runtime_port: int = Field(default=9094, ge=1, le=65535)
    max_retries: int | None = None
    max_wait_time_s: float | None = None


def _read(path: Path, where: str) -> dict[str, object]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: {path} does not exist.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {path} is not valid TOML ({exc}).") from exc


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def _validation(where: str, path: Path, exc: ValidationError) -> ConfigError:
    errs = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors())
    return ConfigError(f"{where}: {path} is invalid: {errs}")


def load_consortium_config(path: Path | str) -> ConsortiumConfig:
    """Read and validate ``consortium.toml``.

    Parameters
    ----------
    path : Path or str
        The file.

    Returns
    -------
    ConsortiumConfig
        With ``state_dir`` and ``pki_dir`` made absolute (relative to the file's directory).

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or holds unknown keys or invalid values.
    """
    path = Path(path)
    try:
        cfg = ConsortiumConfig.model_validate(_read(path, "load_consortium_config"))
    except ValidationError as exc:
        raise _validation("load_consortium_config", path, exc) from exc
    base = path.resolve().parent
    coord = cfg.coordinator.model_copy(
        update={
            "state_dir": _resolve(base, cfg.coordinator.state_dir),
            "pki_dir": _resolve(base, cfg.coordinator.pki_dir),
        }
    )
    return cfg.model_copy(update={"coordinator": coord})


def load_node_config(path: Path | str) -> NodeConfig:
    """Read and validate ``node.toml``.

    Parameters
    ----------
    path : Path or str
        The file.

    Returns
    -------
    NodeConfig
        With every path made absolute (relative to the file's directory).

    Raises
    ------
    ConfigError
        If the file is missing, not TOML, or holds unknown keys or invalid values.
    """
    path = Path(path)
    try:
        cfg = NodeConfig.model_validate(_read(path, "load_node_config"))
    except ValidationError as exc:
        raise _validation("load_node_config", path, exc) from exc
    base = path.resolve().parent
    return cfg.model_copy(
        update={k: _resolve(base, getattr(cfg, k)) for k in ("ca_cert", "private_key", "data_path", "model_dir")}
    )
