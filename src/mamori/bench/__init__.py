"""Benchmarks on public data: dataset adapters, the Dirichlet non-IID split, local / federated / centralized runs.

``mamori bench DATASET`` runs :func:`run_bench` on a :class:`BenchDataset` from :func:`load_dataset`.
"""

from mamori.bench.adapters import (
    CSIC_FEATURES,
    NSL_KDD_COLUMNS,
    csic_events,
    csic_features,
    csic_request_key,
    load_csic,
    load_nsl_kdd,
    load_sms,
)
from mamori.bench.config import BenchConfig
from mamori.bench.dataset import BenchDataset, default_data_dir
from mamori.bench.generic import GenericMapping, load_generic
from mamori.bench.metrics import best_f1_threshold, score_metrics
from mamori.bench.references import fit_hist_gradient_boosting, fit_isolation_forest, fit_logistic_regression
from mamori.bench.registry import DATASETS, load_dataset
from mamori.bench.runner import RESULT_KEYS, aggregate_seeds, run_bench, run_bench_seeds
from mamori.bench.score_dump import load_test_scores, save_test_scores
from mamori.bench.split import dirichlet_split, split_skew

__all__ = [
    "CSIC_FEATURES",
    "DATASETS",
    "NSL_KDD_COLUMNS",
    "RESULT_KEYS",
    "BenchConfig",
    "BenchDataset",
    "GenericMapping",
    "aggregate_seeds",
    "best_f1_threshold",
    "csic_events",
    "csic_features",
    "csic_request_key",
    "default_data_dir",
    "dirichlet_split",
    "fit_hist_gradient_boosting",
    "fit_isolation_forest",
    "fit_logistic_regression",
    "load_csic",
    "load_dataset",
    "load_generic",
    "load_nsl_kdd",
    "load_sms",
    "load_test_scores",
    "run_bench",
    "run_bench_seeds",
    "save_test_scores",
    "score_metrics",
    "split_skew",
]
