"""Client-drift remedies for the bench's federated classifier, judged on VALIDATION rows only.

Run: ``.venv/bin/python benchmarks/client_drift.py sms --seeds 0,1 "opt=sgd,lr=0.3,E=1,rounds=100" "C:x=1"``.

Uses the bench's own split (``mamori.bench.runner._members``: each institution holds out 15% of its training rows)
and its consortium-wide class weight, then simulates FedAvg in this process without Flower (the members train in
turn from the global weights; their weights are averaged by training rows, as Flower's FedAvg does; the server
step follows Flower's FedAvgM / FedAdam / FedYogi). With the bench's defaults of the time it reproduced
``benchmarks/server_optimizer.py``'s Flower figures to the fourth decimal. Every figure is measured on the
institutions' pooled validation rows, never on the test split: ROC-AUC, the best F1 over thresholds, TPR at 1% FPR
and ``band`` (mean TPR at 0.5%, 1% and 2% FPR, steadier on a few hundred benign rows).

A candidate is ``key=value`` pairs separated by commas (a leading ``C:`` trains the centralized model on the pooled
rows for ``rounds * E`` epochs instead):

- ``opt`` adam | sgd, ``lr``, ``mom`` (local SGD momentum), ``bs`` batch size, ``hidden`` (e.g. ``64x32``), ``wd``;
- ``E`` local epochs per round, ``rounds``;
- ``server`` fedavg | fedavgm | fedadam | fedyogi, ``smom`` (momentum / beta_1), ``slr`` (server learning rate),
  ``tau`` (FedAdam/FedYogi);
- ``mu`` FedProx proximal coefficient; ``keep=1`` each member keeps its Adam state across rounds; ``la=1``
  local logit adjustment by the member's own label prior (FedLC-style); ``alpha`` the split's Dirichlet alpha;
- ``scaffold=1`` SCAFFOLD control variates (Karimireddy et al. 2020) as ``mamori.federation`` runs them
  (``FederationConfig.client_algorithm="scaffold"``): each mini-batch gradient gets ``cs * (c - c_i)`` added
  before the optimiser step (Adam or SGD), ``c_i`` becomes the mean raw gradient of the member's round and ``c``
  the example-weighted mean of the ``c_i``; ``cs`` scales the correction (default 1);
- ``dyn=ALPHA`` FedDyn (Acar et al. 2021) with coefficient ALPHA: each member minimises its loss
  ``- <g_i, w> + ALPHA/2 ||w - w_global||^2`` (the linear term as a constant gradient correction ``-g_i``, the
  quadratic one as FedProx's term), then ``g_i -= ALPHA (w_i - w_global)``; the server keeps
  ``h -= ALPHA * sum_i share_i (w_i - w_global)`` and takes ``mean - h / ALPHA`` (server options ignored);
- ``sched`` const | cos | lin | step: the members' learning rate over rounds (``lr`` times a factor of the round:
  cosine or linear from 1 down to ``floor`` (default 0.1) at the last round, or ``step``: 1, then ``floor`` from
  round ``at`` (default half the rounds) on); ``warm=N`` a linear warm-up over the first N rounds before it;
  ``ssched`` the same shapes for the server learning rate ``slr`` (``sfloor``); the centralized model (``C:``)
  applies ``sched`` per epoch;
- ``tail=R`` (or several, ``tail=5/10/20``) server-side tail averaging (iterate averaging / SWA): besides the
  final model, report the uniform average of the global weights after each of the last R rounds (for ``C:``, of
  the weights after each of the last R epochs: the same training run, snapshots taken after every epoch); one
  output line per R, ``tail=0`` the final model as before;
- ``bench=1`` the bench's own federated classifier through Flower (``_Context.federate`` with ``run_bench``'s
  arguments and the dataset's defaults), only ``lr``, ``sched`` (const | cos | lin), ``floor`` and ``tail`` (one
  R) read, as ``BenchConfig(client_lr=..., client_lr_schedule=..., client_lr_floor=..., tail_average=...)``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from mamori.bench import BenchConfig, load_dataset
from mamori.bench.dataset import BenchDataset
from mamori.bench.metrics import best_f1_threshold, score_metrics
from mamori.bench.runner import _Context, _members
from mamori.compare.metrics import tpr_at_fpr
from mamori.models import AttackClassifier, MessageClassifier
from mamori.models.base import TorchDetector

_Figures = tuple[float, float, float, float]


class _Snapshots(list[float]):
    """``loss_history_`` that also keeps a copy of the model's weights after every epoch (one append per epoch)."""

    def __init__(self, model: TorchDetector) -> None:
        super().__init__()
        self.model = model
        self.weights: list[list[np.ndarray]] = []

    def append(self, loss: float) -> None:  # noqa: D102
        super().append(loss)
        self.weights.append(self.model.get_weights())


