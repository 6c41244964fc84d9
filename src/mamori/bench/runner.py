"""``mamori bench``: split a public dataset among institutions, train every regime and reference, judge alike."""

from __future__ import annotations

import logging
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from mamori.bench.augment import mode_swap_rows
from mamori.bench.config import BenchConfig
from mamori.bench.dataset import BenchDataset
from mamori.bench.metrics import best_f1_threshold, score_metrics
from mamori.bench.provenance import numerics, source_revision
from mamori.bench.references import fit_hist_gradient_boosting, fit_isolation_forest, fit_logistic_regression
from mamori.bench.split import dirichlet_split, split_skew
from mamori.errors import ConfigError
from mamori.features import FeatureStats, Standardizer
from mamori.federation import EstimatorTrainer, FederationConfig, RoundReport, run_federation
from mamori.models import (
    AttackClassifier,
    AutoencoderDetector,
    CategoryRarity,
    FederatedIsolationForest,
    FederatedKMeans,
    HybridDetector,
    MessageClassifier,
    ReconstructionScorer,
    ScoreStats,
    one_hot_groups,
)

__all__ = ["ProgressCallback", "RESULT_KEYS", "aggregate_seeds", "run_bench", "run_bench_seeds"]

logger = logging.getLogger(__name__)

#: ``progress(stage, done, total)``; the CLI renders it as progress bars.
ProgressCallback = Callable[[str, int, int], None]

#: Rows of the results table, in display order: (model, regime).
RESULT_KEYS: tuple[tuple[str, str], ...] = (
    ("classifier", "local median"),
    ("classifier", "local worst"),
    ("classifier", "federated"),
    ("classifier", "centralized"),
    ("autoencoder", "local median"),
    ("autoencoder", "local worst"),
    ("autoencoder", "federated"),
    ("autoencoder", "centralized"),
    ("hybrid", "local median"),
    ("hybrid", "local worst"),
    ("hybrid", "federated"),
    ("hybrid", "centralized"),
    ("hist_gradient_boosting", "centralized"),
    ("logistic_regression", "centralized"),
    ("isolation_forest", "federated"),
    ("isolation_forest", "centralized"),
    ("isolation_forest", "pooled, as federated"),
)
_METRICS = ("roc_auc", "pr_auc", "f1", "tpr_at_1pct_fpr")


@dataclass
class _Member:
    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray


class _Identity:
    """Stand-in scaler for datasets whose vectors are already normalised."""

    def transform(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float32)


def _members(dataset: BenchDataset, config: BenchConfig) -> tuple[list[_Member], list[np.ndarray]]:
    parts = dirichlet_split(
        dataset.category_train, config.institutions, config.alpha, config.seed, min_rows=config.min_rows
    )
    members = []
    for k, idx in enumerate(parts):
        rng = np.random.default_rng([config.seed, k, 7])
        idx = idx.copy()
        rng.shuffle(idx)
        n_val = max(1, int(round(len(idx) * config.validation_share)))
        val, train = np.sort(idx[:n_val]), np.sort(idx[n_val:])
        members.append(
            _Member(
                name=f"inst-{k:02d}",
                X_train=dataset.X_train[train],
                y_train=dataset.y_train[train],
                X_val=dataset.X_train[val],
                y_val=dataset.y_train[val],
            )
        )
    return members, parts


