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

    Before the training rounds of a run the coordinator asks every member for the column statistics of
    its training matrix (a ``stats`` round: count, sum and sum of squares per feature, as one vector
    scaled by the public ``stats-scale``) through the same aggregation path as the weights, so under
    secure aggregation it only learns their sum. From that sum it fits the consortium-wide
    :class:`~mamori.features.Standardizer`, sends it with every training and evaluation message, and the
    members standardise their matrices with it before training; the checkpoints and the published model
    carry it in their metadata, and the node's pull applies it to its scoring bundle.

    Under secure aggregation the FAB names ``secure_client_app`` instead: Flower's ``secaggplus_mod``
    in front of mamori's :class:`~mamori.federation.secagg.SecureMember` around the same trainer (and
    ``secure_dp_client_app``, which also clips the update with ``fixedclipping_mod``).

Coordinator side
    resumes from the newest checkpoint of ``model-name`` in the store at ``store-url`` (its
    version is the last completed round), runs the remaining rounds up to ``num-rounds`` - with
    ``secure-aggregation`` through Flower's ``SecAggPlusWorkflow`` (the coordinator only sees the sum
    of the updates; optional member-level DP noise on that sum), otherwise with Flower's FedAvg -
    and checkpoints the global model after every round. A round survives members dropping out as
    long as ``min-train-nodes`` replies arrive within ``round-timeout``. At the end of a completed
    run the final model is published as ``published-name`` for the nodes to pull.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.client.mod import fixedclipping_mod, secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from mamori.errors import ConfigError, FederationError
from mamori.features import FeatureStats, Standardizer
from mamori.federation import (
    EstimatorTrainer,
    FederationConfig,
    MemberDPConfig,
    SecureAggregationConfig,
    weights_hash,
)
from mamori.federation.clientapp import build_client_app
from mamori.federation.privacy import member_dp_spends
from mamori.federation.schedule import TailAverage
from mamori.federation.secagg_masks import install as install_secure_masks
from mamori.federation.strategy import build_strategy, schedule_train_config

__all__ = [
    "client_app",
    "consortium_standardizer",
    "load_member_matrices",
    "member_stats_vector",
    "new_model",
    "secure_client_app",
    "secure_dp_client_app",
    "server_app",
    "standardizer_from_json",
    "standardizer_to_json",
]

logger = logging.getLogger(__name__)

# every SecAgg+ party - this module is the ServerApp and the ClientApps - masks with AES-CTR, not Flower's 32-bit seeds
install_secure_masks()

