"""Settings of a ``mamori bench`` run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mamori.federation import FederationConfig
from mamori.federation.schedule import LRSchedule

__all__ = ["BenchConfig"]

#: Per-dataset defaults chosen on validation rows (docs/benchmarks.md), in one place; explicit fields win.
#: ``server``: the federated classifier's server step; ``sync_every_epoch``/``client_batch_size``: its members'
#: schedule; ``client_algorithm``/``client_lr``: its members' drift correction (SCAFFOLD) and Adam learning rate;
#: ``client_lr_schedule``/``client_lr_floor``: how that learning rate decays over the rounds; ``tail_average``: the
#: deployed federated classifier is the mean of the global weights of its last rounds (the centralized MLP's too);
#: ``ae_noise``/``ae_epochs_factor``: the denoising autoencoder and its epochs per round;
#: ``hybrid_forest``/``ae_surprise_cap``: the hybrid's third member (a federated isolation forest) and the cap on the
#: autoencoder's surprise (chosen by leave-attack-types-and-benign-modes-out validation, docs/benchmarks.md);
#: ``clf_mode_swap``/``clf_mode_groups``: the classifier's benign-mode augmentation (chosen by the same validation
#: with hard attack variants held out too); ``hybrid_trust``: the classifier's in-distribution gate (the same);
#: ``forest_rarity``: rarity columns for the federated isolation forest reported alone (the same, and hard normals).
_TUNED: dict[str, dict[str, Any]] = {
    "csic": {
        "server": {"server_optimizer": "fedavgm", "server_momentum": 0.9, "server_lr": 1.0},
        "sync_every_epoch": True,
        "client_batch_size": 1024,
        "client_algorithm": "scaffold",
        "client_lr": 2e-3,
        "client_lr_schedule": "cosine",
        "client_lr_floor": 0.5,
        "tail_average": 10,
    },
    "nsl-kdd": {
        "ae_noise": 0.3,
        "ae_epochs_factor": 2,
        "hybrid_forest": True,
        "ae_surprise_cap": 2.0,
        "clf_mode_swap": 0.3,
        "clf_mode_groups": ("service", "flag"),
        "hybrid_trust": True,
        "forest_rarity": 5,
    },
}


class BenchConfig(BaseModel):
    """How a benchmark run splits, trains and judges.

    Parameters
    ----------
    institutions : int, default=10
        Simulated institutions ``K`` sharing the training pool.
    alpha : float, default=0.3
        Dirichlet concentration of the non-IID split (smaller = more skewed).
    seed : int, default=0
        Seed of the institution split and of every model.
    rounds : int, default=20
        Federated rounds.
    local_epochs : int or None, default=None
        Epochs per round on each member; local-only and centralized models train ``rounds * local_epochs``
        epochs so every regime makes the same number of passes. None: 2 for tabular datasets, 5 for text
        datasets (small, cheap, and their federated classifier was still far from converged after 2 — chosen
        on validation rows). :meth:`epochs_per_round` resolves it.
    hidden : tuple of int, default=(64, 32)
        Hidden layers of the classifier (``(32,)`` is used for text datasets' message classifier).
    ae_hidden : tuple of int, default=(64, 16)
        Encoder widths of the autoencoder.
    ae_noise : float or None, default=None
        Standard deviation of the Gaussian input noise the autoencoder is trained with (a denoising
        autoencoder, :class:`~mamori.models.AutoencoderDetector`'s ``noise``). None: the dataset's default,
        :meth:`autoencoder_step`.
    ae_local_epochs : int or None, default=None
        Epochs per round of the federated autoencoder (local-only and centralized autoencoders train
        ``rounds * ae_local_epochs`` epochs). None: the dataset's default, :meth:`autoencoder_step`.
    batch_size : int, default=256
        Mini-batch size.
    learning_rate : float, default=1e-3
        Adam learning rate of the tabular models.
    validation_share : float, default=0.15
        Share of each institution's rows held out (never trained on) to choose F1 thresholds and calibrate
        the hybrid score. The test split is never used for any choice.
    min_rows : int, default=20
        Every institution gets at least this many rows.
    anomaly_score : {"top", "mean"}, default="top"
        How the autoencoder's per-feature error ratios become one score (:class:`~mamori.models.ReconstructionScorer`):
        the mean of the 3 largest log ratios, or the mean of all damped ratios.
    hybrid_fusion : {"sum", "max"}, default="sum"
        How the hybrid combines its two benign-tail surprises (:class:`~mamori.models.HybridDetector`); the sum
        was chosen by leave-attack-types-out validation inside KDDTrain+ (docs/benchmarks.md).
    hybrid_forest : bool or None, default=None
        Add a federated isolation forest (:class:`~mamori.models.FederatedIsolationForest`: every institution
        grows trees on its own believed-normal rows) to the hybrid as a third member; also reported alone. None:
        the dataset's default (:meth:`hybrid_step`; on for ``nsl-kdd``).
    ae_surprise_cap : float or None, default=None
        Cap on the autoencoder's surprise inside the hybrid (:class:`~mamori.models.HybridDetector`'s
        ``anomaly_cap``; ``math.inf``: no cap). None: the dataset's default (:meth:`hybrid_step`; 2 for
        ``nsl-kdd``, else no cap).
    hybrid_trust : bool or None, default=None
        Gate the hybrid's classifier surprise by a federated k-means of the institutions' labelled training rows
        (:class:`~mamori.models.FederatedKMeans`, :class:`~mamori.models.HybridDetector`'s ``trust``): the
        classifier's vote fades out on rows unlike anything it was trained on. Institutions share centroids of
        their own rows (clusters of at least 5 rows; a privacy caveat, docs/benchmarks.md). Needs
        ``hybrid_forest``'s hybrid to matter on NSL-KDD. None: the dataset's default (:meth:`hybrid_trust_step`;
        on for ``nsl-kdd``).
    forest_rarity : int or None, default=None
        Copies of each one-hot field's benign-rarity column appended to the rows of the federated isolation forest
        reported alone (``isolation_forest/federated``; :class:`~mamori.models.rarity.CategoryRarity`: ``-log`` of
        the consortium's benign share of the row's value, from one secure sum of the members' per-value counts);
        0: none, the forest sees the one-hot columns only. The hybrid's forest member is always plain: with the
        columns the hybrid fell in 8 of 12 validation cells while the forest alone rose in 11. None: the dataset's
        default (:meth:`forest_rarity_step`; 5 for ``nsl-kdd``, else 0).
    clf_mode_swap : float or None, default=None
        Benign-mode augmentation of every classifier's training rows (local-only, federated and centralized): each
        institution adds this share of copies of its own benign training rows with a uniformly random value of
        each one-hot group (:func:`~mamori.bench.augment.mode_swap_rows`; NSL-KDD: service and flag), labelled
        benign, so benign traffic of a mode rare in training raises fewer alarms. 0: none. None: the dataset's
        default (:meth:`classifier_augment`; 0.3 for ``nsl-kdd``, else 0).
    autoencoder : bool, default=True
        Train the autoencoder and the hybrid (not for text datasets).
    local_anomaly : bool, default=True
        Also train each institution's own autoencoder (for the local-only hybrid).
    references : bool, default=True
        Centralized scikit-learn references: HistGradientBoosting and IsolationForest on normal rows.
    max_reference_rows : int, default=200_000
        Rows the references are fitted on at most (a seeded sample beyond that).
    server_optimizer : {"fedavg", "fedavgm", "fedadam", "fedyogi"} or None, default=None
        Server-side step of the federated **classifier** (:class:`~mamori.federation.FederationConfig`'s
        ``server_optimizer``); the federated autoencoder always uses plain FedAvg. None: plain FedAvg (chosen on
        validation rows, docs/benchmarks.md). :meth:`server_step` resolves it.
    server_momentum : float or None, default=None
        Server momentum (``"fedavgm"``) or ``beta_1`` (``"fedadam"``/``"fedyogi"``); None: the federation default.
        Needs an explicit ``server_optimizer``.
    server_lr : float or None, default=None
        Server learning rate; None: the federation default. Needs an explicit ``server_optimizer``.
    client_optimizer : {"adam", "sgd"} or None, default=None
        Optimiser of the federated **classifier**'s members in each round (local-only and centralized models
        always use Adam). None: plain SGD for text datasets (Adam restarted every round drifts towards each
        member's own class; chosen on validation rows, docs/benchmarks.md), Adam for tabular ones.
        :meth:`client_step` resolves it.
    client_lr : float or None, default=None
        The members' learning rate; None: 0.3 with SGD on text datasets, 2e-3 for ``csic``'s default Adam members
        (with SCAFFOLD; chosen on validation rows), else the model's (``learning_rate`` for tabular datasets).
    client_local_epochs : int or None, default=None
        Epochs per round of the federated classifier's members; its federation then runs
        ``rounds * local_epochs / client_local_epochs`` rounds, so it makes the same number of passes as every
        other regime. None: 1 for ``csic`` and text datasets (averaging after every epoch limits client drift;
        chosen on validation rows), else ``local_epochs``.
    client_batch_size : int or None, default=None
        Mini-batch size of the federated classifier's members. None: 1024 for ``csic`` (fewer, less noisy local
        steps per round), else the model's.
    client_algorithm : {"plain", "scaffold"} or None, default=None
        Drift correction of the federated classifier's members (:class:`~mamori.federation.FederationConfig`'s
        ``client_algorithm``): ``"scaffold"`` sends SCAFFOLD control variates with the weights (twice the
        traffic). None: ``"scaffold"`` for ``csic``, ``"plain"`` otherwise (chosen on validation rows,
        docs/benchmarks.md). The federated autoencoder always trains plain.
    client_lr_schedule : {"constant", "cosine", "linear"} or None, default=None
        How the federated classifier's members' learning rate changes over the rounds
        (:func:`mamori.federation.lr_factor`, run as ``FederationConfig.lr_schedule``): from ``client_lr`` in the
        first round down to ``client_lr * client_lr_floor`` in the last. None: ``"cosine"``
        for ``csic`` (a constant 2e-3 collapsed on some split seeds; chosen on validation rows over ten seeds,
        docs/benchmarks.md), ``"constant"`` otherwise.
    client_lr_floor : float or None, default=None
        The last round's share of the members' learning rate under a decaying schedule, in ``(0, 1]``. None: the
        dataset's tuned floor (0.5 for ``csic``, chosen with ``tail_average``), else 0.1.
    tail_average : int or None, default=None
        Tail (iterate) averaging, as in stochastic weight averaging: the deployed federated classifier is the
        uniform mean of the server's global weights after each of its last ``tail_average`` rounds (no extra
        traffic or member compute), and the centralized MLP, so that it is not denied the same step, the mean of
        its weights after each of its last ``tail_average * local_epochs`` epochs (the same share of the passes).
        0 or 1: the final weights. None: 10 of the 40 rounds for ``csic`` (chosen on validation rows over twenty
        split seeds, docs/benchmarks.md), else 0.
    secure_aggregation : bool, default=False
        Run every federation of model weights (the federated classifier and autoencoder) under SecAgg+
        (``FederationConfig.secure_aggregation``, default ``SecureAggregationConfig``): the coordinator only
        sees the masked sum of the members' updates - with SCAFFOLD, of their control-variate deltas too. The
        consortium statistics are a secure sum either way; the federated isolation forest's trees and the trust
        model's centroids are shared in clear (docs/benchmarks.md).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    institutions: int = Field(default=10, ge=2, le=200)
    alpha: float = Field(default=0.3, gt=0.0)
    seed: int = 0
    rounds: int = Field(default=20, ge=1)
    local_epochs: int | None = Field(default=None, ge=1)
    hidden: tuple[int, ...] = (64, 32)
    ae_hidden: tuple[int, ...] = (64, 16)
    ae_noise: float | None = Field(default=None, ge=0.0)
    ae_local_epochs: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=256, ge=8)
    learning_rate: float = Field(default=1e-3, gt=0.0)
    validation_share: float = Field(default=0.15, gt=0.0, lt=0.9)
    min_rows: int = Field(default=20, ge=5)
    anomaly_score: Literal["top", "mean"] = "top"
    hybrid_fusion: Literal["sum", "max"] = "sum"
    hybrid_forest: bool | None = None
    ae_surprise_cap: float | None = Field(default=None, gt=0.0)
    hybrid_trust: bool | None = None
    forest_rarity: int | None = Field(default=None, ge=0, le=50)
    clf_mode_swap: float | None = Field(default=None, ge=0.0, le=10.0)
    autoencoder: bool = True
    local_anomaly: bool = True
    references: bool = True
    max_reference_rows: int = Field(default=200_000, ge=100)
    server_optimizer: Literal["fedavg", "fedavgm", "fedadam", "fedyogi"] | None = None
    server_momentum: float | None = Field(default=None, ge=0.0, lt=1.0)
    server_lr: float | None = Field(default=None, gt=0.0)
    client_optimizer: Literal["adam", "sgd"] | None = None
    client_lr: float | None = Field(default=None, gt=0.0)
    client_local_epochs: int | None = Field(default=None, ge=1)
    client_batch_size: int | None = Field(default=None, ge=8)
    client_algorithm: Literal["plain", "scaffold"] | None = None
    client_lr_schedule: LRSchedule | None = None
    client_lr_floor: float | None = Field(default=None, gt=0.0, le=1.0)
    tail_average: int | None = Field(default=None, ge=0)
    secure_aggregation: bool = False

    @model_validator(mode="after")
    def _check_server_optimizer(self) -> Self:
        # Checked before any training starts rather than after the local-only models.
        if self.server_optimizer is None:
            if self.server_momentum is not None or self.server_lr is not None:
                raise ValueError(
                    "BenchConfig: server_momentum/server_lr need an explicit server_optimizer (e.g. 'fedavgm'); "
                    "the default depends on the kind of dataset."
                )
            return self
        FederationConfig(  # the federation's own rule: momentum / learning rate only with a server optimizer
            server_optimizer=self.server_optimizer, server_momentum=self.server_momentum, server_lr=self.server_lr
        )
        return self

    def server_step(self, text: bool, dataset: str = "") -> dict[str, str | float | None]:
        """The federated classifier's server optimizer settings, with the per-dataset default filled in.

        Parameters
        ----------
        text : bool
            Whether the dataset is text (hashed n-gram vectors, e.g. SMS).
        dataset : str, default=""
            The dataset's name: ``csic`` defaults to FedAvgM (momentum 0.9, server learning rate 1.0), every
            other dataset to plain FedAvg (chosen on validation rows, docs/benchmarks.md).

        Returns
        -------
        dict
            ``server_optimizer``, ``server_momentum``, ``server_lr`` as
            :class:`~mamori.federation.FederationConfig` takes them.
        """
        if self.server_optimizer is not None:
            return {
                "server_optimizer": self.server_optimizer,
                "server_momentum": self.server_momentum,
                "server_lr": self.server_lr,
            }
        tuned = _TUNED.get(dataset, {}).get("server")
        return dict(tuned) if tuned else {"server_optimizer": "fedavg", "server_momentum": None, "server_lr": None}

    def client_step(self, text: bool, dataset: str = "") -> dict[str, Any]:
        """The federated classifier's members' training settings, with the per-dataset defaults filled in.

        Parameters
        ----------
        text : bool
            Whether the dataset is text (hashed n-gram vectors, e.g. SMS).
        dataset : str, default=""
            The dataset's name (``BenchDataset.name``).

        Returns
        -------
        dict
            ``optimizer`` (``"adam"`` or ``"sgd"``), ``learning_rate`` and ``batch_size`` (None: the model's own
            default), ``local_epochs`` (epochs per round), ``rounds`` (``rounds * epochs_per_round /
            local_epochs``: the same passes as the other regimes), ``algorithm`` (``"plain"`` or
            ``"scaffold"``), ``lr_schedule`` and ``lr_floor`` (:func:`mamori.federation.lr_factor`'s ``schedule`` and
            ``floor``), ``tail_average`` (rounds averaged by the server at the end; 0: none) - the last three become
            ``FederationConfig.lr_schedule``, ``lr_floor`` and ``tail_average``.

        Raises
        ------
        ValueError
            SGD on a tabular dataset without ``client_lr``; a pass budget the members' epochs do not divide.
        """
        optimizer = self.client_optimizer or ("sgd" if text else "adam")
        tuned = _TUNED.get(dataset, {})
        lr = self.client_lr
        if lr is None and optimizer == "adam" and self.client_optimizer is None:
            lr = tuned.get("client_lr")  # a tuned learning rate belongs to the tuned (default) optimiser only
        if lr is None and optimizer == "sgd" and text:
            lr = 0.3
        if lr is None and optimizer == "sgd":
            raise ValueError("BenchConfig: client_optimizer='sgd' on a tabular dataset needs an explicit client_lr.")
        sync_every_epoch = text or bool(tuned.get("sync_every_epoch", False))
        budget = self.rounds * self.epochs_per_round(text)
        epochs = self.client_local_epochs or (1 if sync_every_epoch else self.epochs_per_round(text))
        if budget % epochs:
            raise ValueError(
                f"BenchConfig: client_local_epochs={epochs} does not divide the pass budget rounds x local_epochs = "
                f"{budget}."
            )
        batch = self.client_batch_size or tuned.get("client_batch_size")
        return {
            "optimizer": optimizer,
            "learning_rate": lr,
            "batch_size": batch,
            "local_epochs": epochs,
            "rounds": budget // epochs,
            "algorithm": self.client_algorithm or str(tuned.get("client_algorithm", "plain")),
            # Like the learning rate, a tuned schedule belongs to the tuned optimiser only.
            "lr_schedule": self.client_lr_schedule
            or (str(tuned.get("client_lr_schedule", "constant")) if self.client_optimizer is None else "constant"),
            "lr_floor": float(self.client_lr_floor or tuned.get("client_lr_floor", 0.1)),
            "tail_average": int(self.tail_average if self.tail_average is not None else tuned.get("tail_average", 0)),
        }

    def epochs_per_round(self, text: bool) -> int:
        """Local epochs per federated round: ``local_epochs``, or the default for the kind of dataset.

        Parameters
        ----------
        text : bool
            Whether the dataset is text (hashed n-gram vectors, e.g. SMS).

        Returns
        -------
        int
            Epochs per round.
        """
        if self.local_epochs is not None:
            return int(self.local_epochs)
        return 5 if text else 2

    def autoencoder_step(self, dataset: str, text: bool) -> tuple[float, int]:
        """The autoencoder's input noise and epochs per round, with the per-dataset defaults filled in.

        Parameters
        ----------
        dataset : str
            The dataset's name (``BenchDataset.name``).
        text : bool
            Whether the dataset is text.

        Returns
        -------
        noise, local_epochs : float, int
            Explicit settings win. Defaults: for ``nsl-kdd`` a denoising autoencoder (noise 0.3) trained twice
            as long as the classifier (4 epochs per round), chosen by leave-attack-types-out validation inside
            KDDTrain+ (docs/benchmarks.md); for other datasets no noise and the classifier's epochs per round.
        """
        tuned = _TUNED.get(dataset, {})
        noise = self.ae_noise if self.ae_noise is not None else float(tuned.get("ae_noise", 0.0))
        if self.ae_local_epochs is not None:
            return float(noise), int(self.ae_local_epochs)
        return float(noise), int(tuned.get("ae_epochs_factor", 1)) * self.epochs_per_round(text)

    def hybrid_step(self, dataset: str) -> tuple[bool, float | None]:
        """The hybrid's members and the cap on the autoencoder's surprise, with the per-dataset defaults filled in.

        Parameters
        ----------
        dataset : str
            The dataset's name (``BenchDataset.name``).

        Returns
        -------
        forest, cap : bool, float or None
            Whether the hybrid has a federated isolation forest, and the autoencoder's surprise cap (None: no
            cap). Explicit settings win; defaults: ``nsl-kdd`` adds the forest and caps at 2 (chosen by
            leave-attack-types-and-benign-modes-out validation inside KDDTrain+, docs/benchmarks.md), other
            datasets neither.
        """
        tuned = _TUNED.get(dataset, {})
        forest = self.hybrid_forest if self.hybrid_forest is not None else bool(tuned.get("hybrid_forest", False))
        cap = self.ae_surprise_cap if self.ae_surprise_cap is not None else tuned.get("ae_surprise_cap")
        if cap is not None and math.isinf(cap):
            cap = None
        return forest, None if cap is None else float(cap)

    def hybrid_trust_step(self, dataset: str) -> bool:
        """Whether the hybrid gates its classifier's surprise by a federated k-means trust model.

        Parameters
        ----------
        dataset : str
            The dataset's name (``BenchDataset.name``).

        Returns
        -------
        bool
            ``hybrid_trust`` if set; else the dataset's default (on for ``nsl-kdd``: chosen by the
            leave-attack-types-benign-modes-and-hard-variants-out validation inside KDDTrain+, docs/benchmarks.md).
        """
        return bool(self._setting("hybrid_trust", dataset, False))

    def forest_rarity_step(self, dataset: str) -> int:
        """Copies of the rarity columns the federated isolation forest appends (0: none).

        Parameters
        ----------
        dataset : str
            The dataset's name (``BenchDataset.name``).

        Returns
        -------
        int
            ``forest_rarity`` if set; else the dataset's default (5 for ``nsl-kdd``: chosen on KDDTrain+ validation
            designs, docs/benchmarks.md; 0 elsewhere).
        """
        return int(self._setting("forest_rarity", dataset, 0))

    def _setting(self, name: str, dataset: str, default: Any) -> Any:
        """The field ``name`` if set explicitly, else the dataset's tuned default, else ``default``."""
        value = getattr(self, name)
        return value if value is not None else _TUNED.get(dataset, {}).get(name, default)

    def classifier_augment(self, dataset: str, feature_names: Sequence[str]) -> tuple[float, tuple[str, ...]]:
        """The classifier's benign-mode augmentation: the share of copies and the one-hot groups redrawn.

        Parameters
        ----------
        dataset : str
            The dataset's name (``BenchDataset.name``).
        feature_names : sequence of str
            Its columns; a one-hot group ``g`` is every column named ``"g=<value>"``.

        Returns
        -------
        share, groups : float, tuple of str
            ``clf_mode_swap`` (default: ``nsl-kdd`` 0.3, chosen by the leave-attack-types, benign-modes and hard
            attack variants out validation inside KDDTrain+, docs/benchmarks.md; else 0) and the groups (the
            dataset's tuned groups, else every one-hot group of two or more columns; empty when the share is 0).

        Raises
        ------
        ValueError
            A share above 0 on a dataset without one-hot groups.
        """
        tuned = _TUNED.get(dataset, {})
        share = float(self.clf_mode_swap if self.clf_mode_swap is not None else tuned.get("clf_mode_swap", 0.0))
        if share == 0:
            return 0.0, ()
        groups = tuple(tuned.get("clf_mode_groups", ()))
        if not groups:
            prefixes = [n.split("=", 1)[0] for n in feature_names if "=" in n]
            groups = tuple(sorted(g for g in set(prefixes) if prefixes.count(g) >= 2))
        if not groups:
            raise ValueError(f"BenchConfig: clf_mode_swap={share} but {dataset!r} has no one-hot feature groups.")
        return share, groups
