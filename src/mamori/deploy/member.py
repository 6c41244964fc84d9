"""A member node's exchanges with the coordinator's services besides Flower.

- :func:`pull_global_model` asks the coordinator's model-registry API for the newest published global
  model and, when it is new, stores it in the node's own registry (``local_store_url``); the node's
  scoring service (``mamori serve --db <local store> --name <model_name>``) watches that registry and
  hot-reloads the new weights onto its bundle.
- :func:`push_sightings` turns the scoring service's new alerts (its JSON-lines alert file) into STIX
  sightings (:func:`mamori.detect.alerts_to_stix`: indicators of source IPs and sightings, never a customer
  identifier) and pushes them to the coordinator's TAXII server with the member's API key.

Both authenticate with the member's TAXII API key (HTTP Basic); both are idempotent and safe to call on a
timer (:class:`MemberSync`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from mamori.deploy.config import NodeConfig
from mamori.errors import ConfigError, IntelError, MamoriError, StoreError

__all__ = ["MemberSync", "PullResult", "pull_global_model", "push_sightings", "read_api_key", "seed_local_registry"]

logger = logging.getLogger(__name__)


def read_api_key(path: Path) -> str:
    """Read the member's API key from its file (first line).

    Parameters
    ----------
    path : Path
        ``api_key_file`` of node.toml; should be mode 0600.

    Returns
    -------
    str

    Raises
    ------
    ConfigError
        If the file is missing or empty.
    """
    try:
        key = path.read_text(encoding="utf-8").strip().splitlines()
    except OSError as exc:
        raise ConfigError(f"read_api_key: cannot read api_key_file {path} ({exc.strerror}); see docs/deployment.md.") \
            from exc
    if not key or not key[0].strip():
        raise ConfigError(f"read_api_key: api_key_file {path} is empty; put the member's TAXII API key in it.")
    if path.stat().st_mode & 0o077:
        logger.warning("api_key_file %s is readable by group/others; chmod 600 it", path)
    return key[0].strip()


def seed_local_registry(node: NodeConfig) -> bool:
    """Register ``scoring_bundle`` as version 0 of ``model_name`` in the node's registry when that is empty.

    The scoring service (``mamori serve --db <local store> --name <model_name>``) can then start before the
    first global model is published; every pulled model is applied to this bundle (its feature spec,
    standardiser and threshold) when the service hot-reloads.

    Parameters
    ----------
    node : NodeConfig
        With ``scoring_bundle``.

    Returns
    -------
    bool
        True when the bundle was registered now.

    Raises
    ------
    SchemaError
        If ``scoring_bundle`` is not a bundle.
    """
    from dataclasses import replace

    from mamori.detect import ScoringModel
    from mamori.store import ModelRegistry, open_store

    if node.scoring_bundle is None:
        return False
    node.model_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(node.resolved_local_store_url)
    try:
        registry = ModelRegistry(store)
        if registry.list(node.model_name):
            return False
        bundle = replace(ScoringModel.load(node.scoring_bundle), name=node.model_name, version=0)
        bundle.register(registry, actor=f"node:{node.name}")
    finally:
        store.close()
    logger.info("seeded %s with %s as %s v0", node.resolved_local_store_url, node.scoring_bundle, node.model_name)
    return True


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull_global_model` did.

    Parameters
    ----------
    version : int
        The published model's round.
    sha256 : str
        SHA-256 of its weights.
    new : bool
        True when it was downloaded and stored now (False: the node had it already).
    """

    version: int
    sha256: str
    new: bool


