"""The Flower apps a consortium runs on Flower's deployment engine (SuperLink / SuperNodes).

``server_app`` runs on the coordinator (launched by the SuperLink's SuperExec for each run started
with ``flwr run``); ``client_app`` runs on every member's SuperNode. The Flower app directory that
``mamori coordinator`` writes points its ``[tool.flwr.app.components]`` at these two objects.

Member side
    reads the member's own events from the Parquet written by ``mamori ingest`` (``data-path`` in
    the SuperNode's ``--node-config``), turns them into a feature matrix on the node, and trains
    mamori's ``AttackClassifier`` through :class:`mamori.federation.EstimatorTrainer` and
    :func:`mamori.federation.build_client_app`. A reply holds the model's weights (``arrays``) and
    scalar metrics (``metrics``) only - never an event row, a feature row or an identifier. The
    global weights each message brings are saved to ``model-dir`` (``global.npz``), where the
    member's scoring service picks them up.

Coordinator side
    resumes from the newest checkpoint of ``model-name`` in the store at ``store-url`` (its
    version is the last completed round), runs the remaining rounds up to ``num-rounds`` with
    Flower's FedAvg, and checkpoints the global model after every round. A round survives members
    dropping out as long as ``min-train-nodes`` replies arrive within ``round-timeout``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.serverapp import Grid, ServerApp

from mamori.errors import ConfigError, FederationError
from mamori.federation import EstimatorTrainer, FederationConfig, weights_hash
from mamori.federation.clientapp import build_client_app
from mamori.federation.strategy import build_strategy

__all__ = ["client_app", "load_member_matrices", "new_model", "server_app"]

logger = logging.getLogger(__name__)

_HIDDEN_DEFAULT = "64,32"
_IMPORTED_AT = time.time()


def _process_started_at() -> float:
    """Wall-clock start of this process (Linux ``/proc``; NaN elsewhere)."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                     if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return float("nan")


def _hidden(value: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in str(value).split(",") if v.strip())


def new_model(n_features: int, hidden: tuple[int, ...], seed: int) -> Any:
    """An ``AttackClassifier`` with initialised weights (every member and the coordinator build the same one).

    Parameters
    ----------
    n_features : int
        Width of the feature matrix.
    hidden : tuple of int
        Hidden layer sizes.
    seed : int
        Weight initialisation seed.

    Returns
    -------
    mamori.models.AttackClassifier
        Ready for ``get_weights`` / ``set_weights``.
    """
    from mamori.models import AttackClassifier

    return AttackClassifier(hidden_layers=hidden, epochs=1, seed=seed, n_threads=1).init_weights(n_features)


def n_features() -> int:
    """Width of the feature matrix under the default ``FeatureConfig`` (the consortium's)."""
    from mamori.events import empty_events
    from mamori.features import FeatureConfig, extract_features

    return int(extract_features(empty_events(), FeatureConfig()).X.shape[1])


def load_member_matrices(
    data_path: str | Path, eval_share: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read a member's events and split them in time into train and evaluation matrices.

    Parameters
    ----------
    data_path : str or Path
        A Parquet file, or a directory whose ``*.parquet`` files (recursively) are read.
    eval_share : float, default=0.2
        The latest share of events (by ``@timestamp``) held out for federated evaluation.

    Returns
    -------
    X_train, y_train, X_eval, y_eval : numpy.ndarray
        Features (float32) and labels (``labels.is_attack``, 1 = attack).

    Raises
    ------
    ConfigError
        If the path holds no Parquet or no events.
    """
    import polars as pl

    from mamori.features import FeatureConfig, extract_features, labels_from_events

    path = Path(data_path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError(
            f"load_member_matrices: no Parquet at data-path {str(path)!r}; run `mamori ingest` there first "
            "or fix data_path in node.toml."
        )
    events = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed").sort("@timestamp")
    if events.height < 2:
        raise ConfigError(f"load_member_matrices: {path} holds {events.height} event(s); at least 2 are needed.")
    X = extract_features(events, FeatureConfig()).X  # noqa: N806
    y, _ = labels_from_events(events)
    cut = max(1, min(events.height - 1, int(round(events.height * (1.0 - eval_share)))))
    return X[:cut], y[:cut], X[cut:], y[cut:]


@lru_cache(maxsize=4)
def _member(data_path: str, hidden: tuple[int, ...], seed: int) -> EstimatorTrainer:
    X_tr, y_tr, X_ev, y_ev = load_member_matrices(data_path)  # noqa: N806
    logger.info("member data: %d train rows, %d eval rows from %s", len(y_tr), len(y_ev), data_path)
    return EstimatorTrainer(new_model(X_tr.shape[1], hidden, seed), X_tr, y_tr, X_ev, y_ev)


def _save_global(model_dir: str, arrays: list[np.ndarray], server_round: int) -> None:
    """Hand the global model to the member's scoring service (atomically replaced ``global.npz``)."""
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, *arrays, server_round=np.int64(server_round), sha256=np.array(weights_hash(arrays)))
    tmp = out / "global.npz.tmp"
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, out / "global.npz")