def _tail_average(history: list[list[np.ndarray]], r: int) -> list[np.ndarray]:
    """Uniform average of the last ``r`` weight lists of ``history`` (``r`` = 0: the last one)."""
    last = history[-max(r, 1) :]
    return [np.asarray(np.mean([h[i] for h in last], axis=0), dtype=np.float32) for i in range(len(last[0]))]


class _Options:
    """Experiment-only training options layered on the bench's classifiers."""

    keep = False
    la = 0.0
    snap = False
    _kept: torch.optim.Optimizer | None = None

    def init_weights(self, n_features: int) -> TorchDetector:  # noqa: D102
        out: TorchDetector = super().init_weights(n_features)  # type: ignore[misc]
        if self.snap:
            self.loss_history_ = _Snapshots(out)
        return out

    def _make_optimiser(self, network: nn.Module) -> torch.optim.Optimizer:
        if self.keep:
            if self._kept is None:
                self._kept = super()._make_optimiser(network)  # type: ignore[misc]
            return self._kept
        return super()._make_optimiser(network)  # type: ignore[misc, no-any-return]

    def _before_training(self, X: np.ndarray, y: np.ndarray | None) -> None:  # noqa: N803
        super()._before_training(X, y)  # type: ignore[misc]
        if self.la and y is not None:
            p = (float(y.sum()) + 1.0) / (float(y.size) + 2.0)
            self._shift = float(self.la * np.log(p / (1.0 - p)))
            self._loss = nn.BCEWithLogitsLoss()

    def _batch_loss(self, network: nn.Module, xb: torch.Tensor, yb: torch.Tensor | None) -> torch.Tensor:
        if self.la:
            return self._loss(network(xb).squeeze(-1) + self._shift, yb)  # type: ignore[no-any-return]
        return super()._batch_loss(network, xb, yb)  # type: ignore[misc, no-any-return]


class _Text(_Options, MessageClassifier):
    pass


class _Tabular(_Options, AttackClassifier):
    pass


def _judge(y: np.ndarray, s: np.ndarray) -> tuple[float, float, float, float]:
    m = score_metrics(y, s, best_f1_threshold(y, s))
    band = float(np.mean([tpr_at_fpr(y, s, f) for f in (0.005, 0.01, 0.02)]))
    return float(m["roc_auc"]), float(m["f1"]), float(m["tpr_at_1pct_fpr"]), band


def _parse(spec: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in spec.split(",") if kv)


def _make(ctx: _Context, d: dict[str, str], epochs: int) -> AttackClassifier:
    kw: dict[str, Any] = {"epochs": epochs, "seed": ctx.config.seed, "pos_weight": ctx.pos_weight}
    kw["optimizer"] = d.get("opt", "adam")
    kw["momentum"] = float(d.get("mom", 0.0))
    if "lr" in d:
        kw["learning_rate"] = float(d["lr"])
    if "hidden" in d:
        kw["hidden_layers"] = tuple(int(h) for h in d["hidden"].split("x") if h)
    if "bs" in d:
        kw["batch_size"] = int(d["bs"])
    if "wd" in d:
        kw["weight_decay"] = float(d["wd"])
    model: AttackClassifier
    if ctx.text:
        model = _Text(**kw)
    else:
        c = ctx.config
        kw.setdefault("hidden_layers", c.hidden)
        kw.setdefault("batch_size", c.batch_size)
        kw.setdefault("learning_rate", c.learning_rate)
        model = _Tabular(**kw)
    model.keep = bool(int(d.get("keep", 0)))  # type: ignore[attr-defined]
    model.la = float(d.get("la", 0.0))  # type: ignore[attr-defined]
    return model


def _tails(d: dict[str, str]) -> list[int]:
    """The tail lengths R asked for (``tail=5/10/20``), always led by 0 (the final model)."""
    return [0] + [int(r) for r in d.get("tail", "").split("/") if r and int(r) > 0]


