"""The hybrid detector: a supervised classifier and a label-free autoencoder combined into one calibrated score.

Each component's score is put on the same scale — how rare such a score is among benign traffic — and the
hybrid score is the larger of the two. An attack the classifier has learnt scores high on the first; an
attack nobody has labelled yet (so the classifier shrugs) still reconstructs badly and scores high on the
second. The benign score distributions are histograms on a fixed grid, so a consortium merges them through one
secure sum (:class:`ScoreStats`), exactly like feature statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mamori.errors import ConfigError, NotFittedError
from mamori.models.autoencoder import AutoencoderDetector
from mamori.models.classifier import AttackClassifier
from mamori.models.forest import FederatedIsolationForest
from mamori.models.kmeans import FederatedKMeans

__all__ = ["HybridDetector", "ReconstructionScorer", "ScoreStats", "anomaly_log_score"]

logger = logging.getLogger(__name__)

_EPS = 1e-12


def anomaly_log_score(errors: np.ndarray) -> np.ndarray:
    """Log of the mean reconstruction error: closer to normal-shaped than the error itself.

    Parameters
    ----------
    errors : numpy.ndarray
        Autoencoder anomaly scores (``AutoencoderDetector.decision_function``).

    Returns
    -------
    numpy.ndarray
        ``log(errors + 1e-12)``, float64.
    """
    return np.log(np.asarray(errors, dtype=np.float64) + _EPS)


@dataclass(frozen=True)
class ScoreStats:
    """A histogram of one detector's scores on benign rows over a fixed grid: summable across members.

    Parameters
    ----------
    counts : numpy.ndarray
        Shape ``(n_bins,)``, float64: benign scores per bin. Scores below ``low`` count in the first bin,
        above ``high`` in the last.
    low : float, default=-60.0
        Lower edge of the grid.
    high : float, default=60.0
        Upper edge of the grid.

    Notes
    -----
    Every member builds its histogram on the same grid, so the consortium's histogram is the sum of the
    members' (one secure sum of :meth:`to_summable`). No single score leaves a member.
    """

    counts: np.ndarray
    low: float = -60.0
    high: float = 60.0

    @property
    def edges(self) -> np.ndarray:
        """Bin edges, shape ``(n_bins + 1,)``."""
        return np.linspace(self.low, self.high, len(self.counts) + 1)

    @classmethod
    def from_scores(
        cls, scores: np.ndarray, *, n_bins: int = 4800, low: float = -60.0, high: float = 60.0
    ) -> ScoreStats:
        """Histogram of one member's benign scores.

        Parameters
        ----------
        scores : numpy.ndarray
            Shape ``(n,)``; non-finite values are ignored.
        n_bins : int, default=4800
            Bins (0.025 wide on the default grid).
        low, high : float, default=-60.0, 60.0
            Grid range; every member must use the same.

        Returns
        -------
        ScoreStats
            The histogram.
        """
        s = np.asarray(scores, dtype=np.float64).ravel()
        s = np.clip(s[np.isfinite(s)], low, high)
        counts, _ = np.histogram(s, bins=n_bins, range=(low, high))
        return cls(counts.astype(np.float64), float(low), float(high))

    @classmethod
    def merge(cls, parts: Iterable[ScoreStats]) -> ScoreStats:
        """Sum members' histograms (what secure aggregation of :meth:`to_summable` vectors computes).

        Parameters
        ----------
        parts : iterable of ScoreStats
            One per member, on the same grid.

        Returns
        -------
        ScoreStats
            The consortium's histogram.
        """
        parts = list(parts)
        if not parts:
            raise ConfigError("ScoreStats.merge: needs at least one member's statistics.")
        grids = {(len(p.counts), p.low, p.high) for p in parts}
        if len(grids) != 1:
            raise ConfigError(f"ScoreStats.merge: members used different grids {sorted(grids)}.")
        return cls(np.sum([p.counts for p in parts], axis=0), parts[0].low, parts[0].high)

    def to_summable(self) -> np.ndarray:
        """Return the bin counts (float64), for secure aggregation."""
        return self.counts.astype(np.float64)

    @classmethod
    def from_summable(cls, vector: np.ndarray, *, low: float = -60.0, high: float = 60.0) -> ScoreStats:
        """Inverse of :meth:`to_summable` (the grid range must be the one the members used).

        Parameters
        ----------
        vector : numpy.ndarray
            Bin counts.
        low, high : float, default=-60.0, 60.0
            Grid range.

        Returns
        -------
        ScoreStats
            The histogram.
        """
        return cls(np.asarray(vector, dtype=np.float64).ravel(), float(low), float(high))

    @property
    def count(self) -> float:
        """Benign rows in the histogram."""
        return float(self.counts.sum())

    def tail_probability(self, scores: np.ndarray) -> np.ndarray:
        """Estimated share of benign rows scoring at least ``scores``: the empirical false-positive rate.

        Parameters
        ----------
        scores : numpy.ndarray
            Scores to look up.

        Returns
        -------
        numpy.ndarray
            In ``(0, 1]``. Within the benign range, the empirical tail ``(#benign >= s + 0.5) / (n + 1)`` with
            log-linear interpolation between non-empty bins, so ranks are not tied; beyond the highest benign
            score, an exponential tail continuing the slope between the benign 90% quantile and the maximum, so
            scores far above anything benign keep their order.
        """
        n = self.count
        if n < 2:
            raise ConfigError("ScoreStats.tail_probability: needs at least 2 benign scores.")
        edges = self.edges
        centres = 0.5 * (edges[:-1] + edges[1:])
        filled = np.flatnonzero(self.counts)
        # Knots at the centres of non-empty bins: P(score >= centre) counting half of the bin itself; log P is
        # interpolated linearly between knots, so the estimate decreases strictly and ranks are not tied.
        above = np.cumsum(self.counts[::-1])[::-1] - 0.5 * self.counts
        x = centres[filled]
        logp = np.log((above[filled] + 0.5) / (n + 1.0))
        raw = np.asarray(scores, dtype=np.float64)
        if x.size == 1:
            return np.where(raw <= x[0], 1.0, 0.5 / (n + 1.0))
        p = np.exp(np.interp(raw, x, logp, left=0.0))
        # Beyond the highest benign score: continue with the slope between the benign 90% quantile and the top.
        q90 = int(np.searchsorted(-logp, -np.log(0.1), side="left"))
        q90 = min(max(q90, 0), x.size - 2)
        slope = (logp[-1] - logp[q90]) / max(x[-1] - x[q90], 1e-9)
        slope = min(slope, -1e-3)
        beyond = raw > x[-1]
        p = np.where(beyond, np.exp(logp[-1] + slope * (raw - x[-1])), p)
        return np.clip(p, 1e-300, 1.0)


class ReconstructionScorer:
    """The autoencoder's anomaly score with each feature's error in units of its typical benign error.

    The plain score (mean squared reconstruction error) is dominated by the few features an autoencoder
    reconstructs worst even on normal traffic — rare one-hot values, heavy-tailed counts. Here each feature's
    squared error is divided by its mean on benign rows, ``r_j = err_j / benign_err_j``, and the ratios are
    combined by ``aggregate``:

    - ``"mean"``: ``mean_j log1p(r_j)`` — every feature counts a little;
    - ``"top"``: the mean of the ``top_k`` largest ``log(r_j)`` — a row is as anomalous as its few worst
      reconstructed features. An attack often changes one or two columns that are always zero on normal
      traffic (a parameter name nobody sends, a quote in a field that never holds one); averaged over hundreds
      of ordinary columns that signal drowns in their noise, while the largest ratios keep it.

    The benign means come from per-feature sums and a count, so a consortium merges them with one secure sum.

    Parameters
    ----------
    autoencoder : AutoencoderDetector
        A trained autoencoder.
    aggregate : {"mean", "top"}, default="mean"
        How the per-feature ratios become one score.
    top_k : int, default=3
        Features averaged by ``aggregate="top"``.

    Attributes
    ----------
    feature_scale_ : numpy.ndarray
        Mean benign squared error per feature (plus 1e-6).
    """

    def __init__(self, autoencoder: AutoencoderDetector, aggregate: str = "mean", top_k: int = 3) -> None:
        if aggregate not in ("mean", "top"):
            raise ConfigError(f"ReconstructionScorer: aggregate must be 'mean' or 'top'; got {aggregate!r}.")
        if int(top_k) < 1:
            raise ConfigError(f"ReconstructionScorer: top_k must be >= 1; got {top_k!r}.")
        self.autoencoder = autoencoder
        self.aggregate = aggregate
        self.top_k = int(top_k)

    def member_sums(self, X_benign: Any) -> tuple[np.ndarray, float]:
        """One member's contribution: per-feature sums of squared errors over its benign rows, and their count.

        Parameters
        ----------
        X_benign : array-like
            Rows the member believes benign (not used for training).

        Returns
        -------
        sums : numpy.ndarray
            Shape ``(n_features,)``.
        count : float
            Rows.
        """
        errors = self.autoencoder.reconstruction_errors(X_benign)
        return errors.sum(axis=0), float(errors.shape[0])

    def fit_sums(self, sums: np.ndarray, count: float) -> ReconstructionScorer:
        """Set the per-feature benign error scale from (merged) sums.

        Parameters
        ----------
        sums : numpy.ndarray
            Summed :meth:`member_sums` vectors.
        count : float
            Summed counts.

        Returns
        -------
        ReconstructionScorer
            ``self``.
        """
        if count < 1:
            raise ConfigError("ReconstructionScorer.fit_sums: needs at least one benign row.")
        self.feature_scale_ = np.asarray(sums, dtype=np.float64) / float(count) + 1e-6
        return self

    def fit(self, X_benign: Any, y: object = None) -> ReconstructionScorer:
        """Set the scale from benign rows at hand.

        Parameters
        ----------
        X_benign : array-like
            Benign rows not used for training.
        y : ignored
            Present for the scikit-learn contract.

        Returns
        -------
        ReconstructionScorer
            ``self``.
        """
        return self.fit_sums(*self.member_sums(X_benign))

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the normalised anomaly score (higher is more anomalous).

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64.

        Raises
        ------
        NotFittedError
            Before :meth:`fit` / :meth:`fit_sums`.
        """
        if not hasattr(self, "feature_scale_"):
            raise NotFittedError("ReconstructionScorer: call fit(X_benign) or fit_sums(...) first.")
        ratios = self.autoencoder.reconstruction_errors(X) / self.feature_scale_
        if self.aggregate == "mean":
            return np.log1p(ratios).mean(axis=1)
        k = min(self.top_k, ratios.shape[1])
        # The k largest ratios per row (partition: no full sort), in log units.
        top = np.partition(ratios, ratios.shape[1] - k, axis=1)[:, -k:] if ratios.shape[0] else ratios[:, :k]
        return np.log(top + 1e-12).mean(axis=1)


class HybridDetector:
    """Supervised classifier + label-free autoencoder (+ optional isolation forest), one benign-tail score.

    Parameters
    ----------
    classifier : AttackClassifier
        A trained classifier (its logits are the supervised score).
    autoencoder : AutoencoderDetector or ReconstructionScorer
        A trained autoencoder, or a fitted :class:`ReconstructionScorer` around one (then its normalised score
        is the anomaly score; a bare autoencoder contributes its log mean squared error).
    fusion : {"max", "sum"}, default="max"
        How the two surprises become one score: the larger (min-p: each view spends about the same
        false-positive budget) or their sum (``-log10`` of the product of both tail probabilities, Fisher-style:
        a row mildly suspicious to both views outranks one only the classifier finds odd).
    forest : FederatedIsolationForest or None, default=None
        A third, label-free view: an isolation forest grown on believed-normal rows (federated: every member's
        trees). Its surprise joins the fusion like the other two.
    anomaly_cap : float or None, default=None
        Upper bound on the autoencoder's surprise before fusion (e.g. 2: its vote saturates at its 1% benign
        tail). Benign traffic of a kind the autoencoder never saw (a service or flag rare among normal
        training rows) reconstructs badly and would otherwise outrank real attacks; capped, the autoencoder
        still lifts rows the other views find mildly odd. None: no cap.
    trust : FederatedKMeans or None, default=None
        An in-distribution check for the classifier: k-means centroids of the members' *labelled training rows*
        (benign and attack). A row far from all of them is unlike anything the classifier was trained on, so its
        logit is an extrapolation: benign traffic of a service or flag the classifier never saw as normal gets
        large classifier surprises there. The trust model's own score is calibrated like the others, and the
        classifier's surprise is multiplied by ``clip((hi - s_trust) / (hi - lo), 0, 1)`` (``trust_band``): in
        full up to the trust surprise ``lo``, not at all from ``hi`` on. The trust model is a gate, not a vote:
        it adds nothing to the sum. None: no gate.
    trust_band : tuple of float, default=(1.0, 3.0)
        ``(lo, hi)`` of the gate, in the trust model's surprise (``-log10`` of its benign tail: 1 = the 10%
        tail, 3 = the 0.1% tail).

    Attributes
    ----------
    classifier_stats_ : ScoreStats
        Benign logit statistics.
    anomaly_stats_ : ScoreStats
        Benign log-error statistics.
    forest_stats_ : ScoreStats or None
        Benign isolation-score statistics (with a ``forest``).
    trust_stats_ : ScoreStats or None
        Benign distance statistics of the ``trust`` model.

    Notes
    -----
    Each component's score becomes ``-log10`` of its benign tail probability (the share of benign validation
    rows scoring at least as high: :meth:`ScoreStats.tail_probability`); the hybrid score is the maximum, so a
    row is as suspicious as its most surprising view, and each view spends about the same false-positive
    budget (min-p fusion: at hybrid score ``t`` the benign alert rate is at most about ``2 * 10**-t``).
    Calibrate with :meth:`calibrate` (central: benign rows at hand) or :meth:`calibrate_stats` (federated:
    merged :class:`ScoreStats` of every member's benign validation rows).
    Neither the combination nor the calibration looks at attack labels or test rows.
    """

    def __init__(
        self,
        classifier: AttackClassifier,
        autoencoder: AutoencoderDetector | ReconstructionScorer,
        fusion: str = "max",
        forest: FederatedIsolationForest | None = None,
        anomaly_cap: float | None = None,
        trust: FederatedKMeans | None = None,
        trust_band: tuple[float, float] = (1.0, 3.0),
    ) -> None:
        if fusion not in ("max", "sum"):
            raise ConfigError(f"HybridDetector: fusion must be 'max' or 'sum'; got {fusion!r}.")
        if anomaly_cap is not None and not float(anomaly_cap) > 0:
            raise ConfigError(f"HybridDetector: anomaly_cap must be > 0 or None; got {anomaly_cap!r}.")
        lo, hi = (float(v) for v in trust_band)
        if not 0 <= lo < hi:
            raise ConfigError(f"HybridDetector: trust_band must be (lo, hi) with 0 <= lo < hi; got {trust_band!r}.")
        self.classifier = classifier
        self.autoencoder = autoencoder
        self.fusion = fusion
        self.forest = forest
        self.anomaly_cap = anomaly_cap
        self.trust = trust
        self.trust_band = (lo, hi)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor parameters.

        Parameters
        ----------
        deep : bool, default=True
            Ignored.

        Returns
        -------
        dict
            ``classifier``, ``autoencoder``, ``fusion``, ``forest``, ``anomaly_cap``, ``trust`` and
            ``trust_band``.
        """
        return {
            "classifier": self.classifier,
            "autoencoder": self.autoencoder,
            "fusion": self.fusion,
            "forest": self.forest,
            "anomaly_cap": self.anomaly_cap,
            "trust": self.trust,
            "trust_band": self.trust_band,
        }

    def raw_scores(self, X: Any) -> tuple[np.ndarray, ...]:
        """Return the classifier logits, the anomaly scores and, when present, the isolation and trust scores.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``, standardised as the components were trained.

        Returns
        -------
        logits, anomaly[, isolation][, distance] : numpy.ndarray
            Each of shape ``(n_samples,)``; ``isolation`` only when the hybrid has a ``forest``, ``distance`` (the
            ``trust`` model's) only with a ``trust`` model.
        """
        if isinstance(self.autoencoder, ReconstructionScorer):
            anomaly = self.autoencoder.decision_function(X)
        else:
            anomaly = anomaly_log_score(self.autoencoder.decision_function(X))
        out = [self.classifier.decision_function(X), anomaly]
        if self.forest is not None:
            out.append(self.forest.decision_function(X))
        if self.trust is not None:
            out.append(self.trust.decision_function(X))
        return tuple(out)

    def member_stats(self, X_benign: Any) -> tuple[ScoreStats, ...]:
        """One member's contribution to the federated calibration: sums over its benign rows.

        Parameters
        ----------
        X_benign : array-like
            Rows the member believes benign (not used for training).

        Returns
        -------
        classifier_stats, anomaly_stats[, forest_stats][, trust_stats] : ScoreStats
            Histograms of every component's score, in the order of :meth:`raw_scores`.
        """
        return tuple(ScoreStats.from_scores(s) for s in self.raw_scores(X_benign))

    def calibrate_stats(
        self, classifier_stats: ScoreStats, anomaly_stats: ScoreStats, *optional_stats: ScoreStats
    ) -> HybridDetector:
        """Set the benign score scales from (merged) statistics: the federated path.

        Parameters
        ----------
        classifier_stats, anomaly_stats : ScoreStats
            E.g. ``ScoreStats.merge`` of every member's :meth:`member_stats`.
        *optional_stats : ScoreStats
            The same for the optional members, in the order of :meth:`member_stats`: the forest's score when the
            hybrid has a ``forest``, then the ``trust`` model's when it has one (one statistics object each).

        Returns
        -------
        HybridDetector
            ``self``.
        """
        present = [name for name, model in (("forest", self.forest), ("trust", self.trust)) if model is not None]
        if len(optional_stats) != len(present):
            raise ConfigError(
                f"HybridDetector.calibrate_stats: expected statistics for classifier, autoencoder"
                f"{''.join(', ' + n for n in present)} ({2 + len(present)}); got {2 + len(optional_stats)}."
            )
        if any(s.count < 2 for s in (classifier_stats, anomaly_stats, *optional_stats)):
            raise ConfigError("HybridDetector.calibrate_stats: needs scores of at least 2 benign rows.")
        named = dict(zip(present, optional_stats, strict=True))
        self.classifier_stats_ = classifier_stats
        self.anomaly_stats_ = anomaly_stats
        self.forest_stats_ = named.get("forest")
        self.trust_stats_ = named.get("trust")
        return self

    def calibrate(self, X_benign: Any) -> HybridDetector:
        """Set the benign score scales from benign rows at hand.

        Parameters
        ----------
        X_benign : array-like
            Benign rows not used for training.

        Returns
        -------
        HybridDetector
            ``self``.
        """
        return self.calibrate_stats(*self.member_stats(X_benign))

    def component_scores(self, X: Any) -> tuple[np.ndarray, ...]:
        """Return every component's surprise, ``-log10`` of the benign tail probability.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        s_classifier, s_anomaly[, s_forest] : numpy.ndarray
            Each of shape ``(n_samples,)``; the third only when the hybrid has a ``forest``. ``s_anomaly`` is
            capped at ``anomaly_cap``; with a ``trust`` model ``s_classifier`` is already gated by it (the trust
            model's own surprise is not returned: it is a gate, not a vote).

        Raises
        ------
        NotFittedError
            Before :meth:`calibrate` / :meth:`calibrate_stats`.
        """
        if not hasattr(self, "classifier_stats_"):
            raise NotFittedError("HybridDetector: call calibrate(X_benign) or calibrate_stats(...) first.")
        stats = [self.classifier_stats_, self.anomaly_stats_]
        if self.forest is not None:
            stats.append(self.forest_stats_)
        if self.trust is not None:
            stats.append(self.trust_stats_)
        parts = [-np.log10(st.tail_probability(raw)) for st, raw in zip(stats, self.raw_scores(X), strict=True)]
        if self.anomaly_cap is not None:
            parts[1] = np.minimum(parts[1], float(self.anomaly_cap))
        if self.trust is not None:
            # The classifier's vote fades out as the row leaves the region its training rows covered.
            lo, hi = self.trust_band
            parts[0] = parts[0] * np.clip((hi - parts.pop()) / (hi - lo), 0.0, 1.0)
        return tuple(parts)

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the hybrid score: the largest (``fusion="max"``) or the sum of the components' surprises.

        Parameters
        ----------
        X : array-like
            Shape ``(n_samples, n_features)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``, float64.
        """
        parts = self.component_scores(X)
        if self.fusion == "sum":
            return np.sum(parts, axis=0)
        return np.max(parts, axis=0)
