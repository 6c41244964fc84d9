"""The scoring model bundle: weights plus everything needed to turn events into the scores they were trained on."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mamori.errors import ConfigError, SchemaError, StoreError
from mamori.features import FeatureConfig, FeatureSpec, Standardizer
from mamori.models import AttackClassifier, AutoencoderDetector

__all__ = ["BUNDLE_FORMAT", "ScoringModel"]

logger = logging.getLogger(__name__)

#: Format tag written into every bundle; bumped when the layout changes.
BUNDLE_FORMAT = "mamori.scoring-model/1"

_KINDS: dict[str, type[Any]] = {"attack-classifier": AttackClassifier, "autoencoder": AutoencoderDetector}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass(frozen=True)
class ScoringModel:
    """Everything a node needs to score events with a trained model, saved and loaded as one file.

    Parameters
    ----------
    spec : FeatureSpec
        The columns the model reads; ``spec.config_json`` is the :class:`~mamori.features.FeatureConfig`.
    mean, scale : numpy.ndarray
        Shape ``(d,)``: the :class:`~mamori.features.Standardizer` statistics (float64).
    clip : float or None
        The standardiser's clip.
    kind : {"attack-classifier", "autoencoder"}
        Model class.
    params : dict
        Its constructor parameters (``get_params()``).
    weights : tuple of numpy.ndarray
        The network's parameters (``get_weights()``).
    threshold : float
        The member's alert threshold on ``decision_function`` (calibrated on its own benign traffic).
    name : str, default="attack-classifier"
        Model name (as in the registry).
    version : int, default=0
        Federated round or version number.
    families : tuple of str, default=()
        Attack families with a centroid, for the family guess.
    centroids : numpy.ndarray or None, default=None
        Shape ``(len(families), d)``: mean standardised feature vector of each family's training rows.
    metadata : dict, default={}
        JSON-serialisable extras (training summary, registry hash of the weights, ...).
    """

    spec: FeatureSpec
    mean: np.ndarray
    scale: np.ndarray
    clip: float | None
    kind: str
    params: dict[str, Any]
    weights: tuple[np.ndarray, ...]
    threshold: float
    name: str = "attack-classifier"
    version: int = 0
    families: tuple[str, ...] = ()
    centroids: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = self.spec.n_features
        if self.kind not in _KINDS:
            raise ConfigError(f"ScoringModel: kind must be one of {sorted(_KINDS)}; got {self.kind!r}.")
        if np.asarray(self.mean).shape != (d,) or np.asarray(self.scale).shape != (d,):
            raise SchemaError(
                f"ScoringModel: standardiser statistics have shapes {np.asarray(self.mean).shape} / "
                f"{np.asarray(self.scale).shape}, expected ({d},) to match the feature spec."
            )
        if self.centroids is not None and np.asarray(self.centroids).shape != (len(self.families), d):
            raise SchemaError(
                f"ScoringModel: centroids have shape {np.asarray(self.centroids).shape}, expected "
                f"({len(self.families)}, {d})."
            )
        if not np.isfinite(self.threshold):
            raise ConfigError(f"ScoringModel: threshold must be finite; got {self.threshold!r}.")

    # ---- construction -------------------------------------------------------------------------------------
    @classmethod
    def from_parts(
        cls,
        model: AttackClassifier | AutoencoderDetector,
        standardizer: Standardizer,
        spec: FeatureSpec,
        threshold: float,
        *,
        name: str = "attack-classifier",
        version: int = 0,
        families: Sequence[str] = (),
        centroids: np.ndarray | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> ScoringModel:
        """Bundle a fitted model, its fitted standardiser, the spec and the threshold.

        Parameters
        ----------
        model : AttackClassifier or AutoencoderDetector
            Fitted.
        standardizer : Standardizer
            Fitted (``fit`` or ``fit_stats``).
        spec : FeatureSpec
            Of the matrices the model was trained on.
        threshold : float
            Alert threshold on ``decision_function``.
        name : str, default="attack-classifier"
            Model name.
        version : int, default=0
            Version number.
        families : sequence of str, default=()
            Family names of ``centroids`` rows.
        centroids : numpy.ndarray or None, default=None
            Shape ``(len(families), d)``.
        metadata : dict or None, default=None
            Extras.

        Returns
        -------
        ScoringModel

        Raises
        ------
        ConfigError
            If the model type is not supported or the parts are not fitted.
        """
        kind = next((k for k, c in _KINDS.items() if isinstance(model, c)), None)
        if kind is None:
            raise ConfigError(f"ScoringModel.from_parts: unsupported model {type(model).__name__}.")
        if not hasattr(standardizer, "mean_"):
            raise ConfigError("ScoringModel.from_parts: the standardizer is not fitted.")
        params = {k: _jsonable(v) for k, v in model.get_params().items()}
        return cls(
            spec=spec,
            mean=np.asarray(standardizer.mean_, dtype=np.float64),
            scale=np.asarray(standardizer.scale_, dtype=np.float64),
            clip=standardizer.clip,
            kind=kind,
            params=params,
            weights=tuple(model.get_weights()),
            threshold=float(threshold),
            name=name,
            version=int(version),
            families=tuple(families),
            centroids=None if centroids is None else np.asarray(centroids, dtype=np.float32),
            metadata=dict(metadata or {}),
        )

    def with_weights(self, weights: Sequence[np.ndarray], *, version: int | None = None,
                     metadata: dict[str, Any] | None = None) -> ScoringModel:
        """Return a copy with new network weights (a new global model from the federation).

        Parameters
        ----------
        weights : sequence of numpy.ndarray
            Same shapes as :attr:`weights`.
        version : int or None, default=None
            New version; unchanged when None.
        metadata : dict or None, default=None
            Merged into the metadata.

        Returns
        -------
        ScoringModel

        Raises
        ------
        SchemaError
            If the number or shapes of arrays differ.
        """
        new = tuple(np.asarray(w) for w in weights)
        if len(new) != len(self.weights) or any(a.shape != b.shape for a, b in zip(new, self.weights, strict=True)):
            raise SchemaError(
                f"ScoringModel.with_weights: got {len(new)} arrays with shapes {[a.shape for a in new]}, expected "
                f"{[b.shape for b in self.weights]} (same architecture as model {self.name!r})."
            )
        meta = {**self.metadata, **(metadata or {})}
        return replace(self, weights=new, version=self.version if version is None else int(version), metadata=meta)

    # ---- use ----------------------------------------------------------------------------------------------
    @property
    def feature_config(self) -> FeatureConfig:
        """The feature configuration the model was trained with."""
        if not self.spec.config_json:
            return FeatureConfig()
        return FeatureConfig.model_validate_json(self.spec.config_json)

    def detector(self) -> AttackClassifier | AutoencoderDetector:
        """Build the fitted detector (network with the bundled weights).

        Returns
        -------
        AttackClassifier or AutoencoderDetector
        """
        params = dict(self.params)
        if "hidden_layers" in params and params["hidden_layers"] is not None:
            params["hidden_layers"] = tuple(int(h) for h in params["hidden_layers"])
        model = _KINDS[self.kind](**params)
        model.init_weights(self.spec.n_features)
        model.set_weights(list(self.weights))
        model.network_.eval()
        return model

    def standardizer(self) -> Standardizer:
        """Build the fitted standardiser.

        Returns
        -------
        Standardizer
        """
        s = Standardizer(clip=self.clip)
        s.mean_ = np.asarray(self.mean, dtype=np.float64)
        s.scale_ = np.asarray(self.scale, dtype=np.float64)
        s.n_features_in_ = self.spec.n_features
        return s

    # ---- persistence --------------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Serialise to one ``.npz`` blob (no pickle): arrays plus a JSON header.

        Returns
        -------
        bytes
        """
        header = {
            "format": BUNDLE_FORMAT,
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "params": self.params,
            "threshold": self.threshold,
            "clip": self.clip,
            "spec": self.spec.to_dict(),
            "families": list(self.families),
            "n_weights": len(self.weights),
            "metadata": self.metadata,
        }
        arrays: dict[str, np.ndarray] = {
            "header": np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8),
            "mean": np.asarray(self.mean, dtype=np.float64),
            "scale": np.asarray(self.scale, dtype=np.float64),
        }
        if self.centroids is not None:
            arrays["centroids"] = np.asarray(self.centroids, dtype=np.float32)
        for i, w in enumerate(self.weights):
            arrays[f"w{i}"] = np.asarray(w)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "bytes") -> ScoringModel:
        """Load a bundle written by :meth:`to_bytes`.

        Parameters
        ----------
        data : bytes
            The blob.
        source : str, default="bytes"
            Names the input in error messages.

        Returns
        -------
        ScoringModel

        Raises
        ------
        SchemaError
            If the blob is not a mamori scoring-model bundle.
        """
        if not data.startswith(b"PK\x03\x04"):
            # numpy reads anything that is not a zip as a pickle and, refused, suggests loading it unsafely:
            # not advice to pass on for a file of unknown origin
            raise SchemaError(
                f"ScoringModel: {source} is not a scoring-model bundle (not an .npz archive: its {len(data):,} bytes "
                "do not start as a zip file); create one with `mamori score --train-demo` or ScoringModel.save()."
            )
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
            header = json.loads(arrays["header"].tobytes().decode())
        except (OSError, EOFError, ValueError, KeyError, UnicodeDecodeError, zipfile.BadZipFile) as exc:
            # BadZipFile: a zip's start without its directory, e.g. an upload broken off
            raise SchemaError(
                f"ScoringModel: {source} is not a scoring-model bundle ({type(exc).__name__}: {exc}); "
                "create one with `mamori score --train-demo` or ScoringModel.save()."
            ) from exc
        if header.get("format") != BUNDLE_FORMAT:
            raise SchemaError(
                f"ScoringModel: {source} has format {header.get('format')!r}, expected {BUNDLE_FORMAT!r}."
            )
        weights = tuple(arrays[f"w{i}"] for i in range(int(header["n_weights"])))
        return cls(
            spec=FeatureSpec.from_dict(header["spec"]),
            mean=arrays["mean"],
            scale=arrays["scale"],
            clip=header["clip"],
            kind=header["kind"],
            params=header["params"],
            weights=weights,
            threshold=float(header["threshold"]),
            name=header["name"],
            version=int(header["version"]),
            families=tuple(header["families"]),
            centroids=arrays.get("centroids"),
            metadata=header.get("metadata", {}),
        )

    @property
    def sha256(self) -> str:
        """SHA-256 of the serialised bundle (hex): the model's identity."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def weights_sha256(self) -> str:
        """SHA-256 of the weights in the registry's array encoding (the federation's checkpoint hash)."""
        from mamori.store import arrays_to_bytes

        return hashlib.sha256(arrays_to_bytes(list(self.weights))).hexdigest()

    def save(self, path: str | Path) -> Path:
        """Write the bundle to ``path`` (atomically: a temporary file, then rename).

        Parameters
        ----------
        path : str or pathlib.Path
            Destination, conventionally ``*.mamori-model.npz``.

        Returns
        -------
        pathlib.Path
        """
        dest = Path(path)
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(dest)
        logger.info("saved scoring model %s v%d to %s", self.name, self.version, dest)
        return dest

    @classmethod
    def load(cls, path: str | Path) -> ScoringModel:
        """Read a bundle file.

        Parameters
        ----------
        path : str or pathlib.Path
            Written by :meth:`save`.

        Returns
        -------
        ScoringModel

        Raises
        ------
        SchemaError
            If the file is missing or not a bundle.
        """
        src = Path(path)
        try:
            data = src.read_bytes()
        except OSError as exc:
            raise SchemaError(f"ScoringModel.load: cannot read '{src}': {exc.strerror}.") from exc
        return cls.from_bytes(data, source=f"'{src.name}'")

    def register(self, registry: Any, *, actor: str = "system") -> str:
        """Store the whole bundle in a :class:`~mamori.store.ModelRegistry` (as raw bytes).

        Parameters
        ----------
        registry : ModelRegistry
            The registry.
        actor : str, default="system"
            For the audit log.

        Returns
        -------
        str
            The registry hash (SHA-256 of the bundle bytes).
        """
        meta = {"format": BUNDLE_FORMAT, "threshold": self.threshold, "spec_fingerprint": self.spec.fingerprint()}
        return str(registry.register(self.name, self.version, self.to_bytes(), meta, actor=actor))

    @classmethod
    def from_registry(cls, registry: Any, ref: str = "latest", *, name: str | None = None,
                      base: ScoringModel | None = None) -> ScoringModel:
        """Load a model from the registry.

        A bundle registered with :meth:`register` is loaded as is. A bare global-model checkpoint (NumPy arrays,
        as the federation registers each round) is applied to ``base`` with :meth:`with_weights`, keeping its
        feature spec, standardiser statistics and threshold.

        Parameters
        ----------
        registry : ModelRegistry
            The registry.
        ref : str, default="latest"
            ``"latest"`` or a SHA-256 (prefix).
        name : str or None, default=None
            Model name.
        base : ScoringModel or None, default=None
            Required for array checkpoints.

        Returns
        -------
        ScoringModel

        Raises
        ------
        StoreError
            If nothing matches, or an array checkpoint is found without a ``base``.
        SchemaError
            If the weights do not fit ``base``.
        """
        checkpoint = registry.get(ref, name=name)
        record = checkpoint.record
        if record.fmt == "bytes":
            model = cls.from_bytes(checkpoint.weights, source=f"registry entry {record.name} v{record.version}")
            return replace(model, metadata={**model.metadata, "registry_sha256": record.sha256})
        if base is None:
            raise StoreError(
                f"ScoringModel.from_registry: {record.name} v{record.version} is a bare weights checkpoint; pass "
                "the bundle it belongs to as base= (feature spec, standardiser and threshold come from there)."
            )
        return base.with_weights(
            checkpoint.arrays(), version=record.version, metadata={"registry_sha256": record.sha256}
        )