def _factor(shape: str, r: int, n: int, floor: float, warm: int = 0, at: int | None = None) -> float:
    """Learning-rate factor of round ``r`` (0-based) of ``n``: warm-up, then the decay ``shape`` down to ``floor``."""
    if r < warm:
        return (r + 1) / (warm + 1)
    t = (r - warm) / max(n - warm - 1, 1)
    if shape == "cos":
        return floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t))
    if shape == "lin":
        return 1 - (1 - floor) * t
    if shape == "step":
        return 1.0 if r < (n // 2 if at is None else at) else floor
    return 1.0


def _server_step(
    d: dict[str, str], w: list[np.ndarray], mean: list[np.ndarray], state: dict[str, Any]
) -> list[np.ndarray]:
    server = d.get("server", "fedavg")
    slr, smom = float(d.get("slr", 1.0)) * state.get("sfactor", 1.0), float(d.get("smom", 0.0))
    pg = [a - b for a, b in zip(w, mean, strict=True)]  # pseudo-gradient, Flower's sign convention
    if server == "fedavg":
        return mean
    if server == "fedavgm":
        v = state.get("v")
        state["v"] = pg if v is None else [smom * a + b for a, b in zip(v, pg, strict=True)]
        return [a - slr * b for a, b in zip(w, state["v"], strict=True)]
    b1, b2, tau = smom or 0.9, 0.99, float(d.get("tau", 1e-3))
    delta = [-x for x in pg]
    m1 = state.get("m1")
    state["m1"] = (
        [(1 - b1) * x for x in delta] if m1 is None else [b1 * a + (1 - b1) * x for a, x in zip(m1, delta, strict=True)]
    )
    m2 = state.get("m2") or [np.zeros_like(x) for x in delta]
    if server == "fedadam":
        state["m2"] = [b2 * a + (1 - b2) * x * x for a, x in zip(m2, delta, strict=True)]
    else:
        state["m2"] = [a - (1 - b2) * x * x * np.sign(a - x * x) for a, x in zip(m2, delta, strict=True)]
    return [a + slr * m / (np.sqrt(v) + tau) for a, m, v in zip(w, state["m1"], state["m2"], strict=True)]


_SHAPES = {"const": "constant", "cos": "cosine", "lin": "linear"}


def _bench(ds: BenchDataset, seed: int, d: dict[str, str]) -> tuple[dict[int, _Figures], float]:
    """The bench's federated classifier through Flower, exactly as ``run_bench`` trains it."""
    kw: dict[str, Any] = {"seed": seed}
    if "lr" in d:
        kw["client_lr"] = float(d["lr"])
    if "sched" in d:
        kw["client_lr_schedule"] = _SHAPES[d["sched"]]
    if "floor" in d:
        kw["client_lr_floor"] = float(d["floor"])
    if "tail" in d:
        kw["tail_average"] = int(d["tail"])
    config = BenchConfig(**kw)
    members, _ = _members(ds, config)
    ctx = _Context(ds, config, members)
    data = [
        (m.name, ctx.scaler.transform(m.X_train), m.y_train, ctx.scaler.transform(m.X_val), m.y_val) for m in members
    ]
    t0 = time.perf_counter()
    model, _ = ctx.federate_classifier(
        [(name, *ctx.classifier_rows(k, X, y, ctx.scaler), Xv, yv) for k, (name, X, y, Xv, yv) in enumerate(data)],
        lambda *a: None,
    )
    return {0: _judge(ctx.y_val, model.decision_function(ctx.X_val))}, time.perf_counter() - t0


def _judge_tails(
    ctx: _Context, model: AttackClassifier, history: list[list[np.ndarray]], tails: list[int]
) -> dict[int, _Figures]:
    """Validation figures of the final weights (R = 0) and of the average of the last R of ``history``."""
    final = model.get_weights()
    out = {}
    for r in tails:
        model.set_weights(final if r == 0 else _tail_average(history, r))
        out[r] = _judge(ctx.y_val, model.decision_function(ctx.X_val))
    model.set_weights(final)
    return out


def run(ds: BenchDataset, seed: int, spec: str, central: bool) -> tuple[dict[int, _Figures], float]:
    """Train one candidate on one split seed; return its validation figures per tail length and the seconds."""
    d = _parse(spec)
    if int(d.get("bench", 0)):
        return _bench(ds, seed, d)
    config = BenchConfig(seed=seed, alpha=float(d.get("alpha", 0.3)))
    members, _ = _members(ds, config)
    ctx = _Context(ds, config, members)
    rounds = int(d.get("rounds", config.rounds))
    epochs = int(d.get("E", config.epochs_per_round(ctx.text)))
    scaled = [(ctx.scaler.transform(m.X_train), m.y_train) for m in members]
    t0 = time.perf_counter()
    shape, floor, warm = d.get("sched", "const"), float(d.get("floor", 0.1)), int(d.get("warm", 0))
    at = int(d["at"]) if "at" in d else None
    tails = _tails(d)
    if central:
        X = np.concatenate([s[0] for s in scaled])
        y = np.concatenate([s[1] for s in scaled])
        model = _make(ctx, d, rounds * epochs)
        model.snap = len(tails) > 1  # type: ignore[attr-defined]
        if shape == "const" and not warm:
            model.fit(X, y)
        else:  # one epoch at a time, each with its own learning rate (the optimiser restarts every epoch)
            base = model.learning_rate
            model.init_weights(ctx.n_features)
            n = rounds * epochs
            for e in range(n):
                model.learning_rate = base * _factor(shape, e, n, floor, warm, at)
                model.fit_local(X, y, epochs=1)
        history = getattr(model.loss_history_, "weights", [])
        return _judge_tails(ctx, model, history, tails), time.perf_counter() - t0
    glob = _make(ctx, d, epochs)
    glob.init_weights(ctx.n_features)
    w = glob.get_weights()
    locals_ = []
    for _ in scaled:
        est = _make(ctx, d, epochs)
        est.init_weights(ctx.n_features)
        locals_.append(est)
    mu = float(d.get("mu", 0.0))
    scaffold, cs = bool(int(d.get("scaffold", 0))), float(d.get("cs", 1.0))
    dyn = float(d.get("dyn", 0.0))
    dyn_g = [[np.zeros_like(a) for a in w] for _ in scaled]
    dyn_h = [np.zeros_like(a) for a in w]
    c_glob = [np.zeros_like(a) for a in w]
    c_own = [[np.zeros_like(a) for a in w] for _ in scaled]
    state: dict[str, Any] = {}
    base_lr = glob.learning_rate
    sshape, sfloor = d.get("ssched", "const"), float(d.get("sfloor", 0.1))
    history: list[list[np.ndarray]] = []  # the global weights after each round (for tail averaging)
    for _round in range(rounds):
        outs, rows, deltas = [], [], []
        state["sfactor"] = _factor(sshape, _round, rounds, sfloor)
        for k, (est, (X, y)) in enumerate(zip(locals_, scaled, strict=True)):
            est.learning_rate = base_lr * _factor(shape, _round, rounds, floor, warm, at)
            est.set_weights([a.copy() for a in w])
            ref = [a.copy() for a in w] if mu > 0 or dyn > 0 else None
            corr = [cs * (a - b) for a, b in zip(c_glob, c_own[k], strict=True)] if scaffold else None
            if dyn > 0:
                corr = [-g for g in dyn_g[k]]
            est.fit_local(X, y, epochs=epochs, proximal_mu=dyn or mu, reference_weights=ref, gradient_correction=corr)
            if dyn > 0:
                dyn_g[k] = [g - dyn * (a - b) for g, a, b in zip(dyn_g[k], est.get_weights(), w, strict=True)]
            if scaffold:
                deltas.append([a - b for a, b in zip(est.mean_gradient_, c_own[k], strict=True)])
                c_own[k] = [np.asarray(a, dtype=np.float32) for a in est.mean_gradient_]
            outs.append(est.get_weights())
            rows.append(len(X))
        share = np.asarray(rows, dtype=np.float64) / sum(rows)
        if scaffold:
            c_glob = [
                np.asarray(c + sum(s * dl[i] for s, dl in zip(share, deltas, strict=True)), dtype=np.float32)
                for i, c in enumerate(c_glob)
            ]
        mean = [sum(s * o[i] for s, o in zip(share, outs, strict=True)) for i in range(len(w))]
        if dyn > 0:
            dyn_h = [h - dyn * (m - a) for h, m, a in zip(dyn_h, mean, w, strict=True)]
            w = [np.asarray(m - h / dyn, dtype=np.float32) for m, h in zip(mean, dyn_h, strict=True)]
        else:
            w = [np.asarray(a, dtype=np.float32) for a in _server_step(d, w, mean, state)]
        history.append(w)
    glob.set_weights(w)
    return _judge_tails(ctx, glob, history, tails), time.perf_counter() - t0


def main() -> None:
    """Print validation figures of each candidate, per seed."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("candidates", nargs="+")
    args = ap.parse_args()
    ds = load_dataset(args.dataset)
    for seed in [int(s) for s in args.seeds.split(",")]:
        for spec in args.candidates:
            central = spec.startswith("C:")
            figures, took = run(ds, seed, spec[2:] if central else spec, central)
            for r, (roc, f1, tpr, band) in figures.items():
                label = spec if len(figures) == 1 else f"{spec} [tail {r}]"
                print(
                    f"{args.dataset} s{seed} {'centralized ' if central else ''}{label:<58} validation ROC-AUC "
                    f"{roc:.4f} best-F1 {f1:.4f} TPR@1%FPR {tpr:.4f} band {band:.4f} ({took:.0f} s, "
                    f"load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )


if __name__ == "__main__":
    main()
