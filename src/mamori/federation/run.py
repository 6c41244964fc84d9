"""Run a federated training: Flower's ServerApp and ClientApps over the in-process runtime."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.exception import AggregationError, InconsistentMessageReplies
from flwr.serverapp.strategy import Strategy

from mamori.errors import ConfigError, FederationError, PrivacyBudgetError
from mamori.federation.clientapp import NUM_EXAMPLES_KEY, build_client_app
from mamori.federation.config import FederationConfig
from mamori.federation.inprocess import Delivery, InProcessGrid, new_run_id, server_process_state
from mamori.federation.memberdp import member_dp_train_mods, wrap_member_dp
from mamori.federation.report import FederationResult, MemberRound, RoundReport, weighted_mean
from mamori.federation.robust import UpdateCheckCallback
from mamori.federation.schedule import TailAverage
from mamori.federation.strategy import build_strategy, schedule_train_config
from mamori.federation.trainer import LocalTrainer
from mamori.federation.weights import check_arrays, weights_hash

__all__ = ["CheckpointCallback", "RoundCallback", "run_federation"]

logger = logging.getLogger(__name__)

#: Receives each round's report as soon as the round ends.
RoundCallback = Callable[[RoundReport], None]
#: Receives ``(server_round, global weights, weights_hash)`` after each round (round 0 = initial weights).
CheckpointCallback = Callable[[int, list[np.ndarray], str], None]

_FIRST_NODE_ID = 1001  # node ids of members: 1001, 1002, ... (Flower's SuperLink is node 1)
_LOSS_KEY = "loss"


def _metric_dict(reply: Message | None) -> dict[str, float]:
    if reply is None or reply.has_error() or not reply.content.metric_records:
        return {}
    record = next(iter(reply.content.metric_records.values()))
    return {k: float(v) for k, v in record.items() if isinstance(v, (int, float))}


def _member_rounds(names: Sequence[str], node_ids: Sequence[int], deliveries: list[Delivery]) -> list[MemberRound]:
    by_node: dict[int, dict[str, Any]] = {
        n: {"member": name, "node_id": n, "bytes_down": 0, "bytes_up": 0, "seconds": 0.0}
        for name, n in zip(names, node_ids, strict=True)
    }
    for d in deliveries:
        row = by_node[d.node_id]
        row["bytes_down"] += d.bytes_down
        row["bytes_up"] += d.bytes_up
        row["seconds"] += d.seconds
        if d.error:
            row["error"] = d.error
        metrics = _metric_dict(d.reply)
        examples = int(metrics.pop(NUM_EXAMPLES_KEY, 0))
        if d.message_type.startswith("train"):
            row.update(train_status=d.status, train_examples=examples, train_metrics=metrics)
        elif d.message_type.startswith("evaluate"):
            loss = metrics.pop(_LOSS_KEY, None)
            row.update(
                evaluate_status=d.status, evaluate_examples=examples, evaluate_loss=loss, evaluate_metrics=metrics
            )
    return [MemberRound(**by_node[n]) for n in node_ids]


def _check_run_inputs(
    trainers: Sequence[LocalTrainer], config: FederationConfig, member_names: Sequence[str] | None
) -> list[str]:
    if not isinstance(config, FederationConfig):
        raise ConfigError(f"run_federation: config must be a FederationConfig, got {type(config).__name__}.")
    for i, trainer in enumerate(trainers):
        if not isinstance(trainer, LocalTrainer):
            raise ConfigError(
                f"run_federation: trainer {i} ({type(trainer).__name__}) lacks fit(arrays, config) and "
                "evaluate(arrays, config); wrap an estimator in EstimatorTrainer."
            )
    needed = max(config.min_available_nodes, config.min_train_nodes, config.min_evaluate_nodes)
    if len(trainers) < needed:
        raise ConfigError(
            f"run_federation: {len(trainers)} member(s) given but the config needs at least {needed} "
            f"(min_available_nodes={config.min_available_nodes}, min_train_nodes={config.min_train_nodes}, "
            f"min_evaluate_nodes={config.min_evaluate_nodes}); add members or lower these minimums."
        )
    names = [f"member-{i}" for i in range(len(trainers))] if member_names is None else [str(n) for n in member_names]
    if len(names) != len(trainers) or len(set(names)) != len(names):
        raise ConfigError(
            f"run_federation: member_names must hold {len(trainers)} distinct names (one per trainer), "
            f"got {len(names)} ({len(set(names))} distinct)."
        )
    return names


def run_federation(
    trainers: Sequence[LocalTrainer],
    initial_arrays: list[np.ndarray],
    config: FederationConfig,
    *,
    on_round: RoundCallback | None = None,
    on_checkpoint: CheckpointCallback | None = None,
    member_names: Sequence[str] | None = None,
    on_update_check: UpdateCheckCallback | None = None,
) -> FederationResult:
    """Train a model federatedly with Flower: each trainer is one member, its data stays with it.

    A Flower ``ServerApp`` runs the configured strategy (Flower's ``FedAvg`` or ``FedProx``) for
    ``config.num_rounds`` rounds; each round the sampled members train from the global weights,
    Flower aggregates their weights (weighted by example counts), and every sampled member evaluates
    the new global weights on its own evaluation split (federated evaluation). Members run as a
    Flower ``ClientApp`` in this process (see :class:`~mamori.federation.inprocess.InProcessGrid`):
    no socket is opened.

    Parameters
    ----------
    trainers : sequence of LocalTrainer
        One per member.
    initial_arrays : list of numpy.ndarray
        The initial global weights (the same for every member).
    config : FederationConfig
        Strategy, rounds, sampling, quorum, timeout and seed.
    on_round : callable or None, default=None
        Called with each :class:`RoundReport` as soon as the round ends (for progress display).
    on_checkpoint : callable or None, default=None
        Called with ``(server_round, global_weights, weights_hash)`` after each round and for the
        initial weights (round 0), e.g. to store them in the model registry.
    member_names : sequence of str or None, default=None
        Names used in reports and errors; default ``member-0``, ``member-1``, ...
    on_update_check : callable or None, default=None
        With ``config.robust`` and its ``check`` on: called with each training round's
        :class:`~mamori.federation.update_check.UpdateCheckReport` (flagged members, norms, cosines)
        before aggregation, e.g. ``lambda r: audit_update_check(store.audit.append, r)``.

    Returns
    -------
    FederationResult
        Final weights and their hash, the round history (per member and aggregated loss and
        metrics, seconds, bytes down and up), totals. With ``config.tail_average > 1`` the final
        weights are the mean of the global weights of the last ``tail_average`` rounds (those passed to
        ``on_checkpoint``); ``last_round_hash`` is the hash of the last round's own.

    Raises
    ------
    ConfigError
        If there are fewer trainers than the config's minimum node counts, or a trainer lacks
        ``fit``/``evaluate``.
    FederationError
        If fewer than ``min_train_nodes`` (``min_evaluate_nodes``) members answer a training
        (evaluation) exchange successfully - a member whose trainer raises or exceeds
        ``round_timeout_s`` does not answer - or if the members' replies cannot be aggregated.

    Notes
    -----
    Failure policy: a member that fails is left out of that round's aggregate and the round goes on
    as long as at least ``min_train_nodes`` members trained successfully; the failure is reported in
    the round's :class:`MemberRound` (``train_status``/``error``). Below the minimum the run stops
    with ``FederationError`` naming the failed members and their errors.

    With ``config.secure_aggregation`` the run goes through Flower's SecAgg+
    (:func:`mamori.federation.secagg.run_secure_federation`); with ``config.member_dp`` members clip
    their updates and the aggregate gets Gaussian noise. A round that fails because members refused to
    exceed their privacy budget raises :class:`~mamori.errors.PrivacyBudgetError`.
    """
    if getattr(config, "secure_aggregation", False):
        from mamori.federation.secagg import run_secure_federation

        return run_secure_federation(
            trainers, initial_arrays, config, on_round=on_round, on_checkpoint=on_checkpoint, member_names=member_names
        )
    names = _check_run_inputs(trainers, config, member_names)
    initial = check_arrays(initial_arrays, where="run_federation: initial_arrays")
    node_ids = [_FIRST_NODE_ID + i for i in range(len(trainers))]
    trainer_of = {n: (name, t) for n, name, t in zip(node_ids, names, trainers, strict=True)}
    run_id = new_run_id()

    client_app = build_client_app(
        lambda node_id: trainer_of[node_id], seed=config.seed, train_mods=member_dp_train_mods(config) or None
    )
    grid = InProcessGrid(
        client_app,
        node_ids,
        run_id=run_id,
        max_workers=config.max_parallel_members,
        default_timeout=config.round_timeout_s,
    )

    def quorum_check(phase: str, server_round: int, replies: list[Message]) -> None:
        needed = strategy.min_train_nodes if phase == "train" else strategy.min_evaluate_nodes  # type: ignore[attr-defined]
        ok = sum(1 for r in replies if not r.has_error())
        if ok >= needed:
            return
        failures = [
            f"{trainer_of[d.node_id][0]} ({d.status}: {d.error})"
            for d in grid.peek_deliveries()
            if d.status != "ok" and d.message_type.startswith(phase)
        ]
        refused = [f for f in failures if "PrivacyBudgetError" in f]
        if refused:
            raise PrivacyBudgetError(
                f"run_federation: round {server_round} {phase}: {len(refused)} member(s) refused to train beyond "
                f"their privacy budget: {'; '.join(refused)}"
            )
        raise FederationError(
            f"run_federation: round {server_round} {phase}: {ok} member(s) answered successfully, at least "
            f"{needed} required (min_{phase}_nodes). Failed: {', '.join(failures) or 'none reported'}. "
            "Fix the failing members (see their errors), raise round_timeout_s, or lower the minimum."
        )

    strategy: Strategy = build_strategy(
        config, quorum_check, member_name=lambda node_id: trainer_of[node_id][0], on_update_check=on_update_check
    )
    strategy = schedule_train_config(wrap_member_dp(strategy, config), config)
    tail = TailAverage(config.num_rounds, config.tail_average)
    history: list[RoundReport] = []
    state: dict[str, Any] = {"arrays": initial, "round_start": time.perf_counter()}
    trainer_config = dict(config.trainer_config)

    def end_of_round(server_round: int, record: ArrayRecord) -> MetricRecord | None:
        arrays = record.to_numpy_ndarrays()
        if server_round == 0 and config.evaluate_initial and config.fraction_evaluate > 0:
            replies = grid.send_and_receive(
                strategy.configure_evaluate(0, record, ConfigRecord(trainer_config), grid),
                timeout=config.round_timeout_s,
            )
            strategy.aggregate_evaluate(0, replies)
        deliveries = grid.drain_deliveries()
        members = _member_rounds(names, node_ids, deliveries)
        eval_loss = weighted_mean(
            (m.evaluate_loss if m.evaluate_loss is not None else np.nan, m.evaluate_examples)
            for m in members
            if m.evaluate_status == "ok"
        )
        digest = weights_hash(arrays)
        seconds = time.perf_counter() - state["round_start"]
        report = RoundReport.from_members(server_round, seconds, members, eval_loss, digest)
        state["arrays"] = arrays
        tail.add(server_round, arrays)
        if server_round > 0 or deliveries:
            history.append(report)
        logger.info(
            "round %d: %.2f s, %d B down, %d B up, eval loss %s, failed %s",
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
        state["round_start"] = time.perf_counter()
        return None

    server_app = ServerApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        train_config = ConfigRecord({"local-epochs": config.local_epochs, **trainer_config})
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord([np.ascontiguousarray(a) for a in initial]),
            num_rounds=config.num_rounds,
            timeout=config.round_timeout_s,
            train_config=train_config,
            evaluate_config=ConfigRecord(trainer_config),
            evaluate_fn=end_of_round,
        )

    server_context = Context(
        run_id=run_id, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={}
    )
    started = time.perf_counter()
    logger.info(
        "federation: %d members, %s, %d rounds, %d local epoch(s)",
        len(trainers),
        config.strategy,
        config.num_rounds,
        config.local_epochs,
    )
    try:
        with server_process_state(run_id, config.seed, private_noise=config.member_dp is not None):
            server_app(grid, server_context)
    except (InconsistentMessageReplies, AggregationError) as exc:
        raise FederationError(
            f"run_federation: the members' replies cannot be aggregated ({exc.args[0] if exc.args else exc}); "
            "every member must return the same metric names and weight shapes."
        ) from exc
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