_HIDDEN_DEFAULT = "64,32"
_STATS_PHASE = "stats"
#: Where a member keeps its SCAFFOLD control variate c_i in its Flower run state (new run: c_i starts at zero again)
_CONTROL_STATE_KEY = "mamori.scaffold-control"
_CONTROL_ROUND_KEY = "mamori.scaffold-control-round"  # a RecordDict holds one record per name, of any type
#: Public divisor of the members' statistics vectors in the stats round (SecAgg+ clips values to +-8).
STATS_SCALE_DEFAULT = 1e6
_STATS_QRANGE = 2**30  # SecAgg+ quantization of the stats round (see _secure_rounds)
_STATS_MODULUS = 2**42
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
        Features (float32) and labels (``labels.is_attack``, 1 = attack). When ``verdict-labels.csv``
        (the dashboard's export of the member's alert verdicts) lies in the data directory (beside the
        file), its verdicts overwrite the labels of the events they cover first
        (:func:`mamori.events.apply_verdict_labels`).

    Raises
    ------
    ConfigError
        If the path holds no Parquet or no events.
    SchemaError
        If a Parquet file cannot be read (named).
    """
    from mamori.events import VERDICT_LABELS_FILE, apply_verdict_labels, read_event_parquet, read_verdict_labels
    from mamori.features import FeatureConfig, extract_features, labels_from_events

    path = Path(data_path)
    files = sorted(path.rglob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise ConfigError(
            f"load_member_matrices: no Parquet at data-path {str(path)!r}; run `mamori ingest` there first "
            "or fix data_path in node.toml."
        )
    events = read_event_parquet(files, where="load_member_matrices").sort("@timestamp")
    if events.height < 2:
        raise ConfigError(f"load_member_matrices: {path} holds {events.height} event(s); at least 2 are needed.")
    feedback = (path if path.is_dir() else path.parent) / VERDICT_LABELS_FILE
    if feedback.is_file():  # the labels feedback loop: the SOC's verdicts overwrite what they cover
        events = apply_verdict_labels(events, read_verdict_labels(feedback))
    X = extract_features(events, FeatureConfig()).X  # noqa: N806
    y, _ = labels_from_events(events)
    cut = max(1, min(events.height - 1, int(round(events.height * (1.0 - eval_share)))))
    return X[:cut], y[:cut], X[cut:], y[cut:]


def standardizer_to_json(standardizer: Standardizer) -> str:
    """Serialise a fitted standardiser for a Flower config record or registry metadata.

    Parameters
    ----------
    standardizer : Standardizer
        Fitted (``fit_stats``).

    Returns
    -------
    str
        JSON with ``mean``, ``scale`` and ``clip``.
    """
    return json.dumps({"mean": np.asarray(standardizer.mean_, dtype=np.float64).tolist(),
                       "scale": np.asarray(standardizer.scale_, dtype=np.float64).tolist(),
                       "clip": standardizer.clip})


def standardizer_from_json(text: str) -> Standardizer:
    """Rebuild the standardiser :func:`standardizer_to_json` wrote.

    Parameters
    ----------
    text : str
        Its JSON.

    Returns
    -------
    Standardizer
        Fitted, ready for ``transform``.

    Raises
    ------
    ConfigError
        If the JSON is not a standardiser's.
    """
    try:
        d = json.loads(text)
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        clip = None if d.get("clip") is None else float(d["clip"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"standardizer_from_json: not a standardiser's JSON ({exc}).") from exc
    if mean.ndim != 1 or mean.shape != scale.shape or not np.all(scale > 0):
        raise ConfigError(f"standardizer_from_json: mean/scale shapes {mean.shape}/{scale.shape} or scales invalid.")
    s = Standardizer(clip=clip)
    s.mean_, s.scale_, s.n_features_in_ = mean, scale, int(mean.shape[0])
    return s


def member_stats_vector(X: np.ndarray, scale: float = STATS_SCALE_DEFAULT) -> np.ndarray:
    """A member's stats-round reply: ``FeatureStats.to_summable()`` of its training matrix over ``scale``.

    Parameters
    ----------
    X : numpy.ndarray
        Shape ``(n, d)``, the member's raw training matrix.
    scale : float, default=STATS_SCALE_DEFAULT
        The run's public ``stats-scale`` (the same for every member, so the sum stays a sum).

    Returns
    -------
    numpy.ndarray
        Shape ``(3 * d,)``: counts, sums and sums of squares per column, divided by ``scale``.
    """
    return FeatureStats.from_matrix(X).to_summable() / float(scale)


def consortium_standardizer(summed: np.ndarray) -> Standardizer:
    """Fit the consortium's standardiser from the aggregated stats vectors.

    Parameters
    ----------
    summed : numpy.ndarray
        Shape ``(3 * d,)``: the sum (or the mean: a common factor cancels) of :func:`member_stats_vector`.

    Returns
    -------
    Standardizer
        ``Standardizer().fit_stats(FeatureStats.from_summable(summed))``.
    """
    return Standardizer().fit_stats(FeatureStats.from_summable(np.asarray(summed, dtype=np.float64)))


@lru_cache(maxsize=2)
def _raw(data_path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    X_tr, y_tr, X_ev, y_ev = load_member_matrices(data_path)  # noqa: N806
    logger.info("member data: %d train rows, %d eval rows from %s", len(y_tr), len(y_ev), data_path)
    return X_tr, y_tr, X_ev, y_ev


@lru_cache(maxsize=4)
def _member(data_path: str, hidden: tuple[int, ...], seed: int, standardizer: str = "") -> EstimatorTrainer:
    X_tr, y_tr, X_ev, y_ev = _raw(data_path)  # noqa: N806
    if standardizer:  # the consortium's statistics: the scoring service applies the same before the model
        scaler = standardizer_from_json(standardizer)
        X_tr, X_ev = scaler.transform(X_tr), scaler.transform(X_ev)  # noqa: N806
    else:
        logger.warning("no consortium standardiser in the coordinator's message: training on raw features")
    return EstimatorTrainer(new_model(X_tr.shape[1], hidden, seed), X_tr, y_tr, X_ev, y_ev)


def _save_global(model_dir: str, arrays: list[np.ndarray], server_round: int, standardizer: str = "") -> None:
    """Hand the global model to the member's scoring service (atomically replaced ``global.npz``)."""
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, *arrays, server_round=np.int64(server_round), sha256=np.array(weights_hash(arrays)),
             standardizer=np.array(standardizer))
    tmp = out / "global.npz.tmp"
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, out / "global.npz")


