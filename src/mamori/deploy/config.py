"""``consortium.toml`` (the coordinator) and ``node.toml`` (a member) as frozen pydantic models.

Relative paths in a file are resolved against the file's directory by :func:`load_consortium_config`
and :func:`load_node_config`. Every option has a default, so an empty file is valid.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mamori.errors import ConfigError
from mamori.federation.schedule import LRSchedule, check_schedule

__all__ = [
    "ConsortiumConfig",
    "CoordinatorSection",
    "DashboardSection",
    "FederationSection",
    "NodeConfig",
    "RegistrySection",
    "ScheduleSection",
    "TaxiiSection",
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
    secure_aggregation: bool = True
    reconstruction_threshold: int | None = Field(default=None, ge=2)
    member_dp_epsilon: float = Field(default=0.0, ge=0.0)  # 0 = member-level DP off
    member_dp_delta: float = Field(default=1e-5, gt=0.0, lt=1.0)
    member_dp_clip: float = Field(default=1.0, gt=0.0)
    # public divisor of the members' feature statistics in the stats round (consortium-wide standardisation):
    # at least (largest member's training rows x largest mean squared feature) / 8 under secure aggregation
    stats_scale: float = Field(default=1e6, gt=0.0)
    # FederationConfig.lr_schedule / lr_floor / tail_average: the members' learning-rate factor per round (sent by
    # the coordinator) and the published model as the mean of the global weights of the last tail_average rounds
    lr_schedule: LRSchedule = "constant"
    lr_floor: float = Field(default=1.0, gt=0.0, le=1.0)
    tail_average: int = Field(default=0, ge=0)
    # FederationConfig.server_optimizer / server_momentum / server_lr / client_algorithm (docs/federation.md): the
    # coordinator's step after each aggregation, and SCAFFOLD control variates against client drift
    server_optimizer: Literal["fedavg", "fedavgm", "fedadam", "fedyogi"] = "fedavg"
    server_momentum: float | None = Field(default=None, ge=0.0, lt=1.0)
    server_lr: float | None = Field(default=None, gt=0.0)
    client_algorithm: Literal["plain", "scaffold"] = "plain"

    @property
    def published_name(self) -> str:
        """Registry name under which the global model of each completed run is published for the nodes."""
        return f"{self.model_name}.published"

    @model_validator(mode="after")
    def _check(self) -> FederationSection:
        if self.secure_aggregation and self.min_train_nodes < 2:
            raise ValueError(
                "secure_aggregation needs min_train_nodes >= 2 (the sum of one update is that update); "
                f"got {self.min_train_nodes}"
            )
        if self.member_dp_epsilon > 0 and not self.secure_aggregation:
            raise ValueError("member_dp_epsilon > 0 is implemented on the secure-aggregation path only; "
                             "set secure_aggregation = true")
        if self.min_train_nodes > self.min_available_nodes:
            raise ValueError(
                f"min_train_nodes ({self.min_train_nodes}) exceeds min_available_nodes ({self.min_available_nodes})"
            )
        check_schedule(self.lr_schedule, self.lr_floor, self.tail_average, self.num_rounds)
        self._check_aggregation()
        if not all(p.strip().isdigit() for p in self.hidden.split(",")):
            raise ValueError(f"hidden must be comma-separated layer sizes like '64,32', got {self.hidden!r}")
        return self

    def _check_aggregation(self) -> None:
        """The federation's own rules for the server optimizer and SCAFFOLD (e.g. not with member-level DP)."""
        from mamori.federation import FederationConfig, MemberDPConfig

        try:
            FederationConfig(
                min_train_nodes=self.min_train_nodes,
                min_available_nodes=self.min_available_nodes,
                secure_aggregation=self.secure_aggregation,
                member_dp=MemberDPConfig(epsilon=self.member_dp_epsilon) if self.member_dp_epsilon > 0 else None,
                server_optimizer=self.server_optimizer,
                server_momentum=self.server_momentum,
                server_lr=self.server_lr,
                client_algorithm=self.client_algorithm,
            )
        except ValidationError as exc:
            # FederationConfig's messages, with its member_dp spelled as this file spells it
            message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise ValueError(re.sub(r"\bmember_dp\b", "member_dp_epsilon > 0", message)) from None


