"""The member side: a Flower ``ClientApp`` that hands rounds to mamori ``LocalTrainer`` objects."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping

import numpy as np
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from mamori.errors import FederationError
from mamori.federation.trainer import ConfigValue, LocalTrainer, ScaffoldTrainer
from mamori.federation.weights import check_arrays

__all__ = ["CONTROL_KEY", "NUM_EXAMPLES_KEY", "build_client_app", "checked_update", "member_seed", "scaffold_step"]

logger = logging.getLogger(__name__)

#: Key of the example count in every reply's MetricRecord (Flower strategies weight by it).
NUM_EXAMPLES_KEY = "num-examples"
#: Key of SCAFFOLD's control-variate ArrayRecord: the server's ``c`` in a train message, the member's
#: ``c_i(new) - c_i(old)`` in its reply (``FederationConfig.client_algorithm="scaffold"``).
CONTROL_KEY = "control"
_LOSS_KEY = "loss"
# Flower's config keys (hyphenated) mapped to the names mamori trainers see.
_CONFIG_RENAMES = {"server-round": "server_round", "proximal-mu": "proximal_mu", "local-epochs": "local_epochs"}


def member_seed(seed: int, server_round: int, member_index: int) -> int:
    """Derive the seed a member uses in one round from the run's seed (stable across runs)."""
    return int(np.random.SeedSequence([seed, server_round, member_index]).generate_state(1)[0])


def _trainer_config(message: Message, context: Context, seed: int) -> dict[str, ConfigValue]:
    raw = message.content.config_records.get("config")
    config: dict[str, ConfigValue] = {}
    for key, value in (raw or {}).items():
        if isinstance(value, (int, float, str, bool)):
            config[_CONFIG_RENAMES.get(key, key)] = value
    config.setdefault("server_round", 0)
    config.setdefault("proximal_mu", 0.0)
    config.setdefault("local_epochs", 1)
    member_index = int(context.node_config.get("partition-id", 0))
    config["seed"] = member_seed(seed, int(config["server_round"]), member_index)
    return config


def _metrics(where: str, num_examples: int, metrics: Mapping[str, float], extra: Mapping[str, float]) -> MetricRecord:
    if int(num_examples) <= 0:
        raise FederationError(f"{where}: reported {num_examples} examples; a member must use at least one example.")
    record: dict[str, int | float] = {}
    for key, value in {**metrics, **extra}.items():
        if key == NUM_EXAMPLES_KEY:
            raise FederationError(f"{where}: metric name {NUM_EXAMPLES_KEY!r} is reserved; rename it.")
        number = float(value)
        record[key] = number
    record[NUM_EXAMPLES_KEY] = int(num_examples)
    return MetricRecord(record)


def checked_update(
    arrays: list[np.ndarray], shapes: list[tuple[int, ...]], where: str, what: str
) -> list[np.ndarray]:
    """``arrays`` a member computed, checked (finite numbers) and shaped like the global model.

    Parameters
    ----------
    arrays : list of numpy.ndarray
        What the trainer returned.
    shapes : list of tuple of int
        The global model's array shapes.
    where : str
        The member and phase, for the error.
    what : str
        What the arrays are, for the error (e.g. ``"fit returned arrays"``).

    Returns
    -------
    list of numpy.ndarray

    Raises
    ------
    FederationError
        If an array is malformed or shaped otherwise.
    """
    arrays = check_arrays(arrays, where=where)
    if [a.shape for a in arrays] != shapes:
        raise FederationError(
            f"{where}: {what} of shapes {[a.shape for a in arrays]}, expected {shapes} (the global model's shapes)."
        )
    return arrays