class _NodeTrainer:
    """Adapter: resolves the member's data from the SuperNode's node config on each call.

    ``state`` is the node's Flower context state for the run (it outlives each message's process): SCAFFOLD
    keeps the member's control variate ``c_i`` there between rounds.
    """

    def __init__(self, node_config: dict[str, Any], seed: int, state: RecordDict | None = None) -> None:
        self.node_config = node_config
        self.seed = seed
        self.state = state

    def _trainer(self, config: dict[str, Any]) -> EstimatorTrainer:
        path = self.node_config.get("data-path")
        if not path:
            raise ConfigError(
                "mamori client_app: the SuperNode has no data-path in --node-config; set data_path in node.toml."
            )
        # the coordinator names the architecture in every message; the node's own setting is a fallback
        hidden = config.get("hidden", self.node_config.get("hidden", _HIDDEN_DEFAULT))
        return _member(str(path), _hidden(hidden), self.seed, str(config.get("standardizer", "")))

    def _stats(self, arrays: list[np.ndarray],
               config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """The stats round: column statistics of the training matrix, never a row (weight 1: a plain sum)."""
        path = self.node_config.get("data-path")
        if not path:
            raise ConfigError(
                "mamori client_app: the SuperNode has no data-path in --node-config; set data_path in node.toml."
            )
        vector = member_stats_vector(_raw(str(path))[0], float(config.get("stats-scale", STATS_SCALE_DEFAULT)))
        limit = float(config.get("stats-limit", 0.0))
        if limit > 0 and float(np.max(np.abs(vector))) > limit:
            raise FederationError(
                f"mamori client_app: the scaled feature statistics reach {float(np.max(np.abs(vector))):.3g}, beyond "
                f"the secure-aggregation clipping range {limit}; raise stats_scale in consortium.toml."
            )
        if [a.shape for a in arrays] != [vector.shape]:
            raise FederationError(f"mamori client_app: stats round sent shapes {[a.shape for a in arrays]}, the "
                                  f"member's statistics have shape {vector.shape} (different feature sets?).")
        return [vector], 1, {}

    def _pull(self, arrays: list[np.ndarray], config: dict[str, Any]) -> None:
        model_dir = self.node_config.get("model-dir")
        if model_dir:
            _save_global(str(model_dir), arrays, int(config.get("server_round", 0)),
                         str(config.get("standardizer", "")))

    def _timing(self, phase: str, config: dict[str, Any], started: float, loaded: float,
                extra: dict[str, Any] | None = None) -> None:
        """Append this message's timings (and ``extra``) to ``model-dir/timings.jsonl`` (node-local diagnostics)."""
        model_dir = self.node_config.get("model-dir")
        if not model_dir:
            return
        process_start = _process_started_at()
        # a fork of the warm worker (mamori.deploy.worker) inherits the imports: ready when it starts
        imported = max(_IMPORTED_AT, process_start) if process_start == process_start else _IMPORTED_AT
        row = {"phase": phase, "round": int(config.get("server_round", 0)), "process_start": process_start,
               "imported": imported, "handler_start": started, "data_loaded": loaded, "end": time.time(),
               **(extra or {})}
        Path(str(model_dir)).mkdir(parents=True, exist_ok=True)
        with open(Path(str(model_dir)) / "timings.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def fit(self, arrays: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        started = time.time()
        if config.get("phase") == _STATS_PHASE:
            return self._stats(arrays, config)
        trainer = self._trainer(config)
        loaded = time.time()
        out = trainer.fit(arrays, config)
        self._timing("train", config, started, loaded)
        return out

    def fit_scaffold(self, arrays: list[np.ndarray], control: list[np.ndarray], config: dict[str, Any]
                     ) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
        """SCAFFOLD's member step, with ``c_i`` read from and written back to the run's node state."""
        started = time.time()
        if self.state is None:
            raise FederationError("mamori client_app: SCAFFOLD needs the node's run state to keep its control "
                                  "variate between rounds, and this message came without one.")
        trainer = self._trainer(config)
        loaded = time.time()
        kept = self.state.array_records.get(_CONTROL_STATE_KEY)
        kept_round = self.state.config_records.get(_CONTROL_ROUND_KEY, {}).get("round", 0)
        # the trainer object is cached per process (_member), so c_i comes from the run state alone: none kept
        # means this run's first round for the member (c_i = 0), whatever an earlier run left on the object
        trainer.control_ = kept.to_numpy_ndarrays() if kept is not None else None  # type: ignore[assignment]
        weights, delta, num_examples, metrics = trainer.fit_scaffold(arrays, control, config)
        self.state.array_records[_CONTROL_STATE_KEY] = ArrayRecord([np.ascontiguousarray(c) for c in trainer.control_])
        self.state.config_records[_CONTROL_ROUND_KEY] = ConfigRecord({"round": int(config.get("server_round", 0))})
        # which round's c_i this step started from (0: zeros), for the node's own diagnostics
        self._timing("train", config, started, loaded, {"scaffold_control_from_round": int(kept_round)})
        return weights, delta, num_examples, metrics

    def evaluate(self, arrays: list[np.ndarray], config: dict[str, Any]) -> tuple[float, int, dict[str, float]]:
        started = time.time()
        self._pull(arrays, config)
        trainer = self._trainer(config)
        loaded = time.time()
        out = trainer.evaluate(arrays, config)
        self._timing("evaluate", config, started, loaded)
        return out


_NODE: dict[str, Any] = {}
_NODE_STATE: dict[str, RecordDict] = {}


def _bind_node_config(message: Message, context: Context, call_next: Any) -> Message:
    """Flower mod: make the SuperNode's ``--node-config`` and run state visible to the trainer of this message."""
    _NODE.clear()
    _NODE.update(context.node_config)
    _NODE_STATE["state"] = context.state
    return call_next(message, context)  # type: ignore[no-any-return]


def _trainer_for_node(_node_id: int) -> tuple[str, _NodeTrainer]:
    return str(_NODE.get("node-name", "member")), _NodeTrainer(_NODE, 1, _NODE_STATE.get("state"))


def _member_index(name: str) -> int:
    """A stable small integer per member name (derives the member's per-round seed)."""
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:4], "big")