def pull_global_model(node: NodeConfig, api_key: str, *, timeout_s: float = 30.0) -> PullResult | None:
    """Fetch the newest published global model into the node's own registry when it is new.

    Parameters
    ----------
    node : NodeConfig
        With ``registry_url``, ``member`` and ``model_name``.
    api_key : str
        The member's API key.
    timeout_s : float, default=30.0
        HTTP timeout.

    Returns
    -------
    PullResult or None
        None when the coordinator has published nothing yet.

    Raises
    ------
    IntelError
        If the coordinator refuses (401: wrong key) or answers badly, or the download does not match its hash.
    """
    from mamori.detect.bundle import BUNDLE_FORMAT
    from mamori.store import ModelRegistry, bytes_to_arrays, open_store

    base = node.registry_url.rstrip("/") + f"/v1/models/{node.model_name}"
    auth = (node.member, api_key)
    try:
        r = requests.get(base, auth=auth, timeout=timeout_s)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        meta = r.json()
        node.model_dir.mkdir(parents=True, exist_ok=True)
        store = open_store(node.resolved_local_store_url)
        try:
            registry = ModelRegistry(store)
            if any(meta["sha256"] in (rec.sha256, rec.metadata.get("published_sha256"))
                   for rec in registry.list(node.model_name)):
                return PullResult(int(meta["version"]), str(meta["sha256"]), False)
            blob = requests.get(f"{base}/{meta['sha256']}", auth=auth, timeout=timeout_s)
            blob.raise_for_status()
            if hashlib.sha256(blob.content).hexdigest() != meta["sha256"]:
                raise IntelError(f"pull_global_model: the download of {node.model_name} v{meta['version']} from "
                                 f"{node.registry_url} does not match its SHA-256; not installed.")
            arrays = bytes_to_arrays(blob.content)
            extra = {"source": node.registry_url, "published_sha256": meta["sha256"]}
            bundle = _with_standardizer(registry, node, arrays, str(meta.get("standardizer") or ""),
                                        int(meta["version"]), extra)
            if bundle is None:  # no standardiser published (or no base bundle): the bare weights, as before
                registry.register(node.model_name, int(meta["version"]), arrays, extra, actor=f"node:{node.name}")
            else:  # the whole bundle: the scoring service applies the standardiser the weights were trained with
                registry.register(node.model_name, int(meta["version"]), bundle.to_bytes(),
                                  {**extra, "format": BUNDLE_FORMAT, "threshold": bundle.threshold},
                                  actor=f"node:{node.name}")
        finally:
            store.close()
    except requests.RequestException as exc:
        code = getattr(getattr(exc, "response", None), "status_code", None)
        hint = " (member name or API key refused)" if code == 401 else ""
        raise IntelError(f"pull_global_model: {node.registry_url} failed{hint}: {exc}") from exc
    except (KeyError, ValueError, StoreError) as exc:
        raise IntelError(f"pull_global_model: unexpected answer from {node.registry_url}: {exc}") from exc
    logger.info("pulled %s v%d (%s) from the coordinator", node.model_name, meta["version"], meta["sha256"][:12])
    return PullResult(int(meta["version"]), str(meta["sha256"]), True)


def _with_standardizer(registry: Any, node: NodeConfig, arrays: list[Any], standardizer: str, version: int,
                       metadata: dict[str, Any]) -> Any:
    """The node's scoring bundle with the pulled weights and the consortium's standardiser, or None.

    The base is the bundle seeded as version 0 of ``model_name`` (or ``scoring_bundle``); its feature spec and
    threshold are kept, its standardiser statistics are replaced by the ones training used.
    """
    from dataclasses import replace

    from mamori.deploy.flowerapp import standardizer_from_json
    from mamori.detect import ScoringModel

    if not standardizer:
        return None
    base = None
    bundles = [r for r in registry.list(node.model_name) if r.fmt == "bytes"]
    if bundles:
        base = ScoringModel.from_registry(registry, bundles[0].sha256, name=node.model_name)
    elif node.scoring_bundle is not None:
        base = ScoringModel.load(node.scoring_bundle)
    if base is None:
        logger.warning("no scoring bundle for %s: the pulled standardiser is kept in metadata only", node.model_name)
        return None
    scaler = standardizer_from_json(standardizer)
    if scaler.n_features_in_ != base.spec.n_features:
        raise IntelError(f"pull_global_model: the published standardiser has {scaler.n_features_in_} features, the "
                         f"node's scoring bundle {base.spec.n_features}; use the consortium's feature config.")
    bundle = base.with_weights(arrays, version=version, metadata=metadata)
    return replace(bundle, mean=scaler.mean_, scale=scaler.scale_, clip=scaler.clip)