def _versions() -> dict[str, str]:
    out = {}
    for name in ("mamori", "flwr", "torch", "scikit-learn", "numpy", "polars"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _summarise_local(per_member: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Median and worst institution, metric by metric (worst = lowest; NaNs, e.g. single-class, count as 0)."""
    median: dict[str, Any] = {}
    worst: dict[str, Any] = {}
    for metric in (*_METRICS, "precision", "recall"):
        values = np.array([m[metric] for m in per_member.values()], dtype=np.float64)
        values = np.where(np.isnan(values), 0.0, values)
        median[metric] = float(np.median(values))
        worst[metric] = float(values.min())
        worst[f"{metric}_institution"] = list(per_member)[int(np.argmin(values))]
    return median, worst


class _Context:
    """Everything one run shares: data, scalers, judging."""

    def __init__(self, dataset: BenchDataset, config: BenchConfig, members: list[_Member]) -> None:
        self.dataset = dataset
        self.config = config
        self.members = members
        self.n_features = dataset.n_features
        self.text = not dataset.standardise
        if dataset.standardise:
            self.member_stats = [FeatureStats.from_matrix(m.X_train) for m in members]
            self.scaler: Standardizer | _Identity = Standardizer().fit_stats(FeatureStats.merge(self.member_stats))
        else:
            self.member_stats = []
            self.scaler = _Identity()
        # The classifiers' benign-mode augmentation (NSL-KDD): each member's own benign rows, copied with random
        # service/flag values (raw units; standardised with whichever scaler the model uses). Drawn once per member
        # so the local-only, federated and centralized classifiers see the same copies.
        self.mode_swap, self.mode_groups = config.classifier_augment(dataset.name, dataset.feature_names)
        self.swapped: list[np.ndarray] = [
            mode_swap_rows(
                m.X_train[m.y_train == 0],
                dataset.feature_names,
                self.mode_groups,
                self.mode_swap,
                np.random.default_rng([config.seed, k, 13]),
            )
            if self.mode_swap > 0
            else m.X_train[:0]
            for k, m in enumerate(members)
        ]
        # The attack-class weight of the federated and centralized classifiers: one consortium-wide value from the
        # summed label counts (a secure sum), so members with skewed label mixes optimise the same objective
        # (the benign-mode copies count as benign rows: the classifiers train on them).
        n_pos = float(sum(m.y_train.sum() for m in members))
        n_neg = float(sum(len(m.y_train) for m in members)) - n_pos + float(sum(len(a) for a in self.swapped))
        self.pos_weight = float(min(max(n_neg / max(n_pos, 1.0), 1.0), 100.0))
        # The autoencoder's input noise and epochs per round (NSL-KDD: a denoising autoencoder trained longer).
        self.ae_noise, self.ae_local_epochs = config.autoencoder_step(dataset.name, self.text)
        # The hybrid's third member (a federated isolation forest) and the cap on the autoencoder's surprise.
        self.use_forest, self.ae_cap = config.hybrid_step(dataset.name)
        # The classifier's in-distribution gate: k-means centroids of the labelled training rows.
        self.use_trust = config.hybrid_trust_step(dataset.name)
        self.forest_rarity = config.forest_rarity_step(dataset.name)
        self.X_test = self.scaler.transform(dataset.X_test)
        self.X_val = np.concatenate([self.scaler.transform(m.X_val) for m in members])
        self.y_val = np.concatenate([m.y_val for m in members])
        # Per-row test scores by result key, kept only when the caller asks (run_bench(keep_test_scores=True)).
        self.test_scores: dict[str, np.ndarray] | None = None

    def classifier_rows(
        self, k: int, X_train: np.ndarray, y_train: np.ndarray, scaler: Standardizer | _Identity
    ) -> tuple[np.ndarray, np.ndarray]:
        """Member ``k``'s classifier training rows (already scaled) with its benign-mode copies appended."""
        extra = self.swapped[k]
        if len(extra) == 0:
            return X_train, y_train
        X = np.concatenate([X_train, scaler.transform(extra).astype(X_train.dtype, copy=False)])
        return X, np.concatenate([y_train, np.zeros(len(extra), dtype=y_train.dtype)])

    def own_scaler(self, k: int) -> Standardizer | _Identity:
        if not self.dataset.standardise:
            return _Identity()
        return Standardizer().fit_stats(self.member_stats[k])

    def classifier(
        self, epochs: int, pos_weight: float | str = "balanced", *, federated: bool = False
    ) -> AttackClassifier:
        c = self.config
        # Federated members may train with their own optimiser (BenchConfig.client_step): the same network and
        # loss, only the local update rule differs; local-only and centralized models keep Adam.
        step = c.client_step(self.text, self.dataset.name) if federated else {}
        opt: dict[str, Any] = {"optimizer": step.get("optimizer", "adam")}
        for key in ("learning_rate", "batch_size"):
            if step.get(key) is not None:
                opt[key] = step[key]
        if self.text:
            return MessageClassifier(epochs=epochs, seed=c.seed, pos_weight=pos_weight, **opt)
        return AttackClassifier(
            hidden_layers=c.hidden,
            epochs=epochs,
            seed=c.seed,
            pos_weight=pos_weight,
            **{"learning_rate": c.learning_rate, "batch_size": c.batch_size, **opt},
        )

    def autoencoder(self, epochs: int) -> AutoencoderDetector:
        c = self.config
        return AutoencoderDetector(
            hidden_layers=c.ae_hidden,
            epochs=epochs,
            batch_size=c.batch_size,
            learning_rate=c.learning_rate,
            seed=c.seed,
            noise=self.ae_noise,
        )

    def forest(self, members: Sequence[np.ndarray], *, rarity: bool = False) -> FederatedIsolationForest | None:
        """An isolation forest grown by every member on its own benign rows (one member: local or pooled).

        ``rarity``: with the one-hot fields' benign-rarity columns (``forest_rarity`` copies each) — the forest
        reported alone; the hybrid's forest member is always plain (chosen on validation, docs/benchmarks.md).
        """
        if not self.use_forest:
            return None
        groups = one_hot_groups(self.dataset.feature_names) if rarity and self.forest_rarity else []
        # Without one-hot fields (CSIC, SMS, most generic tables) there is nothing to make rare.
        model = CategoryRarity(groups, copies=self.forest_rarity) if groups else None
        return FederatedIsolationForest(seed=self.config.seed, rarity=model).fit(members)

    def trust(self, members: Sequence[np.ndarray]) -> FederatedKMeans | None:
        """k-means centroids of every member's labelled training rows, benign and attack (one member: local/pooled)."""
        if not self.use_trust:
            return None
        return FederatedKMeans(seed=self.config.seed).fit(members)

    def hybrid(
        self,
        clf: Any,
        scorer: ReconstructionScorer,
        forest: FederatedIsolationForest | None,
        trust: FederatedKMeans | None = None,
    ) -> HybridDetector:
        return HybridDetector(
            clf, scorer, fusion=self.config.hybrid_fusion, forest=forest, anomaly_cap=self.ae_cap, trust=trust
        )

    def judge(
        self,
        score: Callable[[np.ndarray], np.ndarray],
        X_val: np.ndarray,
        y_val: np.ndarray,
        X_test: np.ndarray,
        keep_as: str | None = None,
    ) -> dict[str, Any]:
        threshold = best_f1_threshold(y_val, score(X_val)) if len(y_val) else math.inf
        s_test = score(X_test)
        if keep_as is not None and self.test_scores is not None:
            self.test_scores[keep_as] = np.asarray(s_test, dtype=np.float64)
        metrics = score_metrics(
            self.dataset.y_test,
            s_test,
            threshold,
            categories=self.dataset.category_test,
            unseen=self.dataset.unseen_categories,
        )
        metrics["threshold"] = threshold
        return metrics

    def federate_classifier(
        self,
        trainers_data: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
        report: ProgressCallback,
    ) -> tuple[Any, dict[str, Any]]:
        """The federated classifier, trained with the members' settings of :meth:`BenchConfig.client_step`.

        One place for the bench and the validation scripts that replay its Flower path.
        """
        client = self.config.client_step(self.text, self.dataset.name)
        return self.federate(
            lambda: self.classifier(client["local_epochs"], self.pos_weight, federated=True),
            trainers_data,
            "federated classifier",
            report,
            server_optimizer=True,
            local_epochs=client["local_epochs"],
            rounds=client["rounds"],
            client_algorithm=client["algorithm"],
            lr_schedule=(client["lr_schedule"], client["lr_floor"]),
            tail_average=client["tail_average"],
        )

    def federate(
        self,
        make: Callable[[], Any],
        trainers_data: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
        stage: str,
        report: ProgressCallback,
        *,
        server_optimizer: bool = False,
        local_epochs: int | None = None,
        rounds: int | None = None,
        client_algorithm: str = "plain",
        lr_schedule: tuple[str, float] = ("constant", 1.0),
        tail_average: int = 0,
    ) -> tuple[Any, dict[str, Any]]:
        c = self.config
        n_rounds = c.rounds if rounds is None else rounds
        seed_model = make()
        seed_model.init_weights(self.n_features)
        shape, floor = lr_schedule
        trainers = []
        for _name, Xtr, ytr, Xev, yev in trainers_data:
            est = make()
            est.init_weights(self.n_features)
            trainers.append(EstimatorTrainer(est, Xtr, ytr, Xev, yev))
        n = len(trainers)
        # The members' learning-rate schedule (BenchConfig.client_lr_schedule: the coordinator sends each round's
        # factor) and server-side tail averaging (BenchConfig.tail_average: the model is the mean of the global
        # weights after each of the last rounds) are FederationConfig's, as in SecAgg+ runs and the deployment.
        fed_config = FederationConfig(
            num_rounds=n_rounds,
            local_epochs=local_epochs if local_epochs is not None else c.epochs_per_round(self.text),
            min_train_nodes=n,
            min_available_nodes=n,
            min_evaluate_nodes=n,
            evaluate_initial=False,
            seed=c.seed,
            client_algorithm=client_algorithm,  # type: ignore[arg-type]
            lr_schedule=shape,  # type: ignore[arg-type]
            lr_floor=floor if shape != "constant" else 1.0,
            tail_average=min(max(int(tail_average), 0), n_rounds),
            secure_aggregation=c.secure_aggregation,
            **(c.server_step(self.text, self.dataset.name) if server_optimizer else {}),  # type: ignore[arg-type]
        )

        def on_round(r: RoundReport) -> None:
            report(stage, r.server_round, n_rounds)

        started = time.perf_counter()
        flwr_logger = logging.getLogger("flwr")
        level = flwr_logger.level
        flwr_logger.setLevel(logging.WARNING)  # Flower logs every round at INFO; the bench reports progress itself
        try:
            fed = run_federation(
                trainers,
                seed_model.get_weights(),
                fed_config,
                on_round=on_round,
                member_names=[t[0] for t in trainers_data],
            )
        finally:
            flwr_logger.setLevel(level)
        model = make()
        model.init_weights(self.n_features)
        model.set_weights(fed.arrays)  # tail-averaged by the federation when fed_config.tail_average > 1
        history = [
            {
                "round": r.server_round,
                "loss": None if r.evaluate_loss is None else float(r.evaluate_loss),
                "pr_auc": float(r.evaluate_metrics.get("pr_auc", float("nan"))),
                "bytes": int(r.bytes_down + r.bytes_up),
            }
            for r in fed.history
        ]
        info = {
            "members": n,
            "local_epochs": fed_config.local_epochs,
            "server_optimizer": fed_config.server_optimizer,
            "server_lr_momentum": list(fed_config.server_settings()),
            "client_optimizer": getattr(seed_model, "optimizer", "adam"),
            "client_lr": float(seed_model.learning_rate),
            "client_algorithm": fed_config.client_algorithm,
            "secure_aggregation": fed_config.secure_aggregation,
            "client_lr_schedule": [fed_config.lr_schedule, fed_config.lr_floor],
            "tail_average": fed.tail_average,
            "rounds": history,
            "bytes_total": int(sum(h["bytes"] for h in history)),
            "final_hash": fed.weights_hash,  # of the model returned (tail-averaged when tail_average > 1)
            "last_round_hash": fed.last_round_hash,
            "seconds": time.perf_counter() - started,
        }
        return model, info


def run_bench(
    dataset: BenchDataset,
    config: BenchConfig | None = None,
    *,
    progress: ProgressCallback | None = None,
    keep_test_scores: bool = False,
) -> dict[str, Any]:
    """Split ``dataset`` among institutions; train local-only, federated and centralized models and references.

    Every model sees the same rows: each institution's share of the training pool minus a held-out validation
    part. Models are judged on the whole test split; F1 thresholds and the hybrid's benign score scales come
    from validation rows only (federated: pooled through sums; local-only: the institution's own).

    Parameters
    ----------
    dataset : BenchDataset
        From :func:`~mamori.bench.load_dataset`.
    config : BenchConfig or None, default=None
        Institutions, alpha, seed, rounds; None uses ``BenchConfig()``.
    progress : callable or None, default=None
        ``progress(stage, done, total)``.
    keep_test_scores : bool, default=False
        Also return ``test_scores``: every federated, centralized and reference model's raw score on each test row
        (by result key, float64, in test-row order), plus the federated hybrid's component surprises
        (``"hybrid/federated: classifier surprise"``, ``...: autoencoder surprise``, ``...: forest surprise``), for
        error analysis. Not JSON: :func:`save_test_scores` writes them as ``.npz``.

    Returns
    -------
    dict
        ``meta`` (config, versions, hardware with the CPU model and the kernels PyTorch runs on it, the source commit
        and its modified files, seconds), ``dataset`` (counts and split notes), ``split`` (skew per institution),
        ``results`` (``"model/regime"`` -> metrics, for every pair of :data:`RESULT_KEYS` that ran), ``local``
        (per-institution metrics), ``federation`` (rounds and bytes per federated model),
        ``seconds`` per stage.
    """
    started = time.perf_counter()
    report = progress or (lambda stage, done, total: None)
    config = config or BenchConfig()
    c = config
    members, parts = _members(dataset, c)
    skew = split_skew(parts, dataset.category_train, dataset.y_train, [m.name for m in members])
    ctx = _Context(dataset, c, members)
    client = c.client_step(ctx.text, dataset.name)  # an invalid member setting fails now, not after local-only
    local_epochs = c.epochs_per_round(ctx.text)
    epochs = c.rounds * local_epochs
    ae_epochs = c.rounds * ctx.ae_local_epochs
    use_ae = c.autoencoder and not ctx.text
    results: dict[str, Any] = {}
    local: dict[str, dict[str, Any]] = {"classifier": {}, "autoencoder": {}, "hybrid": {}}
    seconds: dict[str, float] = {}
    federation: dict[str, Any] = {}
    if keep_test_scores:
        ctx.test_scores = {}

    def judged(
        key: str,
        score: Callable[[np.ndarray], np.ndarray],
        X_val: np.ndarray = ctx.X_val,
        y_val: np.ndarray = ctx.y_val,
        X_test: np.ndarray = ctx.X_test,
    ) -> dict[str, Any]:
        results[key] = ctx.judge(score, X_val, y_val, X_test, keep_as=key)
        return results[key]

    # (a) local-only: each institution alone, with its own feature statistics.
    t0 = time.perf_counter()
    for k, m in enumerate(members):
        scaler = ctx.own_scaler(k)
        Xtr, Xval, Xte = scaler.transform(m.X_train), scaler.transform(m.X_val), scaler.transform(dataset.X_test)
        clf = ctx.classifier(epochs).fit(*ctx.classifier_rows(k, Xtr, m.y_train, scaler))
        local["classifier"][m.name] = ctx.judge(clf.decision_function, Xval, m.y_val, Xte)
        benign_tr = Xtr[m.y_train == 0]
        benign_val = Xval[m.y_val == 0]
        if use_ae and c.local_anomaly and len(benign_tr) >= 2 and len(benign_val) >= 2:
            ae = ReconstructionScorer(ctx.autoencoder(ae_epochs).fit(benign_tr), aggregate=c.anomaly_score).fit(
                benign_val
            )
            local["autoencoder"][m.name] = ctx.judge(ae.decision_function, Xval, m.y_val, Xte)
            hybrid = ctx.hybrid(clf, ae, ctx.forest([benign_tr]), ctx.trust([Xtr])).calibrate(benign_val)
            local["hybrid"][m.name] = ctx.judge(hybrid.decision_function, Xval, m.y_val, Xte)
        elif use_ae and c.local_anomaly:
            # No normal traffic of its own: no autoencoder; the institution's hybrid is its classifier alone.
            nan = {k2: math.nan for k2 in (*_METRICS, "precision", "recall")}
            local["autoencoder"][m.name] = {**nan, "note": "no benign rows: no autoencoder"}
            local["hybrid"][m.name] = {**local["classifier"][m.name], "note": "classifier only (no benign rows)"}
        report("local-only", k + 1, len(members))
    for model, per in local.items():
        if per:
            results[f"{model}/local median"], results[f"{model}/local worst"] = _summarise_local(per)
    seconds["local"] = time.perf_counter() - t0

    # (b) federated over Flower, with consortium-wide feature statistics.
    t0 = time.perf_counter()
    scaled = [
        (m.name, ctx.scaler.transform(m.X_train), m.y_train, ctx.scaler.transform(m.X_val), m.y_val) for m in members
    ]
    clf_scaled = [
        (name, *ctx.classifier_rows(k, Xtr, ytr, ctx.scaler), Xv, yv)
        for k, (name, Xtr, ytr, Xv, yv) in enumerate(scaled)
    ]
    fed_clf, federation["classifier"] = ctx.federate_classifier(clf_scaled, report)
    judged("classifier/federated", fed_clf.decision_function)
    if use_ae:
        ae_data = [
            (name, Xtr[ytr == 0], np.zeros(int((ytr == 0).sum()), dtype=np.int64), Xv, yv)
            for name, Xtr, ytr, Xv, yv in scaled
            if int((ytr == 0).sum()) >= 2
        ]
        fed_ae, federation["autoencoder"] = ctx.federate(
            lambda: ctx.autoencoder(ctx.ae_local_epochs),
            ae_data,
            "federated autoencoder",
            report,
            local_epochs=ctx.ae_local_epochs,
        )
        # Two secure sums over the members' benign validation rows: per-feature error sums, then score histograms.
        scorer = ReconstructionScorer(fed_ae, aggregate=c.anomaly_score)
        benign_vals = [Xv[yv == 0] for _n, _Xt, _yt, Xv, yv in scaled if (yv == 0).sum() >= 1]
        sums = [scorer.member_sums(Xb) for Xb in benign_vals]
        scorer.fit_sums(np.sum([s[0] for s in sums], axis=0), sum(s[1] for s in sums))
        judged("autoencoder/federated", scorer.decision_function)
        # Each member grows trees on its own benign training rows and shares only the trees (no rows; the split
        # thresholds do reveal coarse value ranges of its rows, see mamori.models.forest).
        t_forest = time.perf_counter()
        benign_tr = [Xtr[ytr == 0] for _n, Xtr, ytr, _Xv, _yv in scaled]
        fed_forest = ctx.forest(benign_tr)  # the hybrid's member
        # Reported alone: with the rarity columns when asked (one more secure sum, of per-value benign counts).
        alone = ctx.forest(benign_tr, rarity=True) if ctx.forest_rarity else fed_forest
        if alone is not None:
            judged("isolation_forest/federated", alone.decision_function)
            federation["isolation_forest"] = {
                "members": len(alone.members_),
                "trees": [len(f.estimators_) for f in alone.members_],
                "rarity_copies": alone.rarity.copies if alone.rarity is not None else 0,
                "seconds": time.perf_counter() - t_forest,
            }
        # Each member clusters its own labelled training rows and shares the centroids of clusters of >= 5 rows.
        fed_trust = ctx.trust([Xtr for _n, Xtr, _ytr, _Xv, _yv in scaled])
        hybrid = ctx.hybrid(fed_clf, scorer, fed_forest, fed_trust)
        parts_stats = [hybrid.member_stats(Xb) for Xb in benign_vals]
        hybrid.calibrate_stats(*(ScoreStats.merge(p[i] for p in parts_stats) for i in range(len(parts_stats[0]))))
        judged("hybrid/federated", hybrid.decision_function)
        if ctx.test_scores is not None:
            names = ("classifier", "autoencoder", "forest")
            for name, part in zip(names, hybrid.component_scores(ctx.X_test), strict=False):
                ctx.test_scores[f"hybrid/federated: {name} surprise"] = np.asarray(part, dtype=np.float64)
        results["hybrid/federated"]["calibration"] = {
            "benign_validation_rows": hybrid.classifier_stats_.count,
            "members": len(parts_stats),
        }
    seconds["federated"] = time.perf_counter() - t0

    # (c) centralized on pooled rows: the upper bound no real consortium may run.
    t0 = time.perf_counter()
    X_pool = np.concatenate([s[1] for s in scaled])
    y_pool = np.concatenate([s[2] for s in scaled])
    # The same tail averaging as the federated classifier's server, over the same share of the passes.
    cen_tail = min(client["tail_average"] * client["local_epochs"], epochs)
    cen_clf = ctx.classifier(epochs, ctx.pos_weight).fit_averaged(
        np.concatenate([s[1] for s in clf_scaled]), np.concatenate([s[2] for s in clf_scaled]), tail=max(cen_tail, 1)
    )
    del clf_scaled
    judged("classifier/centralized", cen_clf.decision_function)
    report("centralized", 1, 2 if use_ae else 1)
    if use_ae:
        cen_ae = ReconstructionScorer(
            ctx.autoencoder(ae_epochs).fit(X_pool[y_pool == 0]), aggregate=c.anomaly_score
        ).fit(ctx.X_val[ctx.y_val == 0])
        judged("autoencoder/centralized", cen_ae.decision_function)
        cen_forest = ctx.forest([X_pool[y_pool == 0]])
        # The federated forest's own model (with the rarity columns) on the pooled rows: its fair centralized pair.
        pooled = ctx.forest([X_pool[y_pool == 0]], rarity=True) if ctx.forest_rarity else None
        if pooled is not None:
            judged("isolation_forest/pooled, as federated", pooled.decision_function)
        hybrid = ctx.hybrid(cen_clf, cen_ae, cen_forest, ctx.trust([X_pool])).calibrate(ctx.X_val[ctx.y_val == 0])
        judged("hybrid/centralized", hybrid.decision_function)
        report("centralized", 2, 2)
    del X_pool
    seconds["centralized"] = time.perf_counter() - t0

    # (d) centralized scikit-learn references on the same pooled rows (raw features).
    if c.references:
        t0 = time.perf_counter()
        X_raw = np.concatenate([m.X_train for m in members])
        y_raw = np.concatenate([m.y_train for m in members])
        X_val_raw = np.concatenate([m.X_val for m in members])
        with threadpool_limits(1):  # deterministic and polite on a shared machine
            if ctx.text:  # boosting over thousands of hashed text columns takes many minutes: a linear reference
                ref = fit_logistic_regression(X_raw, y_raw, seed=c.seed)
                ref_key = "logistic_regression/centralized"
            else:
                ref = fit_hist_gradient_boosting(X_raw, y_raw, seed=c.seed, max_rows=c.max_reference_rows)
                ref_key = "hist_gradient_boosting/centralized"
        judged(ref_key, ref.decision_function, X_val_raw, ctx.y_val, dataset.X_test)
        report("references", 1, 2)
        iso = fit_isolation_forest(X_raw[y_raw == 0], seed=c.seed, max_rows=c.max_reference_rows)
        judged("isolation_forest/centralized", lambda X: -iso.score_samples(X), X_val_raw, ctx.y_val, dataset.X_test)
        report("references", 2, 2)
        seconds["references"] = time.perf_counter() - t0

    seconds["total"] = time.perf_counter() - started
    return {
        "meta": {
            "dataset": dataset.name,
            "config": config.model_dump(mode="json"),
            "local_epochs": local_epochs,
            "autoencoder": {"noise": ctx.ae_noise, "local_epochs": ctx.ae_local_epochs} if use_ae else None,
            "hybrid": {
                "fusion": c.hybrid_fusion,
                "forest": ctx.use_forest,
                "ae_surprise_cap": ctx.ae_cap,
                "trust": ctx.use_trust,
            }
            if use_ae
            else None,
            "classifier_mode_swap": {
                "share": ctx.mode_swap,
                "groups": list(ctx.mode_groups),
                "rows": [len(a) for a in ctx.swapped],
            },
            "versions": _versions(),
            "hardware": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": sys.version.split()[0],
                **numerics(),
            },
            "source": source_revision(),
            "method": (
                "Dirichlet split of the training pool over categories; each institution holds out "
                f"{config.validation_share:.0%} of its rows for validation. Every model is judged on the whole test "
                "split; F1 uses a threshold chosen on validation rows; TPR at 1% FPR, ROC-AUC and PR-AUC (average "
                "precision) rank raw scores (logits for classifiers)."
            ),
        },
        "dataset": dataset.describe(),
        "split": skew,
        "results": {f"{m}/{r}": results[f"{m}/{r}"] for m, r in RESULT_KEYS if f"{m}/{r}" in results},
        "local": {k: v for k, v in local.items() if v},
        "federation": federation,
        "seconds": seconds,
    } | ({"test_scores": ctx.test_scores} if ctx.test_scores is not None else {})


def aggregate_seeds(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Mean and standard deviation over seeds of every headline metric.

    Parameters
    ----------
    runs : sequence of dict
        Outputs of :func:`run_bench` with different seeds.

    Returns
    -------
    dict
        ``"model/regime"`` -> metric -> ``{"mean", "std", "n"}`` (std with ``ddof=1``; 0 for one seed); the
        seen/unseen figures appear as ``unseen.tpr_at_1pct_fpr`` and so on.
    """
    if not runs:
        raise ConfigError("aggregate_seeds: no runs given.")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for key in runs[0]["results"]:
        per_metric: dict[str, list[float]] = {}
        for run in runs:
            r = run["results"].get(key, {})
            for metric in _METRICS:
                per_metric.setdefault(metric, []).append(float(r.get(metric, math.nan)))
            for group in ("seen", "unseen"):
                if group in r:
                    for metric in ("pr_auc", "tpr_at_1pct_fpr"):
                        per_metric.setdefault(f"{group}.{metric}", []).append(float(r[group][metric]))
        out[key] = {
            metric: {
                "mean": float(np.mean(v)),
                "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
                "n": len(v),
            }
            for metric, v in per_metric.items()
        }
    return out


def run_bench_seeds(
    dataset: BenchDataset,
    config: BenchConfig,
    seeds: Sequence[int],
    *,
    progress: ProgressCallback | None = None,
    keep_test_scores: bool = False,
) -> dict[str, Any]:
    """Run :func:`run_bench` once per seed (institution split and model seeds change; the dataset does not).

    Parameters
    ----------
    dataset : BenchDataset
        The dataset.
    config : BenchConfig
        Settings; its ``seed`` is replaced by each of ``seeds``.
    seeds : sequence of int
        At least one seed.
    progress : callable or None, default=None
        ``progress(stage, done, total)``; stages are prefixed with ``seed N:``.
    keep_test_scores : bool, default=False
        Each run also returns its ``test_scores`` (see :func:`run_bench`).

    Returns
    -------
    dict
        ``runs`` (each :func:`run_bench` output) and ``aggregate`` (:func:`aggregate_seeds`).
    """
    if not seeds:
        raise ConfigError("run_bench_seeds: give at least one seed.")
    runs = []
    for s in seeds:
        cb = None if progress is None else (lambda stage, d, t, s=s: progress(f"seed {s}: {stage}", d, t))
        runs.append(
            run_bench(
                dataset, config.model_copy(update={"seed": int(s)}), progress=cb, keep_test_scores=keep_test_scores
            )
        )
    return {"runs": runs, "aggregate": aggregate_seeds(runs)}
