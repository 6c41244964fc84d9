"""``mamori bench``: local-only vs federated vs centralized training on a public (or your own) labelled dataset."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from mamori.cli.app import app, option_errors
from mamori.cli.progress import stage_progress
from mamori.errors import ConfigError

if TYPE_CHECKING:  # the bench (torch, scikit-learn) is imported when the command runs, not with the CLI
    from mamori.bench import BenchConfig

_LABELS = {
    "classifier": "classifier (MLP)",
    "autoencoder": "autoencoder (label-free)",
    "hybrid": "hybrid",
    "hist_gradient_boosting": "HistGradientBoosting",
    "logistic_regression": "LogisticRegression",
    "isolation_forest": "IsolationForest (normal only)",
}


def _fmt(value: Any, std: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if std is None:
        return f"{value:.3f}"
    return f"{value:.3f} ± {std:.3f}"


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _table(results: dict[str, Any], title: str, unseen: bool) -> Table:
    cols = ["model", "regime", "ROC-AUC", "PR-AUC", "F1", "TPR@1%FPR"]
    if unseen:
        cols += ["TPR@1%FPR seen", "TPR@1%FPR unseen"]
    table = Table(*cols, title=title)
    for key, r in results.items():
        model, regime = key.split("/")
        row = [_LABELS.get(model, model), regime]
        if isinstance(r.get("roc_auc"), dict):  # aggregated over seeds
            row += [_fmt(r[m]["mean"], r[m]["std"]) for m in ("roc_auc", "pr_auc", "f1", "tpr_at_1pct_fpr")]
            if unseen:
                for g in ("seen", "unseen"):
                    a = r.get(f"{g}.tpr_at_1pct_fpr")
                    row.append(_fmt(a["mean"], a["std"]) if a else "—")
        else:
            row += [_fmt(r.get(m)) for m in ("roc_auc", "pr_auc", "f1", "tpr_at_1pct_fpr")]
            if unseen:
                row += [_fmt(r.get(g, {}).get("tpr_at_1pct_fpr")) for g in ("seen", "unseen")]
        table.add_row(*row)
    return table


def _secure_aggregation_notes(config: BenchConfig, dataset: str) -> list[str]:
    """What ``--secure-aggregation`` protects in this run, and which shared models it does not cover."""
    if not config.secure_aggregation:
        return []
    notes = ["federated classifier and autoencoder train under SecAgg+: the coordinator sees only masked sums of "
             "the members' updates"]
    clear = []
    if config.hybrid_step(dataset)[0]:
        clear.append("the federated isolation forest's trees")
    if config.hybrid_trust_step(dataset):
        clear.append("the trust model's k-means centroids")
    if clear:
        notes.append(f"not under SecAgg+: {' and '.join(clear)} are shared with the coordinator in clear "
                     "(--no-hybrid-forest and --no-hybrid-trust leave them out)")
    return notes


def _parse_seeds(text: str) -> list[int]:
    """The seeds of ``--seeds``: comma-separated whole numbers, each once (``"0,1,2"`` -> ``[0, 1, 2]``).

    Raises
    ------
    ConfigError
        Naming the option and the item that is not a whole number, a seed given twice (its run would count twice
        in the mean ± std), or an empty list.
    """
    seeds: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            value = int(item)
        except ValueError:
            raise ConfigError(f"--seeds {text!r}: {item!r} is not a whole number; give e.g. --seeds 0,1,2.") from None
        if value in seeds:
            raise ConfigError(f"--seeds {text!r}: seed {value} is given twice; each seed runs once.")
        seeds.append(value)
    if not seeds:
        raise ConfigError(f"--seeds {text!r}: no seed given; give e.g. --seeds 0,1,2 (or --seed N for one run).")
    return seeds


@app.command("bench")
def bench_command(
    dataset: str = typer.Argument(..., help="nsl-kdd, csic, sms, or generic (with --mapping) / a mapping .toml."),
    institutions: int = typer.Option(10, "--institutions", "-k", min=2, help="Simulated institutions."),
    alpha: float = typer.Option(0.3, "--alpha", min=0.001, help="Dirichlet concentration of the non-IID split."),
    seed: int = typer.Option(0, "--seed", help="Seed of the institution split and the models."),
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated seeds (e.g. 0,1,2): mean ± std."),
    rounds: int = typer.Option(20, "--rounds", min=1, help="Federated rounds."),
    local_epochs: int | None = typer.Option(
        None, "--local-epochs", min=1, help="Epochs per round on each institution (default: 2; text datasets 5)."
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="Folder of the public datasets (default $MAMORI_DATA_DIR or ../shared/data)."
    ),
    mapping: Path | None = typer.Option(None, "--mapping", help="TOML mapping of a generic dataset."),
    split_seed: int = typer.Option(0, "--split-seed", help="Seed of the train/test split (CSIC, SMS, generic)."),
    max_train: int | None = typer.Option(None, "--max-train", help="NSL-KDD: sample this many training rows."),
    no_references: bool = typer.Option(False, "--no-references", help="Skip HistGradientBoosting / IsolationForest."),
    no_local_anomaly: bool = typer.Option(
        False, "--no-local-anomaly", help="Skip each institution's own autoencoder (faster)."
    ),
    server_optimizer: str | None = typer.Option(
        None,
        "--server-optimizer",
        help="Server step of the federated classifier: fedavg, fedavgm (server momentum), fedadam, fedyogi "
        "(default: fedavgm, momentum 0.9, lr 1.0 for csic; fedavg otherwise).",
    ),
    server_momentum: float | None = typer.Option(
        None,
        "--server-momentum",
        help="fedavgm momentum / fedadam, fedyogi beta_1 (default 0.9); needs --server-optimizer.",
    ),
    server_lr: float | None = typer.Option(
        None,
        "--server-lr",
        help="Server learning rate (default 1.0 for fedavgm, 0.1 for fedadam/fedyogi); needs --server-optimizer.",
    ),
    client_optimizer: str | None = typer.Option(
        None,
        "--client-optimizer",
        help="Members' optimiser in the federated classifier: adam or sgd (default: sgd, lr 0.3, for text "
        "datasets; adam for tabular ones).",
    ),
    client_lr: float | None = typer.Option(
        None, "--client-lr", help="Members' learning rate (default: 0.3 with sgd on text; else the model's)."
    ),
    client_local_epochs: int | None = typer.Option(
        None,
        "--client-local-epochs",
        min=1,
        help="Epochs per round of the federated classifier; it runs rounds x local epochs / this many rounds "
        "(default: 1 for csic and text datasets, else --local-epochs).",
    ),
    client_batch_size: int | None = typer.Option(
        None, "--client-batch-size", min=8, help="Federated classifier's member batch size (default: 1024 for csic)."
    ),
    client_algorithm: str | None = typer.Option(
        None,
        "--client-algorithm",
        help="Drift correction of the federated classifier's members: plain or scaffold (SCAFFOLD control "
        "variates, twice the training traffic; default: scaffold for csic, plain otherwise).",
    ),
    client_lr_schedule: str | None = typer.Option(
        None,
        "--client-lr-schedule",
        help="How the members' learning rate decays over the rounds: constant, cosine or linear, from --client-lr "
        "down to --client-lr-floor times it in the last round (default: cosine for csic, constant otherwise).",
    ),
    client_lr_floor: float | None = typer.Option(
        None,
        "--client-lr-floor",
        min=0.0,
        max=1.0,
        help="The last round's share of the members' learning rate under a decaying schedule (default: 0.5 for "
        "csic, 0.1 otherwise).",
    ),
    tail_average: int | None = typer.Option(
        None,
        "--tail-average",
        min=0,
        help="Tail averaging (as in SWA): the federated classifier is the mean of the server's global weights of its "
        "last R rounds, the centralized MLP the mean of its weights of the same share of its last epochs "
        "(default: 10 for csic, 0 = off otherwise).",
    ),
    ae_noise: float | None = typer.Option(
        None,
        "--ae-noise",
        min=0.0,
        help="Input noise of the denoising autoencoder (default: 0.3 for nsl-kdd, 0 otherwise).",
    ),
    ae_local_epochs: int | None = typer.Option(
        None,
        "--ae-local-epochs",
        min=1,
        help="Epochs per round of the autoencoder (default: twice the classifier's for nsl-kdd; else the same).",
    ),
    hybrid_forest: bool | None = typer.Option(
        None,
        "--hybrid-forest/--no-hybrid-forest",
        help="A federated isolation forest as the hybrid's third member (default: on for nsl-kdd).",
    ),
    ae_surprise_cap: float | None = typer.Option(
        None,
        "--ae-surprise-cap",
        min=0.0,
        help="Cap on the autoencoder's surprise in the hybrid; inf: none (default: 2 for nsl-kdd, else none).",
    ),
    hybrid_trust: bool | None = typer.Option(
        None,
        "--hybrid-trust/--no-hybrid-trust",
        help="Gate the hybrid's classifier surprise by a federated k-means of the labelled training rows; members "
        "share centroids of their own rows (default: on for nsl-kdd).",
    ),
    forest_rarity: int | None = typer.Option(
        None,
        "--forest-rarity",
        min=0,
        max=50,
        help="Copies of each one-hot field's benign-rarity column added to the rows of the federated isolation "
        "forest reported alone (not the hybrid's); 0: none (default: 5 for nsl-kdd, else 0).",
    ),
    clf_mode_swap: float | None = typer.Option(
        None,
        "--clf-mode-swap",
        min=0.0,
        help="Benign-mode augmentation of the classifiers: copies of each institution's benign rows with random "
        "one-hot values, as a share of them; 0: none (default: 0.3 for nsl-kdd, else 0).",
    ),
    out: Path = typer.Option(Path("mamori-out/bench"), "--out", help="Folder for results-<dataset>.json."),
    save_scores: bool = typer.Option(
        False,
        "--save-scores",
        help="Also write every model's raw score on each test row, with the test labels and categories, to "
        "scores-<dataset>-seed<N>.npz in --out (for error analysis; mamori.bench.load_test_scores reads it).",
    ),
    secure_aggregation: bool = typer.Option(
        False,
        "--secure-aggregation",
        help="Train the federated classifier and autoencoder under SecAgg+: the coordinator sees only the masked "
        "sum of the members' updates (with SCAFFOLD, of their control-variate deltas too).",
    ),
) -> None:
    """Split a labelled dataset among institutions; compare local-only, federated, centralized and references."""
    from mamori.bench import BenchConfig, load_dataset, run_bench, run_bench_seeds, save_test_scores

    console = Console()
    seed_list = _parse_seeds(seeds) if seeds is not None else [seed]
    try:
        config = BenchConfig(
            institutions=institutions,
            alpha=alpha,
            seed=seed_list[0],
            rounds=rounds,
            local_epochs=local_epochs,
            references=not no_references,
            local_anomaly=not no_local_anomaly,
            server_optimizer=server_optimizer,
            server_momentum=server_momentum,
            server_lr=server_lr,
            client_optimizer=client_optimizer,
            client_lr=client_lr,
            client_local_epochs=client_local_epochs,
            client_batch_size=client_batch_size,
            client_algorithm=client_algorithm,
            client_lr_schedule=client_lr_schedule,
            client_lr_floor=client_lr_floor,
            tail_average=tail_average,
            secure_aggregation=secure_aggregation,
            ae_noise=ae_noise,
            ae_local_epochs=ae_local_epochs,
            hybrid_forest=hybrid_forest,
            ae_surprise_cap=ae_surprise_cap,
            hybrid_trust=hybrid_trust,
            forest_rarity=forest_rarity,
            clf_mode_swap=clf_mode_swap,
        )
    except ValidationError as exc:
        raise ConfigError(f"mamori bench: invalid option: {option_errors(exc)}") from exc
    ds = load_dataset(dataset, data_dir=data_dir, mapping=mapping, split_seed=split_seed, max_train=max_train)
    info = ds.describe()
    console.print(
        f"[bold]{ds.name}[/]: {info['train_rows']:,} training rows ({info['train_attacks']:,} attacks), "
        f"{info['test_rows']:,} test rows ({info['test_attacks']:,} attacks), {info['features']} features"
    )
    notes = info["notes"]
    if "removed_duplicates" in notes:
        extra = (
            f", {notes['removed_label_conflicts']:,} with conflicting labels"
            if "removed_label_conflicts" in notes
            else ""
        )
        console.print(f"deduplication removed {notes['removed_duplicates']:,} duplicate rows{extra} before splitting")
    if info["unseen_test_categories"]:
        console.print(
            f"{info['unseen_test_attacks']:,} test attacks belong to {len(info['unseen_test_categories'])} "
            "categories never seen in training"
        )
    for line in _secure_aggregation_notes(config, ds.name):
        console.print(line)
    with stage_progress() as progress:
        if len(seed_list) == 1:
            runs = [run_bench(ds, config, progress=progress, keep_test_scores=save_scores)]
            aggregate = None
        else:
            both = run_bench_seeds(ds, config, seed_list, progress=progress, keep_test_scores=save_scores)
            runs, aggregate = both["runs"], both["aggregate"]
    out.mkdir(parents=True, exist_ok=True)
    score_files = [
        save_test_scores(out / f"scores-{ds.name}-seed{s}.npz", ds, run.pop("test_scores"))
        for s, run in zip(seed_list, runs, strict=True)
        if "test_scores" in run
    ]
    path = out / f"results-{ds.name}.json"
    payload = {"runs": runs, "aggregate": aggregate, "seeds": seed_list}
    path.write_text(json.dumps(payload, indent=2, default=_json_default, allow_nan=True), encoding="utf-8")
    skew = runs[0]["split"]
    table = Table(
        "institution",
        "rows",
        "attacks",
        "attack share",
        "categories",
        "dominant",
        title=(
            f"non-IID split (seed {seed_list[0]}, alpha {alpha}): mean total-variation distance "
            f"{skew['mean_tv_distance']:.2f}, {skew['attack_only']} attack-only, {skew['benign_only']} benign-only"
        ),
    )
    for r in skew["institutions"]:
        table.add_row(
            r["institution"],
            f"{r['rows']:,}",
            f"{r['attacks']:,}",
            f"{r['attack_share']:.2f}",
            str(r["categories"]),
            f"{r['dominant']} ({r['dominant_share']:.0%})",
        )
    console.print(table)
    unseen = bool(info["unseen_test_categories"])
    if aggregate is None:
        console.print(_table(runs[0]["results"], f"{ds.name}: test split, seed {seed_list[0]}", unseen))
    else:
        console.print(_table(aggregate, f"{ds.name}: test split, mean ± std over seeds {seed_list}", unseen))
    copies = runs[0]["federation"].get("isolation_forest", {}).get("rarity_copies", 0)
    if copies:
        console.print(
            f"IsolationForest / federated: with {copies} copies of each one-hot field's benign-rarity column "
            "(--forest-rarity); the hybrid's forest member and the centralized reference see the one-hot columns only."
        )
    console.print(f"results: {path.resolve()}  ({sum(r['seconds']['total'] for r in runs):.0f} s)")
    for f in score_files:
        console.print(f"per-row test scores: {f.resolve()}")
    # What an exact repeat needs besides the seed (docs/benchmarks.md, Reproducibility): the figures move with the CPU
    # and with uncommitted edits, so both are printed where the figures are.
    meta = runs[0]["meta"]
    source, hardware = meta.get("source", {}), meta.get("hardware", {})
    modified = source.get("modified") or []
    console.print(
        f"source: {str(source.get('commit') or 'not a git checkout')[:12]}"
        + (f" with {len(modified)} modified file(s): {', '.join(modified)}" if modified else "")
        + f"; cpu: {hardware.get('cpu_model', '?')}, torch kernels {hardware.get('torch_cpu_capability', '?')}"
    )
