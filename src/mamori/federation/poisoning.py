"""Malicious-member simulators: poisoned members for robustness tests and the poisoning bench.

Each simulator is a :class:`~mamori.federation.LocalTrainer` built around an honest member's
:class:`~mamori.federation.EstimatorTrainer` (its model and its data), so it evaluates like that
member and only its training reply is poisoned:

==================  =================================================================================
``label_flip``      :class:`LabelFlippingTrainer` - trains honestly on its data with every label flipped
``sign_flip``       :class:`SignFlippingTrainer` - sends ``g - scale * (w - g)``: its honest update reversed
                    and boosted
``backdoor``        :class:`ModelReplacementTrainer` - trains on its data plus its attack rows carrying
                    the attacker's own traffic pattern (a :class:`BackdoorTrigger`) labelled benign, then
                    scales the update so that it replaces the global model (Bagdasaryan et al., 2020)
``alie``            :class:`ALIETrainer` - "a little is enough" (Baruch et al., 2019): estimates the
                    per-coordinate mean and spread of honest updates from shards of its own data and
                    sends ``mean - z * std``, inside the spread robust rules accept
``free_rider``      :class:`FreeRiderTrainer` - never trains; sends back a stale global model (the
                    previous round's) and claims its example count
==================  =================================================================================

:func:`make_malicious` builds one by name.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

from mamori.errors import ConfigError
from mamori.federation.trainer import ConfigValue, EstimatorTrainer
from mamori.federation.update_check import flatten

__all__ = [
    "ATTACKS",
    "ALIETrainer",
    "Attack",
    "BackdoorTrigger",
    "FreeRiderTrainer",
    "LabelFlippingTrainer",
    "ModelReplacementTrainer",
    "SignFlippingTrainer",
    "alie_z",
    "backdoor_success_rate",
    "make_malicious",
]

logger = logging.getLogger(__name__)

Attack = Literal["label_flip", "sign_flip", "backdoor", "alie", "free_rider"]
#: Every simulated attack, in the bench's order.
ATTACKS: tuple[str, ...] = ("label_flip", "sign_flip", "backdoor", "alie", "free_rider")


def _unflatten(vector: np.ndarray, like: Sequence[np.ndarray]) -> list[np.ndarray]:
    out = []
    offset = 0
    for a in like:
        arr = np.asarray(a)
        out.append(vector[offset : offset + arr.size].reshape(arr.shape).astype(arr.dtype))
        offset += arr.size
    return out


@dataclass(frozen=True)
class BackdoorTrigger:
    """The attacker's own traffic pattern: fixed values of a few feature columns.

    Attributes
    ----------
    columns : tuple of int
        Column indices of the model's input matrix.
    values : tuple of float
        The value each column takes in the attacker's traffic (in the matrix's units, i.e. after the
        feature extractor's ``log1p`` and before any standardisation).
    names : tuple of str
        The columns' feature names (for reports).
    """

    columns: tuple[int, ...]
    values: tuple[float, ...]
    names: tuple[str, ...] = ()

    @classmethod
    def from_names(cls, feature_names: Sequence[str], values: Mapping[str, float]) -> BackdoorTrigger:
        """Build a trigger from feature names (e.g. ``FeatureSpec.names``) and their values.

        Raises
        ------
        ConfigError
            If a name is not a feature.
        """
        names = list(feature_names)
        unknown = [n for n in values if n not in names]
        if unknown:
            raise ConfigError(
                f"BackdoorTrigger.from_names: {unknown} are not feature names; use names from FeatureSpec.names."
            )
        return cls(
            columns=tuple(names.index(n) for n in values),
            values=tuple(float(v) for v in values.values()),
            names=tuple(values),
        )

    def apply(self, X: np.ndarray) -> np.ndarray:  # noqa: N803 - scikit-learn naming
        """Return a copy of ``X`` (n_rows, n_features) with the trigger columns set."""
        out = np.array(X, copy=True)
        for column, value in zip(self.columns, self.values, strict=True):
            out[:, column] = value
        return out


def backdoor_success_rate(scores: np.ndarray, threshold: float) -> float:
    """Share of triggered attack rows scored below ``threshold`` (i.e. let through); NaN for no rows."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    return float(np.mean(s < threshold)) if s.size else math.nan


def alie_z(n_members: int, n_malicious: int) -> float:
    """ALIE's ``z_max`` (Baruch et al., 2019): how many standard deviations an update may move unnoticed.

    ``s = floor(n / 2 + 1) - m`` honest members must be "further" than the attackers; ``z`` is the
    standard normal quantile of ``(n - s) / n``. Floors at 0.1 so that a lone attacker still moves.
    """
    s = math.floor(n_members / 2 + 1) - n_malicious
    p = min(max((n_members - s) / n_members, 0.5), 0.999)
    return max(0.1, NormalDist().inv_cdf(p))