def _secure_client_fn(member_dp: bool) -> Any:
    from mamori.federation.secagg import SecureMember

    class _Member(SecureMember):  # type: ignore[misc]
        def fit(self, parameters: list[np.ndarray], config: dict[str, Any]) -> tuple[list[np.ndarray], int, Any]:
            if config.get("phase") == _STATS_PHASE:
                # float64 into SecAgg+'s quantization: float32 would cost the sums of squares their precision
                arrays, _, _ = self.trainer._stats([np.asarray(p) for p in parameters], dict(config))
                return [np.asarray(a, dtype=np.float64) for a in arrays], 1, {}
            return super().fit(parameters, config)  # type: ignore[no-any-return]

    def client_fn(context: Context) -> Any:
        node = dict(context.node_config)
        name = str(node.get("node-name", "member"))
        seed = int(context.run_config.get("seed", 1))
        # consortium.toml does not change SecAgg+'s clipping range: the default is what the coordinator sends
        member = _Member(name, _NodeTrainer(node, seed, context.state), _member_index(name), seed,
                         uniform_weight=member_dp, max_weight=1.0 if member_dp else 1e12,
                         clipping_range=SecureAggregationConfig().clipping_range, node_state=context.state)
        return member.to_client()

    return client_fn


#: The member's ClientApp (Flower loads it as ``mamori.deploy.flowerapp:client_app``): plain FedAvg.
client_app = build_client_app(
    _trainer_for_node, seed=1, train_mods=[_bind_node_config], evaluate_mods=[_bind_node_config]
)

#: The member's ClientApp under secure aggregation: Flower's ``secaggplus_mod`` in front of mamori's
#: :class:`~mamori.federation.secagg.SecureMember` (``mamori.deploy.flowerapp:secure_client_app``).
secure_client_app = ClientApp(client_fn=_secure_client_fn(False), mods=[secaggplus_mod])

#: Secure aggregation plus member-level DP: the update is clipped on the member (``fixedclipping_mod``)
#: before it is masked, the coordinator adds noise to the unmasked sum.
secure_dp_client_app = ClientApp(client_fn=_secure_client_fn(True), mods=[secaggplus_mod, fixedclipping_mod])

#: The coordinator's ServerApp (``mamori.deploy.flowerapp:server_app``).
server_app = ServerApp()


