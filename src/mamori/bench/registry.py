"""Dataset names ``mamori bench`` knows, and the one function that loads any of them."""

from __future__ import annotations

from pathlib import Path

from mamori.bench.adapters import load_csic, load_nsl_kdd, load_sms
from mamori.bench.dataset import BenchDataset, default_data_dir
from mamori.errors import ConfigError

__all__ = ["DATASETS", "load_dataset"]

#: Built-in dataset names and what they are.
DATASETS: dict[str, str] = {
    "nsl-kdd": "NSL-KDD network connections, official KDDTrain+ / KDDTest+ split (unseen attack types in test)",
    "csic": "HTTP DATASET CSIC 2010 raw requests, deduplicated seeded split (no test request has a training twin)",
    "sms": "SMS Spam Collection v.1, hashed word and character n-grams",
    "generic": "any CSV/Parquet with a label column, or a log file with a labels file, described by --mapping TOML",
}
_ALIASES = {"nsl_kdd": "nsl-kdd", "nslkdd": "nsl-kdd", "csic2010": "csic", "csic-2010": "csic", "sms-spam": "sms"}


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    mapping: str | Path | None = None,
    split_seed: int = 0,
    max_train: int | None = None,
) -> BenchDataset:
    """Load a benchmark dataset by name.

    Parameters
    ----------
    name : str
        ``nsl-kdd``, ``csic``, ``sms``, or ``generic`` (needs ``mapping``). A path to a ``.toml`` file is read
        as a generic mapping too.
    data_dir : str or pathlib.Path or None, default=None
        Folder of the public datasets; None uses :func:`~mamori.bench.dataset.default_data_dir`.
    mapping : str or pathlib.Path or None, default=None
        The generic adapter's TOML mapping (see :func:`~mamori.bench.generic.load_generic`).
    split_seed : int, default=0
        Seed of the train/test split of datasets without an official one (CSIC, SMS, generic).
    max_train : int or None, default=None
        NSL-KDD only: a seeded sample of the training rows (for quick runs).

    Returns
    -------
    BenchDataset
        The dataset.

    Raises
    ------
    ConfigError
        For an unknown name, a missing file or an invalid mapping.
    """
    from mamori.bench.generic import load_generic

    key = _ALIASES.get(name.lower(), name.lower())
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    if key.endswith(".toml"):
        return load_generic(Path(name), split_seed=split_seed)
    if key == "generic":
        if mapping is None:
            raise ConfigError("bench: dataset 'generic' needs --mapping FILE.toml (see docs/benchmarks.md).")
        return load_generic(Path(mapping), split_seed=split_seed)
    if key == "nsl-kdd":
        return load_nsl_kdd(folder, max_train=max_train, seed=split_seed)
    if key == "csic":
        return load_csic(folder, seed=split_seed)
    if key == "sms":
        return load_sms(folder, seed=split_seed)
    raise ConfigError(f"bench: unknown dataset {name!r}; choose one of {sorted(DATASETS)} or give a mapping TOML.")