class ScheduleSection(BaseModel):
    """``[schedule]``: start a run every ``interval_minutes`` (0 = only on ``run-round``)."""

    model_config = _FROZEN

    interval_minutes: float = Field(default=0.0, ge=0.0)


class TaxiiSection(BaseModel):
    """``[taxii]``: the TAXII 2.1 server the coordinator runs (members push sightings, pull indicators)."""

    model_config = _FROZEN

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8021, ge=1, le=65535)
    api_root: str = Field(default="mamori", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    collections: list[str] = Field(default_factory=lambda: ["sightings", "indicators"])


class RegistrySection(BaseModel):
    """``[registry]``: the HTTP view of the model registry that nodes pull published global models from."""

    model_config = _FROZEN

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8022, ge=1, le=65535)


class DashboardSection(BaseModel):
    """``[dashboard]``: the consortium dashboard."""

    model_config = _FROZEN

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8023, ge=1, le=65535)
    results_dir: Path | None = None


class ConsortiumConfig(BaseModel):
    """The whole ``consortium.toml``."""

    model_config = _FROZEN

    coordinator: CoordinatorSection = CoordinatorSection()
    federation: FederationSection = FederationSection()
    schedule: ScheduleSection = ScheduleSection()
    taxii: TaxiiSection = TaxiiSection()
    registry: RegistrySection = RegistrySection()
    dashboard: DashboardSection = DashboardSection()

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
    #: "process": a warm mamori worker runs the ClientApp (fork per message, imports done once);
    #: "subprocess": Flower's SuperExec starts a fresh ``flwr-clientapp`` process per message.
    isolation: Literal["process", "subprocess"] = "process"
    # -- talking to the coordinator's services with the member's TAXII API key
    member: str = ""
    api_key_file: Path | None = None
    registry_url: str = ""  # e.g. "http://coordinator:8022"; empty = do not pull published models
    model_name: str = "consortium-attack-classifier"
    local_store_url: str = ""  # the node's own registry; default sqlite in model_dir/node.db
    scoring_bundle: Path | None = None  # the scoring service's bundle: seeds an empty local registry (version 0)
    pull_interval_s: float = Field(default=30.0, gt=0)
    taxii_url: str = ""  # discovery URL, e.g. "http://coordinator:8021/taxii2/"; empty = do not push
    sightings_collection: str = "sightings"
    sightings_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = "amber"
    alerts_path: Path | None = None  # the scoring service's JSON-lines alerts (``mamori serve --alerts``)
    push_interval_s: float = Field(default=30.0, gt=0)

    @property
    def resolved_local_store_url(self) -> str:
        """The node's own store URL (the registry its scoring service watches)."""
        return self.local_store_url or f"sqlite:///{(self.model_dir / 'node.db').resolve()}"

    @model_validator(mode="after")
    def _check_services(self) -> NodeConfig:
        if (self.registry_url or self.taxii_url) and not (self.member and self.api_key_file):
            raise ValueError("registry_url / taxii_url need member and api_key_file (the member's TAXII API key)")
        if self.taxii_url and self.alerts_path is None:
            raise ValueError("taxii_url needs alerts_path (the scoring service's alerts file to push sightings from)")
        return self


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
    if cfg.dashboard.results_dir is not None:
        cfg = cfg.model_copy(update={"dashboard": cfg.dashboard.model_copy(
            update={"results_dir": _resolve(base, cfg.dashboard.results_dir)})})
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
    paths = ("ca_cert", "private_key", "data_path", "model_dir", "api_key_file", "alerts_path", "scoring_bundle")
    return cfg.model_copy(
        update={k: _resolve(base, getattr(cfg, k)) for k in paths if getattr(cfg, k) is not None}
    )