def scaffold_step(
    trainer: LocalTrainer, arrays: list[np.ndarray], control: list[np.ndarray], config: Mapping[str, ConfigValue],
    where: str,
) -> tuple[list[np.ndarray], list[np.ndarray], int, dict[str, float]]:
    """One member's SCAFFOLD round, whatever carries it (Flower messages, or SecAgg+'s masked vector).

    Parameters
    ----------
    trainer : LocalTrainer
        Must implement :class:`ScaffoldTrainer`.
    arrays, control : list of numpy.ndarray
        The global weights and the server's control variate ``c``.
    config : mapping
        The round's trainer config.
    where : str
        The member and phase, for errors.

    Returns
    -------
    weights, control_delta, num_examples, metrics
        As :meth:`ScaffoldTrainer.fit_scaffold`, both array lists checked against the global model's shapes.

    Raises
    ------
    FederationError
        If the trainer cannot apply the correction or returns malformed arrays.
    """
    if not isinstance(trainer, ScaffoldTrainer):
        raise FederationError(
            f"{where}: the run uses SCAFFOLD (client_algorithm='scaffold') but {type(trainer).__name__} has no "
            "fit_scaffold(arrays, control, config); wrap an estimator in EstimatorTrainer."
        )
    shapes = [a.shape for a in arrays]
    weights, delta, num_examples, metrics = trainer.fit_scaffold(arrays, control, config)
    weights = checked_update(weights, shapes, where, "fit_scaffold returned weights")
    delta = checked_update(delta, shapes, f"{where} control variate", "fit_scaffold returned a control delta")
    return weights, delta, num_examples, metrics


def build_client_app(
    trainer_for_node: Callable[[int], tuple[str, LocalTrainer]],
    *,
    seed: int,
    train_mods: list[Mod] | None = None,
    evaluate_mods: list[Mod] | None = None,
) -> ClientApp:
    """Build the ClientApp that every member runs.

    Parameters
    ----------
    trainer_for_node : callable
        Maps a Flower node id to ``(member name, LocalTrainer)``.
    seed : int
        The run's seed; each member gets ``member_seed(seed, round, index)`` as ``config["seed"]``.
    train_mods, evaluate_mods : list of Flower mods or None, default=None
        Flower client mods applied to the train (evaluate) handler only - e.g. a clipping or
        local-DP mod must wrap training alone (``LocalDpMod`` on the whole ClientApp hangs a run).

    Returns
    -------
    flwr.clientapp.ClientApp
        Handles ``train`` messages (reply: ``arrays`` ArrayRecord + ``metrics`` MetricRecord with
        ``num-examples``) and ``evaluate`` messages (reply: ``metrics`` with ``loss`` and
        ``num-examples``).

    Notes
    -----
    Trainers see mamori's names (``server_round``, ``proximal_mu``, ``local_epochs``, ``seed``),
    never Flower's record types, so another protocol (e.g. SecAgg+ through Flower's older
    ``NumPyClient`` API) can drive the same trainers.
    """
    app = ClientApp()

    @app.train(mods=train_mods)
    def train(message: Message, context: Context) -> Message:
        name, trainer = trainer_for_node(context.node_id)
        where = f"member {name!r} (train)"
        arrays = message.content.array_records["arrays"].to_numpy_ndarrays()
        config = _trainer_config(message, context, seed)
        control_record = message.content.array_records.get(CONTROL_KEY)
        control_delta: list[np.ndarray] | None = None
        if control_record is None:
            new_arrays, num_examples, metrics = trainer.fit(arrays, config)
            new_arrays = checked_update(new_arrays, [a.shape for a in arrays], where, "fit returned arrays")
        else:
            new_arrays, control_delta, num_examples, metrics = scaffold_step(
                trainer, arrays, control_record.to_numpy_ndarrays(), config, where
            )
        records: dict[str, ArrayRecord | MetricRecord] = {
            "arrays": ArrayRecord([np.ascontiguousarray(a) for a in new_arrays]),
            "metrics": _metrics(where, num_examples, metrics, {}),
        }
        if control_delta is not None:
            records[CONTROL_KEY] = ArrayRecord([np.ascontiguousarray(a) for a in control_delta])
        return Message(content=RecordDict(records), reply_to=message)

    @app.evaluate(mods=evaluate_mods)
    def evaluate(message: Message, context: Context) -> Message:
        name, trainer = trainer_for_node(context.node_id)
        where = f"member {name!r} (evaluate)"
        arrays = message.content.array_records["arrays"].to_numpy_ndarrays()
        config = _trainer_config(message, context, seed)
        loss, num_examples, metrics = trainer.evaluate(arrays, config)
        if not math.isfinite(float(loss)):
            logger.warning("%s: evaluation loss is not finite", where)
        content = RecordDict({"metrics": _metrics(where, num_examples, metrics, {_LOSS_KEY: float(loss)})})
        return Message(content=content, reply_to=message)

    return app
