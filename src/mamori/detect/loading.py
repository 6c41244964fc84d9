"""Resolve where the model and the shared indicators come from (file, registry, TAXII) for the CLI and services."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mamori.detect.bundle import ScoringModel
from mamori.detect.indicators import IndicatorIndex
from mamori.errors import ConfigError

__all__ = ["load_indicators", "resolve_model"]

logger = logging.getLogger(__name__)


def resolve_model(model: str | Path | None, *, db: str | None = None, name: str | None = None
                  ) -> tuple[ScoringModel, Any]:
    """Load the scoring model from a bundle file and/or the model registry.

    Parameters
    ----------
    model : str or pathlib.Path or None
        A bundle file. With ``db`` too, it is the base that bare global-model checkpoints are applied to.
    db : str or None, default=None
        Store URL of the model registry (``sqlite:///...``, ``postgresql://...``).
    name : str or None, default=None
        Model name in the registry (default: the bundle's name, or the latest registration).

    Returns
    -------
    model : ScoringModel
    registry : ModelRegistry or None
        The registry, to watch for new models.

    Raises
    ------
    ConfigError
        If neither a file nor a registry is given.
    """
    base = ScoringModel.load(model) if model is not None else None
    if db is None:
        if base is None:
            raise ConfigError("no model: pass --model FILE (a scoring-model bundle) or --db URL with --name NAME.")
        return base, None
    from mamori.store import ModelRegistry, open_store

    registry = ModelRegistry(open_store(db))
    name = name or (base.name if base is not None else None)
    loaded = ScoringModel.from_registry(registry, "latest", name=name, base=base)
    return loaded, registry


def load_indicators(path: str | Path | None = None, *, taxii_url: str | None = None, member: str | None = None,
                    api_key: str | None = None, collection: str | None = None) -> IndicatorIndex | None:
    """Index shared indicators from a STIX file and/or a TAXII collection.

    Parameters
    ----------
    path : str or pathlib.Path or None, default=None
        STIX bundle / JSON list / JSON lines.
    taxii_url, member, api_key, collection : str or None, default=None
        Pull every indicator of ``collection`` from the TAXII server.

    Returns
    -------
    IndicatorIndex or None
        None when neither source is given.

    Raises
    ------
    ConfigError
        If the TAXII options are incomplete.
    """
    objects: list[dict[str, Any]] = []
    if path is not None:
        index = IndicatorIndex.from_file(path)
        if taxii_url is None:
            return index
        # merge below: re-read as objects is simpler than merging indexes
        import json

        data = json.loads(Path(path).read_text(encoding="utf-8"))
        objects.extend(data.get("objects", []) if isinstance(data, dict) else data)
    if taxii_url is not None:
        if not (member and api_key and collection):
            raise ConfigError("TAXII indicators need --taxii-url, --taxii-member, --taxii-key and --taxii-collection.")
        from mamori.intel import TaxiiClient

        client = TaxiiClient(taxii_url, member, api_key)
        objects.extend(client.pull(collection, type="indicator"))
    if not objects:
        return None if path is None and taxii_url is None else IndicatorIndex()
    return IndicatorIndex.from_objects(objects)