class _Run:
    """What one ServerApp run shares between its rounds: config, store, registry, audit, checkpoints."""

    def __init__(self, context: Context) -> None:
        from mamori.store import AuditLog, ModelRegistry, PrivacyLedger, open_store

        rc = context.run_config
        self.run_id = int(context.run_id)
        self.num_rounds = int(rc.get("num-rounds", 3))
        self.model_name = str(rc.get("model-name", "consortium-attack-classifier"))
        self.published_name = str(rc.get("published-name", f"{self.model_name}.published"))
        store_url = str(rc.get("store-url", ""))
        if not store_url:
            raise ConfigError(
                "mamori server_app: run config has no store-url; start runs with `mamori coordinator run-round`."
            )
        self.hidden = _hidden(rc.get("hidden", _HIDDEN_DEFAULT))
        self.secure = bool(rc.get("secure-aggregation", False))
        threshold = int(rc.get("reconstruction-threshold", 0))
        dp_epsilon = float(rc.get("member-dp-epsilon", 0.0))
        lr_schedule = str(rc.get("lr-schedule", "constant"))
        tail_average = int(rc.get("tail-average", 0))
        if tail_average > self.num_rounds:
            # `run-round --rounds N` can set a target below the configured tail: average every round there is
            logger.warning("tail-average %d exceeds the run's target round %d: averaging rounds 1..%d",
                           tail_average, self.num_rounds, self.num_rounds)
            tail_average = max(1, self.num_rounds)
        self.config = FederationConfig(
            num_rounds=max(1, self.num_rounds),
            local_epochs=int(rc.get("local-epochs", 1)),
            min_train_nodes=int(rc.get("min-train-nodes", 2)),
            min_evaluate_nodes=int(rc.get("min-evaluate-nodes", 1)),
            min_available_nodes=int(rc.get("min-available-nodes", 2)),
            fraction_evaluate=float(rc.get("fraction-evaluate", 1.0)),
            round_timeout_s=float(rc.get("round-timeout", 120.0)),
            seed=int(rc.get("seed", 1)),
            secure_aggregation=self.secure,
            secagg=SecureAggregationConfig(reconstruction_threshold=threshold or None),
            member_dp=MemberDPConfig(epsilon=dp_epsilon, delta=float(rc.get("member-dp-delta", 1e-5)),
                                     clipping_norm=float(rc.get("member-dp-clip", 1.0))) if dp_epsilon > 0 else None,
            lr_schedule=lr_schedule,  # type: ignore[arg-type]  # validated by FederationConfig
            lr_floor=float(rc.get("lr-floor", 1.0)) if lr_schedule != "constant" else 1.0,
            tail_average=tail_average,
            server_optimizer=str(rc.get("server-optimizer", "fedavg")),  # type: ignore[arg-type]
            server_momentum=float(rc["server-momentum"]) if "server-momentum" in rc else None,
            server_lr=float(rc["server-lr"]) if "server-lr" in rc else None,
            client_algorithm=str(rc.get("client-algorithm", "plain")),  # type: ignore[arg-type]
        )
        self.store = open_store(store_url)
        self.registry = ModelRegistry(self.store)
        self.audit = AuditLog(self.store)
        self.ledger = PrivacyLedger(self.store)
        #: the coordinator's registered.json (member name -> Flower node id), to name the ledger's members
        self.registered_file = str(rc.get("registered-file", ""))
        self.stats_scale = float(rc.get("stats-scale", STATS_SCALE_DEFAULT))
        if not self.stats_scale > 0:
            raise ConfigError(f"mamori server_app: stats-scale must be positive; got {self.stats_scale}.")
        #: the consortium's standardiser as JSON ("" until the stats round or a resumed checkpoint sets it)
        self.standardizer = ""
        self.done = 0
        self.round_start = time.time()

    def set_standardizer(self, summed: np.ndarray, members: int) -> None:
        """Fit the consortium's standardiser from the aggregated stats round and audit it (no statistics logged)."""
        if not np.all(np.isfinite(summed)) or float(np.max(summed[: summed.size // 3])) <= 0:
            raise FederationError(
                "mamori server_app: the stats round produced no usable counts; see the members' SuperNode logs."
            )
        self.standardizer = standardizer_to_json(consortium_standardizer(summed))
        self.audit.append("coordinator", "federation.standardizer", f"model:{self.model_name}",
                          {"run_id": self.run_id, "members": members, "n_features": int(summed.size // 3),
                           "secure_aggregation": self.secure})

    def train_config(self) -> dict[str, Any]:
        """What every train/evaluate message carries besides the weights (the architecture, the standardiser)."""
        out: dict[str, Any] = {"hidden": ",".join(map(str, self.hidden))}
        if self.standardizer:
            out["standardizer"] = self.standardizer
        return out

    def initial(self) -> list[np.ndarray]:
        """The newest checkpoint (resume) or a freshly initialised model registered as round 0."""
        versions = [r.version for r in self.registry.list(self.model_name)]
        if versions:
            self.done = max(versions)
            logger.info("resuming %s from round %d", self.model_name, self.done)
            latest = self.registry.get("latest", name=self.model_name)
            # the weights were trained on this standardisation: keep it (no new stats round)
            self.standardizer = str(latest.record.metadata.get("standardizer", ""))
            return latest.arrays()
        arrays: list[np.ndarray] = new_model(n_features(), self.hidden, self.config.seed).get_weights()
        self.registry.register(self.model_name, 0, arrays, {"round": 0, "federation_sha256": weights_hash(arrays)},
                               actor="coordinator")
        return arrays

    def checkpoint(self, server_round: int, arrays: list[np.ndarray]) -> None:
        """Register the global model after ``server_round`` of this run."""
        global_round = self.done + server_round
        digest = weights_hash(arrays)
        now = time.time()
        self.registry.register(self.model_name, global_round, arrays,
                               {"round": global_round, "federation_sha256": digest, "run_id": self.run_id,
                                "secure_aggregation": self.secure, "round_started_at": self.round_start,
                                "round_ended_at": now, "standardizer": self.standardizer}, actor="coordinator")
        self.round_start = now
        logger.info("round %d checkpointed (%s)", global_round, digest[:12])

    def member_names(self, node_ids: list[int]) -> list[str]:
        """The registered member name of each Flower node id (``node-<id>`` where none is known)."""
        names: dict[int, str] = {}
        if self.registered_file:
            try:
                registered = json.loads(Path(self.registered_file).read_text(encoding="utf-8"))
                names = {int(v["node_id"]): str(name) for name, v in registered.items()}
            except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
                # the spend is still recorded, under the node id the audit's node.register entries name
                logger.warning("mamori server_app: cannot read member names from %s (%s); the privacy ledger "
                               "names members by node id", self.registered_file, exc)
        return [names.get(n, f"node-{n}") for n in node_ids]

    def record_member_dp(self, server_round: int, node_ids: list[int]) -> None:
        """Write this run's member-level DP spend after ``server_round`` to the privacy ledger.

        One row per member whose update is in the round's noisy sum, under ledger run ``flower-<run id>``
        (the run id of the audit's ``federation.run_start``). A run resumed from a checkpoint is a new run
        in the ledger: its totals add up the runs (basic composition, an upper bound).
        """
        member_dp = self.config.member_dp
        if member_dp is None:
            return
        spends = member_dp_spends(member_dp, self.config.num_rounds, server_round, sorted(self.member_names(node_ids)),
                                  server_round=self.done + server_round)
        for spend in spends:
            self.ledger.record(spend.member, spend.server_round, spend.epsilon, spend.delta, spend.mechanism,
                               run_id=f"flower-{self.run_id}", unit=spend.unit,
                               noise_multiplier=spend.noise_multiplier, steps=spend.steps)

    def fail(self, phase: str, server_round: int, ok: int, failed: int, details: dict[str, Any]) -> None:
        """Audit failed members and stop the run when fewer than the minimum answered."""
        needed = self.config.min_evaluate_nodes if phase == "evaluate" else self.config.min_train_nodes
        rnd = self.done + server_round
        if failed:
            self.audit.append("coordinator", "federation.member_failed", f"model:{self.model_name}",
                              {"round": rnd, "phase": phase, "failed": failed, "ok": ok, **details})
        if ok < needed:
            self.audit.append("coordinator", "federation.round_failed", f"model:{self.model_name}",
                              {"round": rnd, "phase": phase, "ok": ok, "needed": needed})
            raise FederationError(
                f"mamori server_app: round {rnd} {phase}: {ok} member(s) answered successfully, at least {needed} "
                f"required (min_{'evaluate' if phase == 'evaluate' else 'train'}_nodes); {failed} failed or "
                f"timed out. The last completed round ({rnd - 1}) "
                "stays checkpointed; see the members' SuperNode logs."
            )

    def publish(self) -> None:
        """Publish the run's model for the nodes (registry name ``published-name``).

        The last round's global model, or with ``tail-average`` R > 1 the mean of the global models of the last R
        rounds, read back from their checkpoints (so a run that resumed mid-tail averages the same rounds).
        """
        latest = self.registry.get("latest", name=self.model_name)
        last = latest.arrays()
        tail = TailAverage(latest.record.version, self.config.tail_average)
        if tail.active:
            newest: dict[int, str] = {}
            for record in self.registry.list(self.model_name):  # oldest first: a re-registered round's newest wins
                newest[record.version] = record.sha256
            for version in range(tail.first_round, latest.record.version + 1):
                if version in newest:
                    tail.add(version, self.registry.get(newest[version], name=self.model_name).arrays())
        arrays = tail.result(last)
        meta: dict[str, Any] = {"round": latest.record.version, "federation_sha256": weights_hash(arrays),
                                "run_id": self.run_id, "model_name": self.model_name,
                                "checkpoint_sha256": latest.record.sha256,
                                "standardizer": str(latest.record.metadata.get("standardizer", "")),
                                "tail_average": max(tail.tail, 1)}
        if tail.active:
            meta["averaged_rounds"] = [tail.first_round, latest.record.version]
        self.registry.register(self.published_name, latest.record.version, arrays, meta, actor="coordinator")
        logger.info("published %s round %d for the members (mean of the last %d round(s))", self.model_name,
                    latest.record.version, max(tail.tail, 1))


def _stats_content(run: _Run, limit: float = 0.0) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The stats round's message: a zero vector of the statistics' shape and the phase/scale config."""
    zeros = [np.zeros(3 * n_features(), dtype=np.float64)]
    config: dict[str, Any] = {"phase": _STATS_PHASE, "stats-scale": run.stats_scale, "server-round": run.done + 1}
    if limit > 0:
        config["stats-limit"] = float(limit)
    return zeros, config


def _plain_stats(grid: Grid, run: _Run) -> None:
    """The stats round over Flower's message API: the members' vectors are summed (as FedAvg sees weights)."""
    from flwr.common import MessageType

    config = run.config
    deadline = time.time() + config.round_timeout_s
    node_ids = list(grid.get_node_ids())
    while len(node_ids) < config.min_available_nodes and time.time() < deadline:
        time.sleep(0.5)
        node_ids = list(grid.get_node_ids())
    zeros, cfg = _stats_content(run)
    messages = [Message(RecordDict({"arrays": ArrayRecord(zeros), "config": ConfigRecord(cfg)}),
                        dst_node_id=node, message_type=MessageType.TRAIN) for node in node_ids]
    replies = list(grid.send_and_receive(messages, timeout=config.round_timeout_s))
    ok = [r for r in replies if not r.has_error() and "arrays" in r.content.array_records]
    ok_nodes = {r.metadata.src_node_id for r in ok}
    run.fail("stats", 1, len(ok), len(set(node_ids) - ok_nodes),
             {"errors": sorted({r.error.reason[:200] for r in replies if r.has_error()}),
              "no_reply_node_ids": [str(n) for n in sorted(set(node_ids) - ok_nodes)]})
    summed = np.sum([r.content.array_records["arrays"].to_numpy_ndarrays()[0].astype(np.float64) for r in ok], axis=0)
    run.set_standardizer(summed, len(ok))


def _plain_rounds(grid: Grid, run: _Run, initial: list[np.ndarray], remaining: int) -> None:
    """FedAvg rounds with Flower's message API (the members' replies are seen individually)."""
    config = run.config
    if not run.standardizer:
        _plain_stats(grid, run)
    sent: dict[str, set[int]] = {"train": set(), "evaluate": set()}

    def quorum(phase: str, server_round: int, replies: list[Message]) -> None:
        ok_nodes = {r.metadata.src_node_id for r in replies if not r.has_error()}
        ok = len(ok_nodes)
        missing = sorted(sent[phase] - {r.metadata.src_node_id for r in replies})
        # members that did not deliver (an error reply Flower makes for a lost node may not carry its id)
        failed = len(sent[phase] - ok_nodes)
        errors = sorted({r.error.reason[:200] for r in replies if r.has_error()})
        run.fail(phase, server_round, ok, failed, {"errors": errors, "no_reply_node_ids": [str(n) for n in missing]})

    # the members' learning-rate factor of each round, counted over resumed runs (lr-schedule)
    strategy = schedule_train_config(build_strategy(config, quorum), config, round_offset=run.done)
    configure = {"train": strategy.configure_train, "evaluate": strategy.configure_evaluate}

    def _recording(phase: str) -> Any:
        def wrapped(server_round: int, *args: Any, **kwargs: Any) -> list[Message]:
            messages = list(configure[phase](server_round, *args, **kwargs))
            sent[phase] = {m.metadata.dst_node_id for m in messages}
            # Flower numbers this run's rounds from 1; members see the consortium's round, counted over resumed
            # runs as the checkpoints, the SecAgg+ path and the lr schedule count it (it labels the node's
            # global.npz and derives the member's per-round seed)
            for message in messages:
                round_config = message.content.config_records.get("config")
                if round_config is not None:
                    round_config["server-round"] = run.done + server_round
            return messages

        return wrapped

    strategy.configure_train = _recording("train")  # type: ignore[method-assign]
    strategy.configure_evaluate = _recording("evaluate")  # type: ignore[method-assign]

    def end_of_round(server_round: int, record: ArrayRecord) -> MetricRecord | None:
        if server_round > 0:
            run.checkpoint(server_round, record.to_numpy_ndarrays())
        return None

    strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord([np.ascontiguousarray(a) for a in initial]),
        num_rounds=remaining,
        timeout=config.round_timeout_s,
        train_config=ConfigRecord({"local-epochs": config.local_epochs, **run.train_config()}),
        evaluate_config=ConfigRecord(run.train_config()),
        evaluate_fn=end_of_round,
    )


def _secure_rounds(grid: Grid, context: Context, run: _Run, initial: list[np.ndarray], remaining: int) -> None:
    """SecAgg+ rounds (Flower's ``SecAggPlusWorkflow``): the coordinator only ever sees the sum of the updates.

    Optional member-level DP: members clip their update (``fixedclipping_mod``), the coordinator adds Gaussian
    noise to the unmasked sum (Flower's ``DifferentialPrivacyClientSideFixedClipping``).
    """
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.app_utils import start_update_client_manager_thread
    from flwr.server.strategy import FedAvg as LegacyFedAvg
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey
    from flwr.server.workflow.default_workflows import default_evaluate_workflow

    from mamori.federation.secagg import legacy_strategy_class, secure_workflow

    config = run.config
    seen: dict[str, int] = {}
    stats_round: dict[str, Any] = {}  # non-empty while the stats round runs: its fit config

    sampled: dict[str, set[int]] = {"train": set()}
    included: dict[str, list[int]] = {"train": []}  # the members whose update is in the round's sum

    # FedAvg or the server optimizer, with SCAFFOLD's control variate in the masked vector when configured (one
    # implementation with the in-process run); the stats round below bypasses both and takes the plain mean.
    base, optimizer_kwargs = legacy_strategy_class(config, initial)

    class _Quorum(base):  # type: ignore[misc, valid-type]
        def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
            if stats_round:
                pairs = LegacyFedAvg.configure_fit(self, server_round, parameters, client_manager)
            else:
                pairs = super().configure_fit(server_round, parameters, client_manager)
            sampled["train"] = {int(proxy.node_id) for proxy, _ in pairs}
            return pairs

        def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
            if not stats_round:
                seen["examples"] = max((int(r.num_examples) for _, r in results), default=0)
                included["train"] = [int(proxy.node_id) for proxy, _ in results]
            # SecAgg+ passes only the members whose masked update was unmasked; the rest dropped out
            # (count by node: Flower may record one dropout as several failures)
            dropped = sorted(sampled["train"] - {int(proxy.node_id) for proxy, _ in results})
            seen["members"] = len(results)
            run.fail("stats" if stats_round else "train", max(1, server_round), len(results), len(dropped),
                     {"errors": sorted({str(f)[:200] for f in failures}),
                      "no_reply_node_ids": [str(n) for n in dropped]})
            if stats_round:
                return LegacyFedAvg.aggregate_fit(self, server_round, results, failures)
            return super().aggregate_fit(server_round, results, failures)

        def aggregate_evaluate(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
            run.fail("evaluate", server_round, len(results), len(failures),
                     {"errors": sorted({str(f)[:200] for f in failures})})
            return super().aggregate_evaluate(server_round, results, failures)

    inner = _Quorum(
        fraction_fit=config.fraction_train,
        fraction_evaluate=config.fraction_evaluate,
        min_fit_clients=config.min_train_nodes,
        min_evaluate_clients=max(1, config.min_evaluate_nodes),
        min_available_clients=config.min_available_nodes,
        on_fit_config_fn=lambda r: dict(stats_round) or {"server-round": run.done + r,
                                                         "local-epochs": config.local_epochs, **run.train_config(),
                                                         **config.round_train_config(run.done + r)},
        on_evaluate_config_fn=lambda r: {"server-round": run.done + r, **run.train_config()},
        accept_failures=True,
        fit_metrics_aggregation_fn=lambda _: {},
        evaluate_metrics_aggregation_fn=lambda _: {},
        **optimizer_kwargs,
    )
    strategy, workflow = secure_workflow(inner, config, max_weight=1e6)
    threshold = workflow.reconstruction_threshold  # for the error messages
    manager = SimpleClientManager()
    thread, f_stop, c_done = start_update_client_manager_thread(grid, manager)
    c_done.wait(timeout=config.round_timeout_s)
    legacy = LegacyContext(context=context, config=ServerConfig(num_rounds=remaining, round_timeout=None),
                           strategy=strategy, client_manager=manager)
    cfg = ConfigRecord({WorkflowKey.START_TIME: time.perf_counter(), WorkflowKey.CURRENT_ROUND: 0})
    legacy.state.config_records[MAIN_CONFIGS_RECORD] = cfg
    try:
        if not run.standardizer and config.member_dp is not None:
            # the members' clipping (fixedclipping_mod) and the coordinator's noise would distort the sums
            logger.warning("member-level DP run: no stats round, members train on raw features")
        elif not run.standardizer:
            # the stats round: the same SecAgg+ workflow sums the members' statistics vectors (weight 1 each,
            # so the unmasked result is their sum over the number of members; the factor cancels)
            zeros, stats_cfg = _stats_content(run, limit=config.secagg.clipping_range)
            stats_round.update(stats_cfg)
            before = legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord(zeros)
            saved = (workflow.max_weight, workflow.quantization_range, workflow.modulus_range)
            # a finer fixed-point grid than the weights need: a member's rounding is stats-scale * 16 / 2**30
            # (the masked sum of fewer than 4096 members still fits the 2**42 modulus)
            workflow.max_weight, workflow.quantization_range = 1.0, _STATS_QRANGE
            workflow.modulus_range = _STATS_MODULUS
            try:
                workflow(grid, legacy)
            finally:
                workflow.max_weight, workflow.quantization_range, workflow.modulus_range = saved
                stats_round.clear()
            if legacy.state.array_records[MAIN_PARAMS_RECORD] is before:
                run.fail("stats", 1, 0, config.min_train_nodes,
                         {"errors": ["secure aggregation of the statistics halted (fewer members than the "
                                     f"reconstruction threshold {threshold})"]})
            summed = legacy.state.array_records[MAIN_PARAMS_RECORD].to_numpy_ndarrays()[0]
            run.set_standardizer(np.asarray(summed, dtype=np.float64), int(seen.get("members", 0)))
        legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord([np.ascontiguousarray(a) for a in initial])
        for server_round in range(1, remaining + 1):
            cfg[WorkflowKey.CURRENT_ROUND] = server_round
            before = legacy.state.array_records[MAIN_PARAMS_RECORD]
            workflow(grid, legacy)
            after = legacy.state.array_records[MAIN_PARAMS_RECORD]
            if after is before:
                run.fail("train", server_round, 0, config.min_train_nodes,
                         {"errors": [f"secure aggregation halted: fewer than the reconstruction threshold "
                                     f"({threshold}) members stayed to unmask the sum, or none trained"]})
            if config.member_dp is None and seen.get("examples", 0) > 0:
                workflow.max_weight = float(4 * seen["examples"])  # precision of the masked weighted sum
            if config.fraction_evaluate > 0:
                default_evaluate_workflow(grid, legacy)
            arrays = [np.asarray(a, dtype=ref.dtype) for a, ref in zip(after.to_numpy_ndarrays(), initial, strict=True)]
            legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord(arrays)
            # spend first: a crash between the two re-runs the round on resume (counted twice, never missed)
            run.record_member_dp(server_round, included["train"])
            run.checkpoint(server_round, arrays)
    finally:
        f_stop.set()
        thread.join(timeout=5)


@server_app.main()
def _server_main(grid: Grid, context: Context) -> None:
    run = _Run(context)
    try:
        initial = run.initial()
        remaining = run.num_rounds - run.done
        run.audit.append("coordinator", "federation.run_start", f"model:{run.model_name}",
                         {"run_id": run.run_id, "resume_from": run.done, "rounds": max(0, remaining),
                          "secure_aggregation": run.secure, "member_dp": run.config.member_dp is not None,
                          "server_optimizer": run.config.server_optimizer,
                          "client_algorithm": run.config.client_algorithm})
        if remaining <= 0:
            logger.info("%s already has %d rounds; nothing to do", run.model_name, run.done)
        elif run.secure:
            _secure_rounds(grid, context, run, initial, remaining)
        else:
            _plain_rounds(grid, run, initial, remaining)
        run.publish()
        run.audit.append("coordinator", "federation.run_end", f"model:{run.model_name}",
                         {"run_id": run.run_id, "rounds_done": run.num_rounds})
    finally:
        run.store.close()
