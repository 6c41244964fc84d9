"""The model registry: content-addressed checkpoints of global models, one per federated round."""

from __future__ import annotations

import hashlib
import json
import logging
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from mamori.errors import StoreError
from mamori.store.store import utc_now
from mamori.store.tables import ModelBlobRow, ModelRow

if TYPE_CHECKING:
    from mamori.store.store import Store

__all__ = ["ModelCheckpoint", "ModelRecord", "ModelRegistry", "arrays_to_bytes", "bytes_to_arrays"]

logger = logging.getLogger(__name__)

_MAGIC = b"MAMORIW1"
_REGISTRY_LOCK = 7_270_003


def arrays_to_bytes(arrays: Sequence[np.ndarray]) -> bytes:
    """Serialise a list of NumPy arrays deterministically (same arrays → same bytes → same hash).

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        Model weights; any shape, any non-object dtype.

    Returns
    -------
    bytes
        ``MAMORIW1`` + per array: a length-prefixed JSON header (dtype, shape) and the C-order data.

    Raises
    ------
    StoreError
        When an array has dtype ``object``.
    """
    parts = [_MAGIC, struct.pack("<Q", len(arrays))]
    for i, arr in enumerate(arrays):
        a = np.ascontiguousarray(arr)
        if a.dtype.hasobject:
            raise StoreError(f"arrays_to_bytes: array {i} has dtype object; expected numeric weights")
        header = json.dumps({"dtype": a.dtype.str, "shape": list(a.shape)}).encode()
        data = a.tobytes(order="C")
        parts += [struct.pack("<I", len(header)), header, struct.pack("<Q", len(data)), data]
    return b"".join(parts)


def bytes_to_arrays(blob: bytes) -> list[np.ndarray]:
    """Inverse of :func:`arrays_to_bytes`.

    Parameters
    ----------
    blob : bytes
        Output of :func:`arrays_to_bytes`.

    Returns
    -------
    list of numpy.ndarray

    Raises
    ------
    StoreError
        When the bytes are not in that format.
    """
    if not blob.startswith(_MAGIC):
        raise StoreError("bytes_to_arrays: blob does not start with MAMORIW1; it was not written by arrays_to_bytes")
    try:
        pos = len(_MAGIC)
        (n,) = struct.unpack_from("<Q", blob, pos)
        pos += 8
        out = []
        for _ in range(n):
            (hlen,) = struct.unpack_from("<I", blob, pos)
            pos += 4
            header = json.loads(blob[pos:pos + hlen])
            pos += hlen
            (dlen,) = struct.unpack_from("<Q", blob, pos)
            pos += 8
            arr = np.frombuffer(blob[pos:pos + dlen], dtype=np.dtype(header["dtype"])).reshape(header["shape"])
            pos += dlen
            out.append(arr.copy())
        return out
    except (struct.error, ValueError, KeyError, TypeError) as exc:
        raise StoreError(f"bytes_to_arrays: truncated or corrupt weights blob ({exc})") from exc


@dataclass(frozen=True)
class ModelRecord:
    """A registry entry without its weights.

    Attributes
    ----------
    id : int
        Registry row id (increases with each registration).
    name : str
        Model name, e.g. ``"attack-classifier"``.
    version : int
        The federated round (or any increasing version number).
    sha256 : str
        Hex SHA-256 of the stored weights bytes.
    size_bytes : int
        Size of the weights bytes.
    fmt : str
        ``"arrays"`` (registered as NumPy arrays) or ``"bytes"``.
    created_at : str
        UTC registration time.
    metadata : dict
        What the caller attached (metrics, config, client count, ...).
    """

    id: int
    name: str
    version: int
    sha256: str
    size_bytes: int
    fmt: str
    created_at: str
    metadata: dict[str, Any]


@dataclass(frozen=True)
class ModelCheckpoint:
    """A registry entry with its weights.

    Attributes
    ----------
    record : ModelRecord
        The entry.
    weights : bytes
        The stored bytes (verified against ``record.sha256`` when read).
    """

    record: ModelRecord
    weights: bytes

    def arrays(self) -> list[np.ndarray]:
        """The weights as NumPy arrays (only for entries registered as arrays).

        Returns
        -------
        list of numpy.ndarray

        Raises
        ------
        StoreError
            When the entry was registered as raw bytes.
        """
        if self.record.fmt != "arrays":
            raise StoreError(f"model {self.record.name} v{self.record.version} was registered as raw bytes; "
                             "use .weights")
        return bytes_to_arrays(self.weights)