def _alert(d: dict[str, Any]) -> Any:
    from mamori.detect import Alert

    return Alert(id=str(d["id"]), timestamp=str(d["@timestamp"]), entity=dict(d.get("entity") or {}),
                 score=float(d["score"]), threshold=float(d["threshold"]), family=d.get("family"),
                 family_similarity=d.get("family_similarity"), top_features=list(d.get("top_features") or []),
                 indicators=list(d.get("indicators") or []), request=dict(d.get("request") or {}),
                 model=dict(d.get("model") or {}), count=int(d.get("count", 1)))


def push_sightings(node: NodeConfig, api_key: str, *, client: Any = None) -> int:
    """Push sightings for the alerts added to ``alerts_path`` since the last call.

    The position reached is kept in ``model_dir/sightings.offset`` and only advanced after the TAXII server
    accepted the objects, so nothing is lost when the coordinator is down; an incomplete last line waits.

    Parameters
    ----------
    node : NodeConfig
        With ``taxii_url``, ``member``, ``alerts_path``, ``sightings_collection``, ``sightings_tlp``.
    api_key : str
        The member's API key.
    client : TaxiiClient or None, default=None
        A client to reuse (built from the config when None).

    Returns
    -------
    int
        Alerts turned into sightings by this call.

    Raises
    ------
    IntelError
        If a line of the alert file is not an alert, or the TAXII server refuses the objects.
    """
    from mamori.detect import alerts_to_stix
    from mamori.intel import TaxiiClient

    if node.alerts_path is None or not node.alerts_path.exists():
        return 0
    offset_file = node.model_dir / "sightings.offset"
    offset = int(offset_file.read_text()) if offset_file.exists() else 0
    if node.alerts_path.stat().st_size < offset:  # the alert file was rotated
        offset = 0
    with open(node.alerts_path, "rb") as f:
        f.seek(offset)
        data = f.read()
    complete = data[: data.rfind(b"\n") + 1]
    alerts = []
    for i, line in enumerate(complete.decode("utf-8").splitlines()):
        if not line.strip():
            continue
        try:
            alerts.append(_alert(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise IntelError(f"push_sightings: line {i + 1} after byte {offset} of {node.alerts_path} is not an "
                             f"alert ({exc.__class__.__name__}); fix or move the file.") from exc
    if alerts:
        objects = alerts_to_stix(alerts, node.name, tlp=node.sightings_tlp)
        client = client or TaxiiClient(node.taxii_url, node.member, api_key)
        client.push(node.sightings_collection, objects)
        logger.info("pushed %d STIX objects for %d alert(s) to %s", len(objects), len(alerts), node.taxii_url)
    node.model_dir.mkdir(parents=True, exist_ok=True)
    offset_file.write_text(str(offset + len(complete)))
    return len(alerts)


class MemberSync:
    """Pull published models and push sightings on their intervals (what ``mamori node`` runs beside its SuperNode).

    Parameters
    ----------
    node : NodeConfig
        The member's configuration; pulling needs ``registry_url``, pushing ``taxii_url``.
    clock : callable, default=time.monotonic
        Time source.
    """

    def __init__(self, node: NodeConfig, clock: Any = time.monotonic) -> None:
        self.node = node
        self.clock = clock
        self.api_key = read_api_key(node.api_key_file) if node.api_key_file is not None else ""
        seed_local_registry(node)
        self._next_pull = 0.0
        self._next_push = 0.0
        self.pulled: list[PullResult] = []
        self.pushed = 0

    def tick(self) -> None:
        """Do whatever is due; errors are logged and retried at the next interval (the node keeps running)."""
        now = self.clock()
        if self.node.registry_url and now >= self._next_pull:
            self._next_pull = now + self.node.pull_interval_s
            try:
                got = pull_global_model(self.node, self.api_key)
                if got is not None and got.new:
                    self.pulled.append(got)
            except MamoriError as exc:
                logger.warning("model pull failed, retrying in %.0f s: %s", self.node.pull_interval_s, exc)
        if self.node.taxii_url and now >= self._next_push:
            self._next_push = now + self.node.push_interval_s
            try:
                self.pushed += push_sightings(self.node, self.api_key)
            except MamoriError as exc:
                logger.warning("sighting push failed, retrying in %.0f s: %s", self.node.push_interval_s, exc)
