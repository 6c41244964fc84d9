"""Start and drive Flower's deployment engine for a consortium.

The coordinator runs ``flower-superlink`` (TLS with the consortium's certificate, SuperNode
authentication on, state in a SQLite database, runtime dependency installation off, telemetry and
update checks off); members' keys are registered with the Flower CLI (``flwr supernode register``)
and revoked ones unregistered; each federated run is started with ``flwr run`` on a Flower app
directory whose components are :mod:`mamori.deploy.flowerapp`'s ``server_app`` / ``client_app``.
A member runs ``flower-supernode`` with its private key and the consortium CA.

Every process is started in its own session (process group); :func:`stop_process` ends the group
and any descendants that left it (Flower's SuperExec starts its own session).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mamori.deploy.config import ConsortiumConfig, FederationSection, NodeConfig
from mamori.deploy.pki import PKIPaths, load_members
from mamori.errors import ConfigError, FederationError

__all__ = [
    "RunOutcome",
    "audit_refusals",
    "completed_rounds",
    "flower_env",
    "node_command",
    "run_federated",
    "start_node",
    "start_superlink",
    "stop_flwr_clients",
    "stop_process",
    "superlink_command",
    "sync_members",
    "wait_for_port",
    "write_app_dir",
]

logger = logging.getLogger(__name__)

CONNECTION = "mamori"


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def flower_env(flwr_home: Path | None = None) -> dict[str, str]:
    """Environment for Flower processes: telemetry, update checks and dependency installation off.

    Parameters
    ----------
    flwr_home : Path or None, default=None
        ``FLWR_HOME`` (where the Flower CLI keeps its connection config).

    Returns
    -------
    dict of str to str
        A copy of ``os.environ`` with the settings, and this interpreter's ``bin`` first on ``PATH``
        (SuperLink and SuperNode start ``flower-superexec`` from ``PATH``).
    """
    env = dict(os.environ)
    env.update(
        FLWR_TELEMETRY_ENABLED="0",
        FLWR_DISABLE_UPDATE_CHECK="1",
        FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
        PYTHONUNBUFFERED="1",
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    )
    if flwr_home is not None:
        env["FLWR_HOME"] = str(flwr_home)
    return env


def wait_for_port(host: str, port: int, timeout_s: float = 30.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts TCP connections on ``host:port``.

    Parameters
    ----------
    host : str
        Address.
    port : int
        Port.
    timeout_s : float, default=30.0
        Give up after this long.
    proc : subprocess.Popen or None, default=None
        The process expected to listen; fail early if it exits.

    Raises
    ------
    FederationError
        If nothing listens in time or ``proc`` exited.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FederationError(f"wait_for_port: the process meant to listen on {host}:{port} exited "
                                  f"with code {proc.returncode}; see its log.")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise FederationError(f"wait_for_port: nothing listens on {host}:{port} after {timeout_s:.0f} s.")


def _state(cfg: ConsortiumConfig) -> Path:
    state = cfg.coordinator.state_dir
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    return state


def superlink_command(cfg: ConsortiumConfig) -> list[str]:
    """The ``flower-superlink`` command line for ``cfg``.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.

    Returns
    -------
    list of str
        TLS from the PKI directory, ``--enable-supernode-auth``, ``--database`` in the state directory,
        ``--disable-runtime-dependency-installation``, listening on ``host:port`` only.
    """
    pki = PKIPaths(cfg.coordinator.pki_dir)
    for f in (pki.ca_cert, pki.server_cert, pki.server_key):
        if not f.is_file():
            raise ConfigError(
                f"superlink_command: {f} is missing; run `mamori pki init` (or `mamori pki issue --server`)."
            )
    return [
        _bin("flower-superlink"),
        "--host", cfg.coordinator.host,
        "--port", str(cfg.coordinator.port),
        "--ssl-ca-certfile", str(pki.ca_cert),
        "--ssl-certfile", str(pki.server_cert),
        "--ssl-keyfile", str(pki.server_key),
        "--enable-supernode-auth",
        "--database", str(cfg.coordinator.state_dir / "superlink.db"),
        "--disable-runtime-dependency-installation",
    ]


def _popen(cmd: list[str], log_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _write_flwr_config(cfg: ConsortiumConfig) -> Path:
    home = _state(cfg) / "flwr"
    home.mkdir(mode=0o700, exist_ok=True)
    pki = PKIPaths(cfg.coordinator.pki_dir)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "{cfg.coordinator.host}:{cfg.coordinator.port}"\nroot-certificates = "{pki.ca_cert}"\n',
        encoding="utf-8",
    )
    return home


def start_superlink(cfg: ConsortiumConfig, timeout_s: float = 60.0) -> subprocess.Popen[bytes]:
    """Start the SuperLink and wait until it listens.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.
    timeout_s : float, default=60.0
        How long to wait for the port.

    Returns
    -------
    subprocess.Popen
        The SuperLink (own process group); its log is ``state_dir/superlink.log``.
    """
    state = _state(cfg)
    home = _write_flwr_config(cfg)
    proc = _popen(superlink_command(cfg), state / "superlink.log", flower_env(home))
    wait_for_port(cfg.coordinator.host, cfg.coordinator.port, timeout_s, proc)
    logger.info("SuperLink pid %d on %s:%d", proc.pid, cfg.coordinator.host, cfg.coordinator.port)
    return proc


_FLWR_CLIENTS: set[subprocess.Popen[str]] = set()


def _flwr(cfg: ConsortiumConfig, args: list[str], timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    home = _write_flwr_config(cfg)
    proc = subprocess.Popen([_bin("flwr"), *args], env=flower_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    _FLWR_CLIENTS.add(proc)  # so stop_flwr_clients can end a run client whose SuperLink went away
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise
    finally:
        _FLWR_CLIENTS.discard(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def sync_members(cfg: ConsortiumConfig, audit: object | None = None) -> dict[str, str]:
    """Register active member keys with the SuperLink and unregister revoked ones.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration (its PKI directory holds ``members.json``).
    audit : mamori.store.AuditLog or None, default=None
        Receives ``node.register`` / ``node.unregister`` entries.

    Returns
    -------
    dict of str to str
        Node name to Flower node id of the registered members.

    Raises
    ------
    FederationError
        If the Flower CLI fails.
    """
    state = _state(cfg)
    reg_path = state / "registered.json"
    registered: dict[str, dict[str, str]] = json.loads(reg_path.read_text()) if reg_path.exists() else {}
    for name, member in load_members(cfg.coordinator.pki_dir).items():
        have = registered.get(name)
        if member.status == "revoked" or (have and have["fingerprint"] != member.fingerprint):
            if have:
                r = _flwr(cfg, ["supernode", "unregister", have["node_id"], CONNECTION])
                if r.returncode != 0:
                    raise FederationError(
                        f"sync_members: unregistering {name} failed: {r.stdout[-400:]} {r.stderr[-400:]}"
                    )
                registered.pop(name)
                if audit is not None:
                    audit.append("coordinator", "node.unregister", f"node:{name}",  # type: ignore[attr-defined]
                                 {"fingerprint": have["fingerprint"], "node_id": have["node_id"]})
        if member.status == "active" and name not in registered:
            pub = cfg.coordinator.pki_dir / "nodes" / f"{name}.pub"
            r = _flwr(cfg, ["supernode", "register", str(pub), CONNECTION, "--name", name, "--format", "json"])
            if r.returncode != 0:
                raise FederationError(f"sync_members: registering {name} failed: {r.stdout[-400:]} {r.stderr[-400:]}")
            node_id = str(json.loads(r.stdout[r.stdout.index("{"):])["node-id"])
            registered[name] = {"node_id": node_id, "fingerprint": member.fingerprint}
            if audit is not None:
                audit.append("coordinator", "node.register", f"node:{name}",  # type: ignore[attr-defined]
                             {"fingerprint": member.fingerprint, "node_id": node_id})
    reg_path.write_text(json.dumps(registered, indent=2))
    return {n: v["node_id"] for n, v in registered.items()}


_REFUSAL_RE = re.compile(
    r"Attempted to register SuperNode with public key: b'(-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----)"
)


def audit_refusals(cfg: ConsortiumConfig, audit: object | None = None) -> list[str]:
    """Record SuperNodes the SuperLink refused (unknown or revoked keys) since the last call.

    Flower refuses them itself (``/v1/fleet/activate-node`` answers 412, ``ApiError:2004``) and
    logs the offending public key; this reads the new part of ``state_dir/superlink.log``.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.
    audit : mamori.store.AuditLog or None, default=None
        Receives one ``node.refused`` entry per refusal, with the key's fingerprint and, when the
        key is a revoked member's, that member's name.

    Returns
    -------
    list of str
        Fingerprints (``SHA256:<hex>``) of the refused keys, in log order.
    """
    state = _state(cfg)
    log_path, offset_path = state / "superlink.log", state / "superlink.log.audited"
    if not log_path.exists():
        return []
    offset = int(offset_path.read_text()) if offset_path.exists() else 0
    size = log_path.stat().st_size
    if size < offset:  # log replaced
        offset = 0
    with open(log_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    text = data.decode("utf-8", "replace")
    by_fp = {m.fingerprint: m.name for m in load_members(cfg.coordinator.pki_dir).values()}
    found = []
    for pem in _REFUSAL_RE.findall(text):
        key = serialization.load_pem_public_key(pem.replace("\\n", "\n").encode())
        der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        fp = "SHA256:" + hashlib.sha256(der).hexdigest()
        found.append(fp)
        if audit is not None:
            audit.append("coordinator", "node.refused", f"key:{fp}",  # type: ignore[attr-defined]
                         {"fingerprint": fp, "member": by_fp.get(fp), "reason": "key not registered"})
    offset_path.write_text(str(offset + len(data)))
    if found:
        logger.warning("SuperLink refused %d SuperNode connection(s) with unknown keys", len(found))
    return found


def _optional_keys(f: FederationSection) -> str:
    """Run-config lines for the settings whose default is "unset" (TOML has no null: an absent key is unset)."""
    lines = [f"{key} = {value}" for key, value in (("server-momentum", f.server_momentum), ("server-lr", f.server_lr))
             if value is not None]
    return "".join(line + "\n" for line in lines)


def write_app_dir(cfg: ConsortiumConfig) -> Path:
    """Write the Flower app directory (``pyproject.toml`` naming mamori's apps) into the state directory.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.

    Returns
    -------
    Path
        The app directory, for ``flwr run``.
    """
    app = _state(cfg) / "app"
    app.mkdir(exist_ok=True)
    f = cfg.federation
    # the members run the ClientApp the FAB names: SecAgg+ (and member-level DP) need Flower's client mods
    clientapp = "client_app"
    if f.secure_aggregation:
        clientapp = "secure_dp_client_app" if f.member_dp_epsilon > 0 else "secure_client_app"
    (app / "pyproject.toml").write_text(
        f"""[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "mamori-consortium"
version = "1.0.0"
description = "mamori federated training of the consortium's attack classifier"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "mamori"

[tool.flwr.app.components]
serverapp = "mamori.deploy.flowerapp:server_app"
clientapp = "mamori.deploy.flowerapp:{clientapp}"

[tool.flwr.app.config]
num-rounds = {f.num_rounds}
local-epochs = {f.local_epochs}
min-train-nodes = {f.min_train_nodes}
min-evaluate-nodes = {f.min_evaluate_nodes}
min-available-nodes = {f.min_available_nodes}
fraction-evaluate = {f.fraction_evaluate}
round-timeout = {f.round_timeout_s}
model-name = {json.dumps(f.model_name)}
hidden = {json.dumps(f.hidden)}
seed = {f.seed}
store-url = {json.dumps(cfg.resolved_store_url)}
registered-file = {json.dumps(str(_state(cfg) / "registered.json"))}
published-name = {json.dumps(f.published_name)}
secure-aggregation = {json.dumps(f.secure_aggregation)}
reconstruction-threshold = {f.reconstruction_threshold or 0}
member-dp-epsilon = {f.member_dp_epsilon}
member-dp-delta = {f.member_dp_delta}
member-dp-clip = {f.member_dp_clip}
stats-scale = {f.stats_scale}
lr-schedule = {json.dumps(f.lr_schedule)}
lr-floor = {f.lr_floor}
tail-average = {f.tail_average}
server-optimizer = {json.dumps(f.server_optimizer)}
client-algorithm = {json.dumps(f.client_algorithm)}
{_optional_keys(f)}""",
        encoding="utf-8",
    )
    return app


@dataclass(frozen=True)
class RunOutcome:
    """What one ``flwr run`` did.

    Parameters
    ----------
    returncode : int
        Of ``flwr run``.
    seconds : float
        Wall time.
    rounds_before, rounds_after : int
        Completed rounds in the model registry before and after.
    target_rounds : int
        The round the run was asked to reach.
    log : str
        The tail of the streamed run log.
    """

    returncode: int
    seconds: float
    rounds_before: int
    rounds_after: int
    target_rounds: int
    log: str

    @property
    def ok(self) -> bool:
        """True when ``flwr run`` succeeded and every requested round was checkpointed.

        ``flwr run --stream`` exits 0 even when the ServerApp raised, so the checkpoints decide.
        """
        return self.returncode == 0 and self.rounds_after >= self.target_rounds


def completed_rounds(cfg: ConsortiumConfig) -> int:
    """The last completed round of the consortium's model (0 when only the initial model exists or none).

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration.

    Returns
    -------
    int
        The highest checkpoint version in the model registry.
    """
    from mamori.store import ModelRegistry, open_store

    store = open_store(cfg.resolved_store_url)
    try:
        return max((r.version for r in ModelRegistry(store).list(cfg.federation.model_name)), default=0)
    finally:
        store.close()


def run_federated(cfg: ConsortiumConfig, *, more_rounds: int | None = None, timeout_s: float = 3600.0) -> RunOutcome:
    """Start a federated run with ``flwr run`` and stream it until it ends.

    Parameters
    ----------
    cfg : ConsortiumConfig
        The consortium configuration; the SuperLink must be running.
    more_rounds : int or None, default=None
        Train this many rounds beyond the last checkpoint; None trains up to ``federation.num_rounds``
        (resuming after a coordinator restart).
    timeout_s : float, default=3600.0
        Give up on the run after this long.

    Returns
    -------
    RunOutcome
        Return code, time and rounds before/after.
    """
    before = completed_rounds(cfg)
    target = before + more_rounds if more_rounds is not None else cfg.federation.num_rounds
    app = write_app_dir(cfg)
    started = time.perf_counter()
    r = _flwr(cfg, ["run", str(app), CONNECTION, "--stream", "--run-config", f"num-rounds={target}"], timeout_s)
    seconds = time.perf_counter() - started
    after = completed_rounds(cfg)
    logger.info("flwr run: code %d, %.1f s, rounds %d -> %d", r.returncode, seconds, before, after)
    return RunOutcome(r.returncode, seconds, before, after, target, (r.stdout + r.stderr)[-6000:])


def node_command(node: NodeConfig) -> list[str]:
    """The ``flower-supernode`` command line for a member.

    Parameters
    ----------
    node : NodeConfig
        The member's configuration.

    Returns
    -------
    list of str
        TLS verified against the consortium CA, authenticated with the node's private key, the
        node's data path, name and model directory in ``--node-config``. With ``isolation = "process"``
        (the default) the SuperNode runs under :mod:`mamori.deploy.worker`, which serves its ClientApp
        tasks from one warm process (a fork per message) instead of a fresh ``flwr-clientapp`` per message.
    """
    for f in (node.ca_cert, node.private_key):
        if not f.is_file():
            raise ConfigError(f"node_command: {f} is missing (node {node.name!r}); see docs/deployment.md.")
    cmd = [
        _bin("flower-supernode"),
        "--superlink", node.superlink,
        "--root-certificates", str(node.ca_cert),
        "--auth-supernode-private-key", str(node.private_key),
        "--host", node.runtime_host,
        "--port", str(node.runtime_port),
        "--node-config",
        f'data-path="{node.data_path}" node-name="{node.name}" model-dir="{node.model_dir}"',
    ]
    if node.max_retries is not None:
        cmd += ["--max-retries", str(node.max_retries)]
    if node.max_wait_time_s is not None:
        cmd += ["--max-wait-time", str(node.max_wait_time_s)]
    if node.isolation == "process":
        # mamori's warm worker runs the SuperNode as its child and forks per ClientApp task
        address = f"{node.runtime_host}:{node.runtime_port}"
        cmd = [sys.executable, "-m", "mamori.deploy.worker", "--runtime-api-address", address, "--",
               *cmd, "--isolation", "process"]
    return cmd


def start_node(node: NodeConfig, log_path: Path) -> subprocess.Popen[bytes]:
    """Start a member's SuperNode.

    Parameters
    ----------
    node : NodeConfig
        The member's configuration.
    log_path : Path
        Where its output goes.

    Returns
    -------
    subprocess.Popen
        The SuperNode (own process group).
    """
    proc = _popen(node_command(node), log_path, flower_env())
    logger.info("SuperNode %s pid %d -> %s", node.name, proc.pid, node.superlink)
    return proc


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def stop_process(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 10.0) -> None:
    """Stop a process started here, its process group and every descendant.

    Parameters
    ----------
    proc : subprocess.Popen
        Started by :func:`start_superlink` or :func:`start_node`.
    sig : int, default=SIGTERM
        First signal; SIGKILL follows after ``timeout_s``.
    timeout_s : float, default=10.0
        Grace period.
    """
    # Only while the pid is still ours (running or an unreaped zombie, whose children still list it as parent).
    pids = [proc.pid, *_descendants(proc.pid)] if proc.returncode is None else []
    own = os.getpgrp()
    for p in pids:
        try:
            if os.getpgid(p) != own:
                os.killpg(os.getpgid(p), sig)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    for p in pids:
        try:
            if os.getpgid(p) != own:
                os.killpg(os.getpgid(p), signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=5)



def stop_flwr_clients(timeout_s: float = 5.0) -> None:
    """End the Flower CLI processes (``flwr run`` ...) this process started that are still running.

    Parameters
    ----------
    timeout_s : float, default=5.0
        Grace period after SIGTERM before SIGKILL.
    """
    for proc in list(_FLWR_CLIENTS):
        proc.terminate()
    for proc in list(_FLWR_CLIENTS):
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