class ModelRegistry:
    """Checkpoints of global models, addressed by the SHA-256 of their weights.

    Parameters
    ----------
    store : Store
        The open store.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def register(self, name: str, version: int, weights: bytes | Sequence[np.ndarray],
                 metadata: Mapping[str, Any] | None = None, *, actor: str = "system") -> str:
        """Store a checkpoint and return its hash; also writes an audit entry.

        Parameters
        ----------
        name : str
            Model name.
        version : int
            Federated round or version number.
        weights : bytes or sequence of numpy.ndarray
            The weights, serialised or as arrays (serialised with :func:`arrays_to_bytes`).
        metadata : mapping, default=None
            JSON-serialisable metadata (metrics, config).
        actor : str, default="system"
            Who registers it (for the audit log).

        Returns
        -------
        str
            Hex SHA-256 of the weights bytes.

        Raises
        ------
        StoreError
            When the arguments are invalid or the database cannot be written.
        """
        if not name:
            raise StoreError("ModelRegistry.register: name must be a non-empty string")
        if isinstance(weights, bytes | bytearray | memoryview):
            blob, fmt = bytes(weights), "bytes"
        else:
            blob, fmt = arrays_to_bytes(list(weights)), "arrays"
        try:
            meta = json.dumps(dict(metadata or {}), sort_keys=True, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"ModelRegistry.register: metadata of {name} v{version} is not JSON-serialisable: "
                             f"{exc}") from exc
        digest = hashlib.sha256(blob).hexdigest()
        with self.store.write() as session:
            self.store.lock(session, _REGISTRY_LOCK)  # concurrent registrations of equal weights share one blob
            if session.get(ModelBlobRow, digest) is None:
                session.add(ModelBlobRow(sha256=digest, data=blob))
            row = ModelRow(name=name, version=int(version), sha256=digest, size_bytes=len(blob), fmt=fmt,
                           created_at=utc_now(), meta=meta)
            session.add(row)
            session.flush()
            self.store.audit.append(actor, "model.register", f"model:{name}",
                                    {"version": int(version), "sha256": digest, "size_bytes": len(blob)},
                                    session=session)
        logger.info("registered model %s v%d sha256=%s (%d bytes)", name, version, digest[:12], len(blob))
        return digest

    def list(self, name: str | None = None) -> list[ModelRecord]:
        """Every entry, oldest first, optionally of one model.

        Parameters
        ----------
        name : str or None, default=None
            Only this model.

        Returns
        -------
        list of ModelRecord
        """
        with self.store.read() as session:
            stmt = select(ModelRow).order_by(ModelRow.id)
            if name is not None:
                stmt = stmt.where(ModelRow.name == name)
            return [_record(r) for r in session.scalars(stmt)]

    def get(self, ref: str = "latest", *, name: str | None = None) -> ModelCheckpoint:
        """One checkpoint with its weights.

        Parameters
        ----------
        ref : str, default="latest"
            A SHA-256 (full or a unique prefix of at least 8 hex digits) or ``"latest"``.
        name : str or None, default=None
            With ``"latest"``: the latest of this model (highest version, then newest registration). Without a
            name, ``"latest"`` is the most recent registration of any model.

        Returns
        -------
        ModelCheckpoint

        Raises
        ------
        StoreError
            When nothing matches, the prefix is ambiguous, or the stored bytes no longer match their hash.
        """
        with self.store.read() as session:
            stmt = select(ModelRow)
            if name is not None:
                stmt = stmt.where(ModelRow.name == name)
            if ref == "latest":
                order = (ModelRow.version.desc(), ModelRow.id.desc()) if name is not None else (ModelRow.id.desc(),)
                row = session.scalars(stmt.order_by(*order).limit(1)).first()
                if row is None:
                    raise StoreError(f"ModelRegistry.get: no model registered{f' under {name!r}' if name else ''}")
            else:
                ref = ref.lower()
                if len(ref) < 8 or any(c not in "0123456789abcdef" for c in ref):
                    raise StoreError(f"ModelRegistry.get: {ref!r} is neither 'latest' nor a hex sha256 (>= 8 digits)")
                rows = list(session.scalars(stmt.where(ModelRow.sha256.startswith(ref)).order_by(ModelRow.id.desc())))
                if not rows:
                    raise StoreError(f"ModelRegistry.get: no model with sha256 {ref}...")
                if len({r.sha256 for r in rows}) > 1:
                    raise StoreError(f"ModelRegistry.get: sha256 prefix {ref} is ambiguous; give more digits")
                row = rows[0]
            blob = session.get(ModelBlobRow, row.sha256)
            if blob is None:
                raise StoreError(f"ModelRegistry.get: weights of {row.name} v{row.version} are missing")
            data = bytes(blob.data)
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise StoreError(f"ModelRegistry.get: stored weights of {row.name} v{row.version} do not match their "
                             "sha256; the database was altered")
        return ModelCheckpoint(_record(row), data)


def _json_default(value: Any) -> Any:
    """Let NumPy scalars and arrays into metadata; refuse everything else JSON cannot hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _record(r: ModelRow) -> ModelRecord:
    return ModelRecord(r.id, r.name, r.version, r.sha256, r.size_bytes, r.fmt, r.created_at, json.loads(r.meta))