class _NodeTrainer:
    """Adapter: resolves the member's data from the SuperNode's node config on each call."""

    def __init__(self, node_config: dict[str, Any], seed: int) -> None:
        self.node_config = node_config
        self.seed = seed

    def _trainer(self, config: dict[str, Any]) -> EstimatorTrainer:
        path = self.node_config.get("data-path")
        if not path:
            raise ConfigError(
                "mamori client_app: the SuperNode has no data-path in --node-config; set data_path in node.toml."
            )
        # the coordinator names the architecture in every message; the node's own setting is a fallback
        hidden = config.get("hidden", self.node_config.get("hidden", _HIDDEN_DEFAULT))
        return _member(str(path), _hidden(hidden), self.seed)

    def _pull(self, arrays: list[np.ndarray], config: dict[str, Any]) -> None:
        model_dir = self.node_config.get("model-dir")
        if model_dir:
            _save_global(str(model_dir), arrays, int(config.get("server_round", 0)))

    def _timing(self, phase: str, config: dict[str, Any], started: float, loaded: float) -> None:
        """Append this message's timings to ``model-dir/timings.jsonl`` (node-local diagnostics)."""
        model_dir = self.node_config.get("model-dir")
        if not model_dir:
            return
        row = {"phase": phase, "round": int(config.get("server_round", 0)), "process_start": _process_started_at(),
               "imported": _IMPORTED_AT, "handler_start": started, "data_loaded": loaded, "end": time.time()}
        Path(str(model_dir)).mkdir(parents=True, exist_ok=True)
        with open(Path(str(model_dir)) / "timings.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def fit(self, arrays: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        started = time.time()
        trainer = self._trainer(config)
        loaded = time.time()
        out = trainer.fit(arrays, config)
        self._timing("train", config, started, loaded)
        return out

    def evaluate(self, arrays: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict[str, float]]:
        started = time.time()
        self._pull(arrays, config)
        trainer = self._trainer(config)
        loaded = time.time()
        out = trainer.evaluate(arrays, config)
        self._timing("evaluate", config, started, loaded)
        return out


_NODE: dict[str, Any] = {}


def _bind_node_config(message: Message, context: Context, call_next: Any) -> Message:
    """Flower mod: make the SuperNode's ``--node-config`` visible to the trainer of this message."""
    _NODE.clear()
    _NODE.update(context.node_config)
    return call_next(message, context)  # type: ignore[no-any-return]


def _trainer_for_node(_node_id: int) -> tuple[str, _NodeTrainer]:
    return str(_NODE.get("node-name", "member")), _NodeTrainer(_NODE, 1)


#: The member's ClientApp (Flower loads it as ``mamori.deploy.flowerapp:client_app``).
client_app = build_client_app(
    _trainer_for_node, seed=1, train_mods=[_bind_node_config], evaluate_mods=[_bind_node_config]
)

#: The coordinator's ServerApp (``mamori.deploy.flowerapp:server_app``).
server_app = ServerApp()


@server_app.main()
def _server_main(grid: Grid, context: Context) -> None:
    from mamori.store import AuditLog, ModelRegistry, open_store

    rc = context.run_config
    num_rounds = int(rc.get("num-rounds", 3))
    model_name = str(rc.get("model-name", "consortium-attack-classifier"))
    store_url = str(rc.get("store-url", ""))
    if not store_url:
        raise ConfigError(
            "mamori server_app: run config has no store-url; start runs with `mamori coordinator run-round`."
        )
    hidden = _hidden(rc.get("hidden", _HIDDEN_DEFAULT))
    seed = int(rc.get("seed", 1))
    timeout = float(rc.get("round-timeout", 120.0))
    config = FederationConfig(
        num_rounds=max(1, num_rounds),
        local_epochs=int(rc.get("local-epochs", 1)),
        min_train_nodes=int(rc.get("min-train-nodes", 2)),
        min_evaluate_nodes=int(rc.get("min-evaluate-nodes", 1)),
        min_available_nodes=int(rc.get("min-available-nodes", 2)),
        fraction_evaluate=float(rc.get("fraction-evaluate", 1.0)),
        round_timeout_s=timeout,
        seed=seed,
    )
    store = open_store(store_url)
    registry = ModelRegistry(store)
    audit = AuditLog(store)
    done = 0
    versions = [r.version for r in registry.list(model_name)]
    if versions:
        done = max(versions)
        initial = registry.get("latest", name=model_name).arrays()
        logger.info("resuming %s from round %d", model_name, done)
    else:
        initial = new_model(n_features(), hidden, seed).get_weights()
        registry.register(model_name, 0, initial, {"round": 0, "federation_sha256": weights_hash(initial)},
                          actor="coordinator")
    remaining = num_rounds - done
    audit.append("coordinator", "federation.run_start", f"model:{model_name}",
                 {"run_id": int(context.run_id), "resume_from": done, "rounds": max(0, remaining)})
    if remaining <= 0:
        logger.info("%s already has %d rounds; nothing to do", model_name, done)
        store.close()
        return

    sent: dict[str, set[int]] = {"train": set(), "evaluate": set()}

    def quorum(phase: str, server_round: int, replies: list[Message]) -> None:
        ok = sum(1 for r in replies if not r.has_error())
        missing = sorted(sent[phase] - {r.metadata.src_node_id for r in replies})
        failed = len(replies) - ok + len(missing)
        needed = config.min_train_nodes if phase == "train" else config.min_evaluate_nodes
        if failed:
            errors = sorted({r.error.reason[:200] for r in replies if r.has_error()})
            audit.append("coordinator", "federation.member_failed", f"model:{model_name}",
                         {"round": done + server_round, "phase": phase, "failed": failed, "ok": ok,
                          "errors": errors, "no_reply_node_ids": [str(n) for n in missing]})
        if ok < needed:
            audit.append("coordinator", "federation.round_failed", f"model:{model_name}",
                         {"round": done + server_round, "phase": phase, "ok": ok, "needed": needed})
            raise FederationError(
                f"mamori server_app: round {done + server_round} {phase}: {ok} member(s) answered successfully, "
                f"at least {needed} required (min_{phase}_nodes); {failed} failed or timed out. The last "
                f"completed round ({done + server_round - 1}) stays checkpointed; see the members' SuperNode logs."
            )

    strategy = build_strategy(config, quorum)
    configure = {"train": strategy.configure_train, "evaluate": strategy.configure_evaluate}

    def _recording(phase: str) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> list[Message]:
            messages = list(configure[phase](*args, **kwargs))
            sent[phase] = {m.metadata.dst_node_id for m in messages}
            return messages

        return wrapped

    strategy.configure_train = _recording("train")  # type: ignore[method-assign]
    strategy.configure_evaluate = _recording("evaluate")  # type: ignore[method-assign]

    def end_of_round(server_round: int, record: ArrayRecord) -> MetricRecord | None:
        if server_round == 0:
            return None
        arrays = record.to_numpy_ndarrays()
        global_round = done + server_round
        digest = weights_hash(arrays)
        now = time.time()
        registry.register(model_name, global_round, arrays,
                          {"round": global_round, "federation_sha256": digest, "run_id": int(context.run_id),
                           "round_started_at": clock["round_start"], "round_ended_at": now}, actor="coordinator")
        clock["round_start"] = now
        logger.info("round %d checkpointed (%s)", global_round, digest[:12])
        return None

    clock = {"round_start": time.time()}
    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord([np.ascontiguousarray(a) for a in initial]),
        num_rounds=remaining,
        timeout=timeout,
        train_config=ConfigRecord({"local-epochs": config.local_epochs, "hidden": ",".join(map(str, hidden))}),
        evaluate_config=ConfigRecord({"hidden": ",".join(map(str, hidden))}),
        evaluate_fn=end_of_round,
    )
    audit.append("coordinator", "federation.run_end", f"model:{model_name}",
                 {"run_id": int(context.run_id), "rounds_done": num_rounds})
    store.close()
