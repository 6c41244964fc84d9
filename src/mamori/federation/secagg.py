"""Secure aggregation: Flower's SecAgg+ behind mamori's federation interface.

In Flower 1.41 SecAgg+ exists only in the older API: a ``SecAggPlusWorkflow`` on the server (a
``LegacyContext`` holding an old-style ``flwr.server.strategy.FedAvg``) and ``secaggplus_mod`` in front of a
``NumPyClient`` on every member. This module adapts both to mamori: :class:`SecureMember` turns any
:class:`~mamori.federation.LocalTrainer` into a ``NumPyClient``, and :func:`run_secure_federation` is a
second server main that drives SecAgg+ round by round over the same
:class:`~mamori.federation.inprocess.InProcessGrid`, then builds the same :class:`RoundReport` and
:class:`FederationResult` as the plain path. ``run_federation`` calls it when
``FederationConfig.secure_aggregation`` is on; callers never see Flower.

What the coordinator sees per member and round: public keys, encrypted key shares it cannot read, one
*masked* quantized weight vector (uniformly random to anyone without the masks), the member's scalar
metrics and example count (in clear), and key shares that unmask the *sum* only.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flwr.compat.common.recorddict_compat as compat
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.client import NumPyClient
from flwr.clientapp import ClientApp
from flwr.common import Scalar, ndarrays_to_parameters, parameters_to_ndarrays
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_STATE
from flwr.server import LegacyContext, ServerConfig
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.compat.grid_client_proxy import GridClientProxy
from flwr.server.strategy import FedAdam as LegacyFedAdam
from flwr.server.strategy import FedAvg as LegacyFedAvg
from flwr.server.strategy import FedAvgM as LegacyFedAvgM
from flwr.server.strategy import FedYogi as LegacyFedYogi
from flwr.server.strategy import Strategy as LegacyStrategy
from flwr.server.workflow import SecAggPlusWorkflow
from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
from flwr.server.workflow.constant import Key as WorkflowKey
from flwr.server.workflow.default_workflows import default_evaluate_workflow
from flwr.serverapp import Grid, ServerApp

from mamori.errors import ConfigError, FederationError, PrivacyBudgetError
from mamori.federation.clientapp import NUM_EXAMPLES_KEY, checked_update, member_seed, scaffold_step
from mamori.federation.config import FederationConfig
from mamori.federation.inprocess import Delivery, InProcessGrid, new_run_id, server_process_state
from mamori.federation.privacy import member_dp_noise, secagg_parameters
from mamori.federation.report import FederationResult, MemberRound, RoundReport, weighted_mean
from mamori.federation.schedule import TailAverage
from mamori.federation.secagg_masks import install as install_secure_masks
from mamori.federation.trainer import ConfigValue, LocalTrainer
from mamori.federation.weights import check_arrays, weights_hash

__all__ = [
    "SecureMember",
    "build_secure_client_app",
    "legacy_strategy_class",
    "run_secure_federation",
    "secure_workflow",
]

logger = logging.getLogger(__name__)

install_secure_masks()  # Flower's own masks come from 32-bit seeds (mamori.federation.secagg_masks)

_FIRST_NODE_ID = 1001
_SECAGG_STATE_KEY = RECORD_KEY_STATE  # where secaggplus_mod keeps its round state (max_weight among it)
_FIRST_MAX_WEIGHT = 1e6  # SecAgg+ weight range of the first round when max_weight adapts
_RENAMES = {"server-round": "server_round", "proximal-mu": "proximal_mu", "local-epochs": "local_epochs"}
#: Train-config key of a SCAFFOLD round under SecAgg+: its parameters hold the weights followed by ``c``.
CLIENT_ALGORITHM_KEY = "client-algorithm"
_RoundCallback = Callable[[RoundReport], None]
_CheckpointCallback = Callable[[int, list[np.ndarray], str], None]


class SecureMember(NumPyClient):
    """A :class:`LocalTrainer` as Flower's older ``NumPyClient`` (what ``secaggplus_mod`` wraps).

    Parameters
    ----------
    name : str
        The member's name (errors, reports).
    trainer : LocalTrainer
        Trains and evaluates on the member's own data.
    index : int
        The member's position (derives its per-round seed).
    seed : int
        The run's seed.
    uniform_weight : bool, default=False
        Report weight 1 instead of the example count (member-level DP needs equal weights).
    max_weight : float, default=1e6
        Largest weight SecAgg+ can encode (``SecureAggregationConfig.max_weight``).
    clipping_range : float or None, default=None
        SecAgg+'s clipping range (``SecureAggregationConfig.clipping_range``). SecAgg+ clips each value of the update
        *scaled by* ``weight / max_weight`` to it before masking, silently; a warning names a member whose scaled
        update leaves it. None: no check.
    node_state : RecordDict or None, default=None
        The member's Flower context state, where ``secaggplus_mod`` keeps the round's ``max_weight`` (needed for the
        clipping check).
    """

    def __init__(
        self,
        name: str,
        trainer: LocalTrainer,
        index: int,
        seed: int,
        *,
        uniform_weight: bool = False,
        max_weight: float = 1e6,
        clipping_range: float | None = None,
        node_state: RecordDict | None = None,
    ) -> None:
        self.name = name
        self.trainer = trainer
        self.index = index
        self.seed = seed
        self.uniform_weight = uniform_weight
        self.max_weight = max_weight
        self.clipping_range = clipping_range
        self.node_state = node_state

    def _config(self, config: Mapping[str, Scalar]) -> dict[str, ConfigValue]:
        out: dict[str, ConfigValue] = {}
        for key, value in config.items():
            if isinstance(value, (int, float, str, bool)):
                out[_RENAMES.get(key, key)] = value
        out.setdefault("server_round", 0)
        out.setdefault("proximal_mu", 0.0)
        out.setdefault("local_epochs", 1)
        out["seed"] = member_seed(self.seed, int(out["server_round"]), self.index)
        return out

    def get_parameters(self, config: dict[str, Scalar]) -> list[np.ndarray]:
        """Not used: the coordinator always sends the initial weights."""
        raise FederationError(f"member {self.name!r}: get_parameters is not part of mamori's protocol.")

    def fit(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[list[np.ndarray], int, dict[str, Scalar]]:
        """Train locally; return weights, aggregation weight and metrics (``num-examples`` among them).

        In a SCAFFOLD round (the coordinator's config says ``client-algorithm = "scaffold"``) the parameters are
        the global weights followed by the server's control variate ``c``, and the returned vector is the weights
        followed by ``c_i(new) - c_i(old)`` from ``trainer.fit_scaffold``, so both are masked together.
        """
        where = f"member {self.name!r} (train)"
        arrays = [np.asarray(p) for p in parameters]
        if config.get(CLIENT_ALGORITHM_KEY) == "scaffold":
            new_arrays, num_examples, metrics = self._fit_scaffold(arrays, self._config(config), where)
        else:
            new_arrays, num_examples, metrics = self.trainer.fit(arrays, self._config(config))
            new_arrays = checked_update(new_arrays, [a.shape for a in arrays], where, "fit returned arrays")
        if int(num_examples) <= 0:
            raise FederationError(f"{where}: reported {num_examples} examples; at least one is needed.")
        out: dict[str, Scalar] = {k: float(v) for k, v in metrics.items()}
        out[NUM_EXAMPLES_KEY] = int(num_examples)
        weight = 1 if self.uniform_weight else int(min(int(num_examples), self.max_weight))
        self._warn_clipped(new_arrays, weight, config)
        # float64: Flower scales the update by examples / max_weight and adds the clipping range before quantizing
        # in the arrays' own dtype; in float32 that sum keeps 24 bits, so the grid would be 2**24 levels, not
        # quantization_range (the masked vector is int64 on the wire either way).
        return [np.asarray(a, dtype=np.float64) for a in new_arrays], weight, out

    def _fit_scaffold(
        self, vector: list[np.ndarray], config: dict[str, ConfigValue], where: str
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """SCAFFOLD's member step on a vector of weights followed by ``c``; returns weights followed by the delta."""
        if len(vector) % 2:
            raise FederationError(
                f"{where}: a SCAFFOLD train message holds the weights followed by the control variate, so an even "
                f"number of arrays; got {len(vector)}."
            )
        half = len(vector) // 2
        arrays, control = vector[:half], vector[half:]
        shapes = [a.shape for a in arrays]
        if [c.shape for c in control] != shapes:
            raise FederationError(
                f"{where}: the control variate's shapes {[c.shape for c in control]} differ from the weights' "
                f"{shapes}."
            )
        new_arrays, delta, num_examples, metrics = scaffold_step(self.trainer, arrays, control, config, where)
        return [*new_arrays, *delta], num_examples, metrics

    def _warn_clipped(self, vector: list[np.ndarray], weight: int, config: Mapping[str, Scalar]) -> None:
        # secaggplus_mod scales the update by weight / max_weight and clips it to the clipping range before
        # quantizing, silently; the mean would then differ from the plain mean, so a member whose scaled update
        # leaves the range says so. max_weight is in the mod's state for the round (set at its setup stage).
        if self.clipping_range is None or self.node_state is None:
            return
        secagg_state = self.node_state.config_records.get(_SECAGG_STATE_KEY)
        max_weight = float(secagg_state.get("max_weight", 0.0)) if secagg_state is not None else 0.0
        if max_weight <= 0:
            return
        ratio = weight / max_weight
        outside = sum(int(np.count_nonzero(np.abs(a) * ratio > self.clipping_range)) for a in vector)
        if outside:
            logger.warning(
                "member %r, round %s: %d of %d values of its update, scaled by its weight %d / %g, lie outside "
                "SecAgg+'s clipping range ±%g and are clipped before masking; raise "
                "SecureAggregationConfig.clipping_range.",
                self.name, config.get("server-round", "?"), outside, sum(a.size for a in vector), weight,
                max_weight, self.clipping_range,
            )

    def evaluate(
        self, parameters: list[np.ndarray], config: dict[str, Scalar]
    ) -> tuple[float, int, dict[str, Scalar]]:
        """Evaluate the global weights on the member's evaluation split."""
        loss, num_examples, metrics = self.trainer.evaluate([np.asarray(p) for p in parameters], self._config(config))
        return float(loss), int(num_examples), {k: float(v) for k, v in metrics.items()}


def build_secure_client_app(
    member_for_node: Callable[[int], tuple[str, LocalTrainer, int]],
    config: FederationConfig,
) -> ClientApp:
    """The ClientApp every member runs under secure aggregation.

    Parameters
    ----------
    member_for_node : callable
        Maps a node id to ``(name, trainer, index)``.
    config : FederationConfig
        The run's config (seed, SecAgg+ and member-level DP settings).

    Returns
    -------
    flwr.clientapp.ClientApp
        ``secaggplus_mod`` (and, with member-level DP, ``fixedclipping_mod`` inside it, so the clipped
        update is what gets masked) in front of a :class:`SecureMember`.
    """
    from flwr.client.mod import fixedclipping_mod, secaggplus_mod

    mods = [secaggplus_mod]
    if config.member_dp is not None:
        mods.append(fixedclipping_mod)

    def client_fn(context: Context) -> Any:
        name, trainer, index = member_for_node(context.node_id)
        member = SecureMember(
            name,
            trainer,
            index,
            config.seed,
            uniform_weight=config.member_dp is not None,
            max_weight=1.0 if config.member_dp is not None else float(config.secagg.max_weight or 1e12),
            clipping_range=config.secagg.clipping_range,
            node_state=context.state,
        )
        return member.to_client()

    return ClientApp(client_fn=client_fn, mods=mods)


class _LegacyQuorumMixin:
    """mamori's quorum check on the (already unmasked) results, in front of an older-API Flower strategy."""

    quorum: Callable[[str, int, int], None] | None = None

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        if self.quorum is not None:
            self.quorum("train", server_round, len(results))
        return super().aggregate_fit(server_round, results, failures)  # type: ignore[misc]

    def aggregate_evaluate(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        if self.quorum is not None:
            self.quorum("evaluate", server_round, len(results))
        return super().aggregate_evaluate(server_round, results, failures)  # type: ignore[misc]


class _QuorumFedAvgM(_LegacyQuorumMixin, LegacyFedAvgM):
    """Flower's older FedAvgM: SecAgg+ hands it the unmasked mean, the momentum step follows."""


class _QuorumFedAdam(_LegacyQuorumMixin, LegacyFedAdam):
    """Flower's older FedAdam on the unmasked mean."""


class _QuorumFedYogi(_LegacyQuorumMixin, LegacyFedYogi):
    """Flower's older FedYogi on the unmasked mean."""


class _QuorumFedAvg(_LegacyQuorumMixin, LegacyFedAvg):
    """Flower's older FedAvg plus mamori's quorum check on the (already unmasked) results."""


class _LegacyScaffoldMixin:
    """SCAFFOLD's server side under SecAgg+, in front of an older-API Flower strategy.

    The plain path sends the control variate as a second ArrayRecord (``mamori.federation.strategy``), but
    SecAgg+ masks exactly one parameter vector per member, and a member's delta in clear would reveal its mean
    gradient. So the control variate rides inside that vector: each train message's parameters are the global
    weights followed by ``c``, each member masks its weights followed by ``c_i(new) - c_i(old)``, and SecAgg+'s
    example-weighted mean yields the mean weights (handed to the wrapped strategy as usual) and
    ``sum_i w_i delta_i``, of which ``sampled / members`` is added to ``c`` - the plain path's update.
    """

    control: list[np.ndarray] | None = None
    num_members: int = 0  # the consortium's size N (the largest number of members seen available)

    def configure_fit(self, server_round: int, parameters: Any, client_manager: Any) -> Any:
        self.num_members = max(self.num_members, int(client_manager.num_available()))
        weights = parameters_to_ndarrays(parameters)
        if self.control is None:
            self.control = [np.zeros_like(a, dtype=np.float32) for a in weights]
        vector = [np.ascontiguousarray(a) for a in (*weights, *self.control)]
        pairs = super().configure_fit(server_round, ndarrays_to_parameters(vector), client_manager)  # type: ignore[misc]
        for _, fit_ins in pairs:
            fit_ins.config[CLIENT_ALGORITHM_KEY] = "scaffold"  # tells SecureMember how to read the vector
        return pairs

    def aggregate_fit(self, server_round: int, results: list[Any], failures: list[Any]) -> Any:
        if results and self.control is not None:
            k = len(self.control)
            vector = parameters_to_ndarrays(results[0][1].parameters)  # SecAgg+ gives every result the mean
            if len(vector) != 2 * k:
                raise FederationError(
                    f"SCAFFOLD under SecAgg+, round {server_round}: the unmasked mean holds {len(vector)} arrays, "
                    f"expected {2 * k} (the weights followed by the control-variate deltas)."
                )
            weights = ndarrays_to_parameters(vector[:k])
            for _, fitres in results:
                fitres.parameters = weights
            scale = len(results) / max(self.num_members, len(results))
            self.control = [
                np.asarray(c + scale * d, dtype=np.float32) for c, d in zip(self.control, vector[k:], strict=True)
            ]
        return super().aggregate_fit(server_round, results, failures)  # type: ignore[misc]


@functools.cache
def _legacy_scaffold_class(cls: type[_LegacyQuorumMixin]) -> type[_LegacyQuorumMixin]:
    """``cls`` with SCAFFOLD's control variate layered over its aggregation (one class per strategy)."""
    return type(f"_Scaffold{cls.__name__}", (_LegacyScaffoldMixin, cls), {"__doc__": f"SCAFFOLD over {cls.__name__}."})


def legacy_strategy_class(config: FederationConfig, initial: list[np.ndarray]) -> tuple[type, dict[str, Any]]:
    """The older-API Flower strategy class of a SecAgg+ run, and the arguments it needs besides the common ones.

    FedAvg or ``config.server_optimizer`` (started from ``initial``), with mamori's quorum check and, when
    ``config.client_algorithm`` is ``"scaffold"``, SCAFFOLD's control variate layered over it. Shared by the
    in-process run and the deployment's ServerApp (which subclasses it for its statistics round).

    Parameters
    ----------
    config : FederationConfig
        ``server_optimizer``, ``server_momentum``, ``server_lr`` and ``client_algorithm``.
    initial : list of numpy.ndarray
        The run's initial global weights (a server optimizer steps from them).

    Returns
    -------
    tuple of (type, dict)
        The class and its extra keyword arguments (``initial_parameters`` and the optimizer's settings).
    """
    server_lr, server_momentum = config.server_settings()
    kwargs: dict[str, Any] = {}
    cls: type[_LegacyQuorumMixin]
    if config.server_optimizer == "fedavg":
        cls = _QuorumFedAvg
    else:
        kwargs["initial_parameters"] = ndarrays_to_parameters([np.ascontiguousarray(a) for a in initial])
        if config.server_optimizer == "fedavgm":
            cls = _QuorumFedAvgM
            kwargs.update(server_learning_rate=server_lr, server_momentum=server_momentum)
        else:
            cls = _QuorumFedAdam if config.server_optimizer == "fedadam" else _QuorumFedYogi
            kwargs.update(eta=server_lr, beta_1=server_momentum)
    if config.client_algorithm == "scaffold":
        cls = _legacy_scaffold_class(cls)
    return cls, kwargs


def _reply_fit(reply: Message | None) -> tuple[int, dict[str, float]] | None:
    """Examples and metrics of a SecAgg+ stage reply that carries the member's FitRes, else None."""
    if reply is None or reply.has_error() or "fitres.status" not in reply.content.config_records:
        return None
    fitres = compat.recorddict_to_fitres(reply.content, keep_input=True)
    metrics = {k: float(v) for k, v in fitres.metrics.items() if isinstance(v, (int, float))}
    return int(metrics.pop(NUM_EXAMPLES_KEY, fitres.num_examples)), metrics


def _reply_evaluate(reply: Message | None) -> tuple[float, int, dict[str, float]] | None:
    if reply is None or reply.has_error():
        return None
    res = compat.recorddict_to_evaluateres(reply.content)
    metrics = {k: float(v) for k, v in res.metrics.items() if isinstance(v, (int, float))}
    return float(res.loss), int(res.num_examples), metrics


def _member_rounds(names: Sequence[str], node_ids: Sequence[int], deliveries: list[Delivery]) -> list[MemberRound]:
    rows: dict[int, dict[str, Any]] = {
        n: {"member": name, "node_id": n, "bytes_down": 0, "bytes_up": 0, "seconds": 0.0}
        for name, n in zip(names, node_ids, strict=True)
    }
    for d in deliveries:
        row = rows[d.node_id]
        row["bytes_down"] += d.bytes_down
        row["bytes_up"] += d.bytes_up
        row["seconds"] += d.seconds
        if d.status != "ok":
            row["error"] = d.error
        if d.message_type.startswith("train"):
            if d.status != "ok":
                row["train_status"] = d.status
                continue
            row.setdefault("train_status", "ok")
            fit = _reply_fit(d.reply)
            if fit is not None:
                row["train_examples"], row["train_metrics"] = fit
        elif d.message_type.startswith("evaluate"):
            ev = _reply_evaluate(d.reply)
            if ev is None:
                row["evaluate_status"] = d.status
                continue
            loss, examples, metrics = ev
            row.update(evaluate_status="ok", evaluate_loss=loss, evaluate_examples=examples, evaluate_metrics=metrics)
    out = []
    for n in node_ids:
        row = rows[n]
        if row.get("train_status") == "ok" and "train_metrics" not in row:
            row["train_status"] = "error"  # answered the key exchange but never delivered a masked update
            row.setdefault("error", "dropped out before sending its masked update")
        out.append(MemberRound(**row))
    return out


def _check_inputs(
    trainers: Sequence[LocalTrainer], config: FederationConfig, member_names: Sequence[str] | None
) -> list[str]:
    from mamori.federation.run import _check_run_inputs

    names = _check_run_inputs(trainers, config, member_names)
    if config.strategy not in ("fedavg", "fedprox"):
        raise ConfigError(
            f"run_federation: secure aggregation supports strategy 'fedavg' or 'fedprox', got {config.strategy!r}."
        )
    if len(trainers) > config.secagg.max_members():
        # each member's quantized values reach quantization_range: a larger sum would wrap around the modulus
        raise ConfigError(
            f"run_federation: {len(trainers)} members exceed what SecAgg+'s masked sum can hold with "
            f"quantization_range={config.secagg.quantization_range} and modulus_range={config.secagg.modulus_range} "
            f"({config.secagg.max_members()} members); raise modulus_range or lower quantization_range."
        )
    if len(trainers) < 2 or config.min_train_nodes < 2:
        raise ConfigError(
            "run_federation: secure aggregation needs at least 2 members and min_train_nodes >= 2 "
            f"(got {len(trainers)} members, min_train_nodes={config.min_train_nodes}); a sum of one update is "
            "that update."
        )
    return names


class _SizedSecAggPlusWorkflow(SecAggPlusWorkflow):  # type: ignore[misc]
    """Flower's SecAgg+ workflow with the neighbourhood and threshold sized per round by :func:`secagg_parameters`.

    Flower resolves ``num_shares`` from the number of members the strategy samples, inside its setup stage; the
    sizes mamori wants also depend on ``min_train_nodes``, so they are set just after the strategy has sampled.
    """

    def __init__(self, config: FederationConfig, **kwargs: Any) -> None:
        first = secagg_parameters(config.secagg, max(2, config.min_train_nodes), config.min_train_nodes)
        super().__init__(num_shares=first.num_shares if first.num_shares > 2 else 1.0,
                         reconstruction_threshold=first.threshold if first.threshold < first.num_shares else 1.0,
                         **kwargs)
        self.secagg = config.secagg
        self.min_train_nodes = config.min_train_nodes
        self.sizes = first

    def setup_stage(self, grid: Grid, context: LegacyContext, state: Any) -> bool:
        """Size the round for the members the strategy samples, then run Flower's setup stage."""
        strategy = context.strategy
        sample = strategy.configure_fit

        def configure_fit(*args: Any, **kwargs: Any) -> Any:
            pairs = sample(*args, **kwargs)
            self.sizes = secagg_parameters(self.secagg, len(pairs), self.min_train_nodes)
            self.num_shares, self.reconstruction_threshold = self.sizes.num_shares, self.sizes.threshold
            logger.info(
                "SecAgg+ round: %d members, neighbourhoods of %d, threshold %d (survives %d dropouts, "
                "%d colluding members)", self.sizes.sampled, self.sizes.num_shares, self.sizes.threshold,
                self.sizes.dropouts_tolerated, self.sizes.collusion_tolerated,
            )
            return pairs

        strategy.configure_fit = configure_fit
        try:
            return bool(super().setup_stage(grid, context, state))
        finally:
            del strategy.configure_fit


def secure_workflow(inner: LegacyStrategy, config: FederationConfig, *,
                    max_weight: float) -> tuple[LegacyStrategy, SecAggPlusWorkflow]:
    """The strategy and Flower ``SecAggPlusWorkflow`` of a SecAgg+ run, from mamori's federation settings.

    Shared by the in-process run and the deployment's ServerApp, so both mask, threshold and add member-level
    noise the same way.

    Parameters
    ----------
    inner : flwr.server.strategy.Strategy
        The older-API aggregation strategy (FedAvg with mamori's quorum check, or a server optimizer).
    config : FederationConfig
        ``secagg`` settings, ``member_dp``, ``min_train_nodes``, ``num_rounds`` and ``round_timeout_s``.
    max_weight : float
        Largest aggregation weight SecAgg+ encodes (ignored with member-level DP, where every member weighs 1).

    Returns
    -------
    tuple of (flwr.server.strategy.Strategy, SecAggPlusWorkflow)
        ``inner``, wrapped in Flower's ``DifferentialPrivacyClientSideFixedClipping`` when ``member_dp`` is set
        (members clip, the coordinator adds Gaussian noise to the unmasked sum), and the workflow.
    """
    strategy = inner
    if config.member_dp is not None:
        from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping

        strategy = DifferentialPrivacyClientSideFixedClipping(
            inner,
            noise_multiplier=member_dp_noise(config.member_dp, config.num_rounds),
            clipping_norm=config.member_dp.clipping_norm,
            num_sampled_clients=config.min_train_nodes,  # noise for the smallest quorum: conservative
        )
    workflow = _SizedSecAggPlusWorkflow(
        config,
        max_weight=1.0 if config.member_dp is not None else max_weight,
        clipping_range=config.secagg.clipping_range,
        quantization_range=config.secagg.quantization_range,
        modulus_range=config.secagg.modulus_range,
        timeout=config.round_timeout_s,
    )
    return strategy, workflow


def run_secure_federation(
    trainers: Sequence[LocalTrainer],
    initial_arrays: list[np.ndarray],
    config: FederationConfig,
    *,
    on_round: _RoundCallback | None = None,
    on_checkpoint: _CheckpointCallback | None = None,
    member_names: Sequence[str] | None = None,
) -> FederationResult:
    """Train federatedly with SecAgg+ secure aggregation (what ``run_federation`` runs when it is on).

    Parameters
    ----------
    trainers : sequence of LocalTrainer
        One per member.
    initial_arrays : list of numpy.ndarray
        Initial global weights.
    config : FederationConfig
        With ``secure_aggregation=True``; ``secagg`` holds the protocol settings.
    on_round, on_checkpoint, member_names
        As for :func:`mamori.federation.run_federation`.

    Returns
    -------
    FederationResult
        As for the plain path (tail-averaged the same way with ``config.tail_average``); a member's
        ``bytes_up`` / ``seconds`` include all four SecAgg+ stages.

    Raises
    ------
    ConfigError
        For a strategy other than FedAvg/FedProx, fewer than 2 members, or too few trainers.
    FederationError
        If fewer than ``min_train_nodes`` members deliver a masked update, or too few remain to
        unmask the sum (the reconstruction threshold).
    PrivacyBudgetError
        If the round fails because members refused to train beyond their privacy budget.
    """
    names = _check_inputs(trainers, config, member_names)
    initial = check_arrays(initial_arrays, where="run_federation: initial_arrays")
    node_ids = [_FIRST_NODE_ID + i for i in range(len(trainers))]
    member_of = {n: (name, t, i) for i, (n, name, t) in enumerate(zip(node_ids, names, trainers, strict=True))}
    run_id = new_run_id()
    grid = InProcessGrid(
        build_secure_client_app(lambda node_id: member_of[node_id], config),
        node_ids,
        run_id=run_id,
        max_workers=config.max_parallel_members,
        default_timeout=config.round_timeout_s,
    )
    trainer_config = dict(config.trainer_config)

    def fit_config(server_round: int) -> dict[str, Scalar]:
        return {
            "server-round": server_round,
            "local-epochs": config.local_epochs,
            "proximal-mu": config.proximal_mu,
            **trainer_config,
            **config.round_train_config(server_round),  # the members' learning-rate factor (lr_schedule)
        }

    def evaluate_config(server_round: int) -> dict[str, Scalar]:
        return {"server-round": server_round, **trainer_config}

    def failures_of(phase: str) -> list[str]:
        return [
            f"{member_of[d.node_id][0]} ({d.status}: {d.error})"
            for d in grid.peek_deliveries()
            if d.status != "ok" and d.message_type.startswith(phase)
        ]

    def fail(server_round: int, phase: str, detail: str) -> None:
        failures = failures_of(phase)
        budget = [f for f in failures if "PrivacyBudgetError" in f]
        if budget:
            raise PrivacyBudgetError(
                f"run_federation: round {server_round} {phase}: {len(budget)} member(s) refused to train beyond "
                f"their privacy budget: {'; '.join(budget)}"
            )
        raise FederationError(
            f"run_federation (secure aggregation): round {server_round} {phase}: {detail}. Failed: "
            f"{', '.join(failures) or 'none reported'}. Fix the failing members, raise round_timeout_s, or lower "
            "min_train_nodes."
        )

    def quorum(phase: str, server_round: int, ok: int) -> None:
        needed = config.min_train_nodes if phase == "train" else config.min_evaluate_nodes
        if ok < needed:
            fail(server_round, phase, f"{ok} member(s) answered successfully, at least {needed} required")

    common: dict[str, Any] = {
        "fraction_fit": config.fraction_train,
        "fraction_evaluate": config.fraction_evaluate,
        "min_fit_clients": config.min_train_nodes,
        "min_evaluate_clients": max(1, config.min_evaluate_nodes),
        "min_available_clients": config.min_available_nodes,
        "on_fit_config_fn": fit_config,
        "on_evaluate_config_fn": evaluate_config,
        "accept_failures": True,
        "fit_metrics_aggregation_fn": lambda _: {},
        "evaluate_metrics_aggregation_fn": lambda _: {},
    }
    cls, extra = legacy_strategy_class(config, initial)
    inner = cls(**common, **extra)
    inner.quorum = quorum
    strategy, workflow = secure_workflow(inner, config,  # type: ignore[arg-type]
                                         max_weight=float(config.secagg.max_weight or _FIRST_MAX_WEIGHT))
    history: list[RoundReport] = []
    state: dict[str, Any] = {"arrays": initial}
    tail = TailAverage(config.num_rounds, config.tail_average)

    def end_of_round(server_round: int, arrays: list[np.ndarray], started: float) -> None:
        deliveries = grid.drain_deliveries()
        members = _member_rounds(names, node_ids, deliveries)
        eval_loss = weighted_mean(
            (m.evaluate_loss if m.evaluate_loss is not None else np.nan, m.evaluate_examples)
            for m in members
            if m.evaluate_status == "ok"
        )
        digest = weights_hash(arrays)
        report = RoundReport.from_members(server_round, time.perf_counter() - started, members, eval_loss, digest)
        state["arrays"] = arrays
        tail.add(server_round, arrays)  # the unmasked global weights: the coordinator holds them anyway
        seen = max((m.train_examples for m in members if m.train_status == "ok"), default=0)
        if config.member_dp is None and config.secagg.max_weight is None and seen > 0:
            workflow.max_weight = float(4 * seen)  # precision of the masked weighted sum
        if server_round > 0 or deliveries:
            history.append(report)
        logger.info(
            "secure round %d: %.2f s, %d B down, %d B up, eval loss %s, failed %s",
            server_round,
            report.seconds,
            report.bytes_down,
            report.bytes_up,
            report.evaluate_loss,
            report.failed_members or "none",
        )
        if on_checkpoint is not None:
            on_checkpoint(server_round, [a.copy() for a in arrays], digest)
        if on_round is not None and (server_round > 0 or deliveries):
            on_round(report)

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        manager = SimpleClientManager()
        for node_id in node_ids:
            proxy: ClientProxy = GridClientProxy(node_id=node_id, grid=grid, run_id=run_id)
            manager.register(proxy)
        legacy = LegacyContext(
            context=context, config=ServerConfig(num_rounds=config.num_rounds), strategy=strategy,
            client_manager=manager,
        )
        legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord([np.ascontiguousarray(a) for a in initial])
        cfg = ConfigRecord({WorkflowKey.START_TIME: time.perf_counter(), WorkflowKey.CURRENT_ROUND: 0})
        legacy.state.config_records[MAIN_CONFIGS_RECORD] = cfg
        started = time.perf_counter()
        if config.evaluate_initial and config.fraction_evaluate > 0:
            default_evaluate_workflow(grid, legacy)
        end_of_round(0, [a.copy() for a in initial], started)
        for server_round in range(1, config.num_rounds + 1):
            started = time.perf_counter()
            cfg[WorkflowKey.CURRENT_ROUND] = server_round
            before = legacy.state.array_records[MAIN_PARAMS_RECORD]
            workflow(grid, legacy)
            after = legacy.state.array_records[MAIN_PARAMS_RECORD]
            if after is before:
                fail(
                    server_round,
                    "train",
                    "secure aggregation halted - too few members stayed to unmask the sum (reconstruction "
                    f"threshold {workflow.sizes.threshold} of {workflow.sizes.num_shares} shares per "
                    f"neighbourhood) or none trained",
                )
            if config.fraction_evaluate > 0:
                default_evaluate_workflow(grid, legacy)
            aggregated = [
                np.asarray(a, dtype=ref.dtype) for a, ref in zip(after.to_numpy_ndarrays(), initial, strict=True)
            ]
            legacy.state.array_records[MAIN_PARAMS_RECORD] = ArrayRecord(aggregated)
            end_of_round(server_round, aggregated, started)

    server_context = Context(
        run_id=run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={}
    )
    started = time.perf_counter()
    logger.info(
        "federation (SecAgg+): %d members, %s, %d rounds; with all members sampled: %s",
        len(trainers),
        config.strategy,
        config.num_rounds,
        secagg_parameters(config.secagg, len(trainers), config.min_train_nodes),
    )
    try:
        with server_process_state(run_id, config.seed, private_noise=config.member_dp is not None):
            server_app(grid, server_context)
    finally:
        grid.close()
    return FederationResult.from_rounds(
        state["arrays"],
        tail,
        history=tuple(history),
        seconds=time.perf_counter() - started,
        strategy=config.strategy,
        num_members=len(trainers),
    )