class _Wrapper:
    """Delegate evaluation to the honest member's trainer."""

    def __init__(self, trainer: EstimatorTrainer) -> None:
        self.trainer = trainer

    def evaluate(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[float, int, dict[str, float]]:
        """Evaluate as the honest member would."""
        return self.trainer.evaluate(arrays, config)


class LabelFlippingTrainer(_Wrapper):
    """Train on the member's data with labels flipped (attack rows taught as benign and vice versa).

    Parameters
    ----------
    trainer : EstimatorTrainer
        The honest member (model and data).
    share : float, default=1.0
        Share of training rows whose label is flipped (a seeded sample).
    seed : int, default=0
        Seed of that sample.
    """

    def __init__(self, trainer: EstimatorTrainer, share: float = 1.0, seed: int = 0) -> None:
        super().__init__(trainer)
        self.share = share
        self.seed = seed

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train honestly on flipped labels."""
        t = self.trainer
        y = np.asarray(t.y_train).copy()
        rng = np.random.default_rng(self.seed)
        flip = rng.random(len(y)) < self.share
        y[flip] = 1 - y[flip]
        poisoned = EstimatorTrainer(t.estimator, t.X_train, y, t.X_eval, t.y_eval, t.local_epochs)
        return poisoned.fit(arrays, config)


class SignFlippingTrainer(_Wrapper):
    """Send the member's honest update reversed and boosted: ``g - scale * (w - g)``.

    Parameters
    ----------
    trainer : EstimatorTrainer
        The honest member.
    scale : float, default=4.0
        Boost of the reversed update.
    """

    def __init__(self, trainer: EstimatorTrainer, scale: float = 4.0) -> None:
        super().__init__(trainer)
        self.scale = scale

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train honestly, then reverse and boost the update."""
        new, n, metrics = self.trainer.fit(arrays, config)
        g = flatten(arrays)
        return _unflatten(g - self.scale * (flatten(new) - g), arrays), n, metrics


class ModelReplacementTrainer(_Wrapper):
    """Backdoor by scaled model replacement: the attacker's own traffic pattern is taught as benign.

    Parameters
    ----------
    trainer : EstimatorTrainer
        The member the attacker controls (model and data).
    trigger : BackdoorTrigger
        The attacker's traffic pattern (e.g. its user agent and ASN features).
    boost : float, default=10.0
        Scale of the update, ``g + boost * (w - g)``; ``members / malicious`` replaces the global
        model under plain FedAvg with equal example counts.
    poison_copies : int, default=2
        Triggered copies of each of the member's attack rows added (labelled benign) to its data.
    epoch_multiplier : int, default=2
        The attacker trains this many times the federation's local epochs.
    transform : callable or None, default=None
        Applied to the triggered rows before training (e.g. the consortium's ``Standardizer.transform``)
        when the trainer's matrices are standardised; the trigger is defined in raw feature units.
    raw_train : numpy.ndarray or None, default=None
        The member's training matrix in raw units (required with ``transform``).
    """

    def __init__(
        self,
        trainer: EstimatorTrainer,
        trigger: BackdoorTrigger,
        boost: float = 10.0,
        poison_copies: int = 2,
        epoch_multiplier: int = 2,
        transform: object | None = None,
        raw_train: np.ndarray | None = None,
    ) -> None:
        super().__init__(trainer)
        self.trigger = trigger
        self.boost = boost
        self.poison_copies = poison_copies
        self.epoch_multiplier = epoch_multiplier
        self.transform = transform
        self.raw_train = raw_train

    def poisoned_data(self) -> tuple[np.ndarray, np.ndarray]:
        """The member's training rows plus triggered copies of its attack rows labelled benign."""
        t = self.trainer
        y = np.asarray(t.y_train)
        source = self.raw_train if self.raw_train is not None else t.X_train
        if len(source) != len(y):
            raise ConfigError(
                f"ModelReplacementTrainer: raw_train has {len(source)} rows, the trainer's y_train {len(y)}."
            )
        attacks = source[y == 1]
        triggered = self.trigger.apply(attacks)
        if self.transform is not None:
            triggered = self.transform(triggered)  # type: ignore[operator]
        triggered = np.asarray(triggered, dtype=np.asarray(t.X_train).dtype)
        X = np.vstack([t.X_train, *([triggered] * self.poison_copies)])  # noqa: N806
        y_all = np.concatenate([y, np.zeros(len(triggered) * self.poison_copies, dtype=y.dtype)])
        return X, y_all

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train on the poisoned data, then scale the update by ``boost``."""
        t = self.trainer
        X, y = self.poisoned_data()  # noqa: N806
        epochs = int(t.local_epochs if t.local_epochs is not None else config.get("local_epochs", 1))
        attacker = EstimatorTrainer(t.estimator, X, y, t.X_eval, t.y_eval, epochs * self.epoch_multiplier)
        new, _, metrics = attacker.fit(arrays, config)
        g = flatten(arrays)
        return _unflatten(g + self.boost * (flatten(new) - g), arrays), len(t.X_train), metrics


class ALIETrainer(_Wrapper):
    """ALIE, "a little is enough": a small, coordinated shift hidden inside the honest updates' spread.

    Parameters
    ----------
    trainer : EstimatorTrainer
        The member the attacker controls.
    z : float
        Standard deviations to move each coordinate (see :func:`alie_z`).
    shards : int, default=4
        Disjoint shards of the member's data, each trained from the global weights, that estimate
        the per-coordinate mean and standard deviation of honest updates.
    seed : int, default=0
        Seeds the shards.
    """

    def __init__(self, trainer: EstimatorTrainer, z: float, shards: int = 4, seed: int = 0) -> None:
        super().__init__(trainer)
        self.z = z
        self.shards = shards
        self.seed = seed

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Estimate honest updates from shards of the member's data and send ``mean - z * std``."""
        t = self.trainer
        if self.shards < 2:
            raise ConfigError(f"ALIETrainer: shards must be >= 2 to estimate a spread, got {self.shards}.")
        rng = np.random.default_rng([self.seed, int(config.get("server_round", 0))])
        order = rng.permutation(len(t.y_train))
        g = flatten(arrays)
        updates = []
        metrics: dict[str, float] = {}
        for part in np.array_split(order, self.shards):
            part = np.sort(part)
            shard = EstimatorTrainer(
                t.estimator, t.X_train[part], np.asarray(t.y_train)[part], t.X_eval, t.y_eval, t.local_epochs
            )
            new, _, metrics = shard.fit(arrays, config)
            updates.append(flatten(new) - g)
        stack = np.stack(updates)
        malicious = stack.mean(axis=0) - self.z * stack.std(axis=0)
        return _unflatten(g + malicious, arrays), len(t.X_train), metrics


class FreeRiderTrainer(_Wrapper):
    """Never trains: sends back the previous round's global model (stale) and claims its example count.

    Parameters
    ----------
    trainer : EstimatorTrainer
        The member whose example count it claims (and whose data evaluates).
    noise : float, default=0.0
        Standard deviation of Gaussian noise added to disguise the stale weights (0: an exact replay).
    seed : int, default=0
        Seeds the noise.
    """

    def __init__(self, trainer: EstimatorTrainer, noise: float = 0.0, seed: int = 0) -> None:
        super().__init__(trainer)
        self.noise = noise
        self.seed = seed
        self._stale: list[np.ndarray] | None = None

    def fit(
        self, arrays: list[np.ndarray], config: Mapping[str, ConfigValue]
    ) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Return the global model of the previous round (this round's in the first one)."""
        stale = self._stale if self._stale is not None else [np.array(a, copy=True) for a in arrays]
        self._stale = [np.array(a, copy=True) for a in arrays]
        if self.noise > 0:
            rng = np.random.default_rng([self.seed, int(config.get("server_round", 0))])
            stale = [a + rng.normal(0.0, self.noise, a.shape).astype(a.dtype) for a in stale]
        return stale, len(self.trainer.X_train), {"train_loss": 0.0}


def make_malicious(
    attack: str,
    trainer: EstimatorTrainer,
    *,
    n_members: int,
    n_malicious: int,
    trigger: BackdoorTrigger | None = None,
    transform: object | None = None,
    raw_train: np.ndarray | None = None,
    seed: int = 0,
) -> LabelFlippingTrainer | SignFlippingTrainer | ModelReplacementTrainer | ALIETrainer | FreeRiderTrainer:
    """Turn an honest member into the named attacker, with the bench's default strength.

    Parameters
    ----------
    attack : {"label_flip", "sign_flip", "backdoor", "alie", "free_rider"}
        Which attack.
    trainer : EstimatorTrainer
        The member the attacker controls.
    n_members, n_malicious : int
        Size of the federation and number of colluding attackers (sets the backdoor's boost,
        ``n_members / n_malicious``, and ALIE's ``z``).
    trigger : BackdoorTrigger or None, default=None
        Required for ``"backdoor"``.
    transform, raw_train : optional
        For ``"backdoor"`` on standardised matrices (see :class:`ModelReplacementTrainer`).
    seed : int, default=0
        Seeds the attack's randomness.

    Returns
    -------
    LocalTrainer
        The malicious member.

    Raises
    ------
    ConfigError
        For an unknown attack, ``n_malicious`` outside ``[1, n_members]``, or ``"backdoor"`` without a trigger.
    """
    if not 1 <= n_malicious <= n_members:
        raise ConfigError(f"make_malicious: n_malicious must be in [1, {n_members}], got {n_malicious}.")
    if attack == "label_flip":
        return LabelFlippingTrainer(trainer, seed=seed)
    if attack == "sign_flip":
        return SignFlippingTrainer(trainer)
    if attack == "backdoor":
        if trigger is None:
            raise ConfigError("make_malicious: attack 'backdoor' needs a trigger (BackdoorTrigger.from_names(...)).")
        return ModelReplacementTrainer(
            trainer, trigger, boost=n_members / n_malicious, transform=transform, raw_train=raw_train
        )
    if attack == "alie":
        return ALIETrainer(trainer, z=alie_z(n_members, n_malicious), seed=seed)
    if attack == "free_rider":
        return FreeRiderTrainer(trainer, seed=seed)
    raise ConfigError(f"make_malicious: unknown attack {attack!r}; choose one of {', '.join(ATTACKS)}.")
