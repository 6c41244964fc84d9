"""Turn a POSTed TAXII envelope into validated objects, or reject the whole request."""

from __future__ import annotations

import atexit
import json
import logging
import multiprocessing
import os
import re
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from mamori.errors import IntelError
from mamori.intel.stix import ip_indicator, parse_object, serialize, tlp_of, validate_object, validate_pattern
from mamori.intel.taxii.config import TaxiiConfig
from mamori.intel.taxii.errors import BadRequestError
from mamori.intel.taxii.repository import IncomingObject, normalize_timestamp

__all__ = ["PARALLEL_MIN_OBJECTS", "parse_envelope", "start_validation_pool", "warm_up"]

logger = logging.getLogger(__name__)

_MAX_REPORTED = 50

#: Envelopes with at least this many objects are validated in the worker processes, when a pool is running.
PARALLEL_MIN_OBJECTS = 200

# Validation is pure-Python CPU work (the stix2 object build is most of it), so threads would serialise on the
# GIL; a small pool of processes, started once by the server, uses the other cores for large envelopes.
_pool: Executor | None = None
_pool_workers = 0
_pool_lock = threading.Lock()


_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
_IDENTIFIER = re.compile(r"^[a-z0-9][a-z0-9-]*--[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                         r"[0-9a-fA-F]{12}$")
_TIMESTAMP_KEYS = ("created", "modified", "valid_from", "valid_until", "first_seen", "last_seen", "published",
                   "first_observed", "last_observed", "start_time", "stop_time")


def _check_formats(obj: dict[str, Any]) -> None:
    """What stix2-validator insists on and the stix2 library lets through: UTC 'Z' timestamps, identifiers."""
    for key in _TIMESTAMP_KEYS:
        value = obj.get(key)
        if value is not None and not (isinstance(value, str) and _TIMESTAMP.match(value)):
            raise IntelError(f"{obj.get('id')}: {key} must be an RFC 3339 UTC timestamp ending in Z, got {value!r}")
    for key, value in obj.items():
        refs = [value] if key.endswith("_ref") else value if key.endswith("_refs") else None
        if key == "id":
            refs = [value]
        for ref in refs or ():
            if not (isinstance(ref, str) and _IDENTIFIER.match(ref)):
                raise IntelError(f"{obj.get('id')}: {key} must hold STIX identifiers (type--uuid), got {ref!r}")


def _check(obj: Any, config: TaxiiConfig) -> IncomingObject:
    if not isinstance(obj, dict):
        raise IntelError(f"expected a STIX object (JSON object), got {type(obj).__name__}")
    if config.validation == "library":
        _check_formats(obj)
    # stix2: type, required properties, value types, pattern syntax, timestamps. The pattern is checked
    # once per shape (stix2 would re-parse every pattern with the ANTLR parser, most of its cost).
    if obj.get("type") == "indicator" and obj.get("pattern_type") == "stix" and isinstance(obj.get("pattern"), str):
        validate_pattern(obj["pattern"])
        parse_object({**obj, "pattern_type": "stix-checked"})
    else:
        parse_object(obj)
    if config.validation == "full":
        errors = validate_object(obj)  # stix2-validator's verdict (fast path for valid objects)
        if errors:
            raise IntelError(f"{obj.get('id')}: fails stix2-validator: {'; '.join(errors)[:400]}")
    raw = obj.get("modified") or obj.get("created") or ""
    version = normalize_timestamp(raw, f"{obj['id']} modified") if raw else ""
    tlp = tlp_of(obj) or ("clear" if obj["type"] == "marking-definition" else config.default_tlp)
    return IncomingObject(object_id=obj["id"], type=obj["type"], spec_version=obj.get("spec_version", "2.1"),
                          version=version, raw_version=raw, tlp=tlp,
                          body=json.dumps(obj, separators=(",", ":"), ensure_ascii=False),
                          created_by=obj.get("created_by_ref"))


def parse_envelope(body: bytes, config: TaxiiConfig) -> list[IncomingObject]:
    """Parse and validate an add-objects request body.

    The request is all-or-nothing: if any object is invalid, nothing is stored and the error names
    every bad object (index, id, reason; the first 50).

    Parameters
    ----------
    body : bytes
        The request body, a TAXII envelope ``{"objects": [...]}``.
    config : TaxiiConfig
        ``validation`` decides whether ``stix2-validator`` runs too.

    Returns
    -------
    list of IncomingObject

    Raises
    ------
    BadRequestError
        Malformed JSON, not an envelope, an empty envelope, or invalid objects.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequestError(f"the request body is not valid JSON ({exc}); send a TAXII envelope "
                              '{"objects": [...]}') from exc
    if not isinstance(data, dict) or not isinstance(data.get("objects"), list):
        raise BadRequestError('the request body is not a TAXII envelope; expected a JSON object {"objects": [...]}')
    objects = data["objects"]
    if not objects:
        raise BadRequestError("the envelope holds no objects; nothing to add")
    pool = _pool
    if pool is not None and _pool_workers > 1 and len(objects) >= PARALLEL_MIN_OBJECTS:
        size = -(-len(objects) // _pool_workers)
        futures = [pool.submit(_check_chunk, objects[i:i + size], i, config) for i in range(0, len(objects), size)]
        out: list[IncomingObject] = []
        failures: list[dict[str, Any]] = []
        for future in futures:
            chunk_out, chunk_failures = future.result()
            out.extend(chunk_out)
            failures.extend(chunk_failures)
    else:
        out, failures = _check_chunk(objects, 0, config)
    if failures:
        logger.info("rejected an envelope: %d of %d objects invalid", len(failures), len(objects))
        raise BadRequestError(f"{len(failures)} of {len(objects)} objects are not valid STIX 2.1 (first: object "
                              f"{failures[0]['index']}: {failures[0]['message'][:200]}); nothing was stored",
                              {"failure_count": len(failures), "failures": failures[:_MAX_REPORTED]})
    return out


def _check_chunk(objects: list[Any], start: int,
                 config: TaxiiConfig) -> tuple[list[IncomingObject], list[dict[str, Any]]]:
    """Check ``objects`` (envelope positions from ``start``): the valid ones, and a failure per invalid one."""
    out: list[IncomingObject] = []
    failures: list[dict[str, Any]] = []
    for i, obj in enumerate(objects, start):
        try:
            out.append(_check(obj, config))
        except (IntelError, KeyError, TypeError) as exc:
            ident = obj.get("id") if isinstance(obj, dict) else None
            failures.append({"index": i, "id": ident, "message": str(exc)[:500]})
    return out, failures


def _init_worker(config: TaxiiConfig, server_pid: int) -> None:
    """Worker start: load the validators, and exit when the server is gone.

    A server killed with SIGKILL cannot shut its pool down, and a worker blocked on the task queue would wait
    for ever (with spawn it holds both ends of the queue's pipe, so it never sees end-of-file).
    """
    warm_up(config)

    def watch_server() -> None:
        while os.getppid() == server_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch_server, name="taxii-server-watch", daemon=True).start()


def start_validation_pool(config: TaxiiConfig, workers: int | None = None) -> int:
    """Start the worker processes that validate large envelopes in parallel (once per process).

    Each worker loads and compiles the validators at start (:func:`warm_up`), so the first large add request
    does not pay for it. Idempotent; the pool is shut down at interpreter exit.

    Parameters
    ----------
    config : TaxiiConfig
        The server's settings (``validation`` decides what the workers load).
    workers : int or None, default=None
        Number of processes; None means one per CPU. Fewer than 2 starts nothing (serial validation).

    Returns
    -------
    int
        The number of worker processes running (0 when validation stays serial).
    """
    global _pool, _pool_workers
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 2:
        return 0
    with _pool_lock:
        if _pool is None:
            # spawn, not fork: the server may already run threads (uvicorn, SQLAlchemy pools)
            _pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(config, os.getpid()))
            _pool_workers = workers
            # start every worker now (the first submit would otherwise start them inside a request)
            for future in [_pool.submit(os.getpid) for _ in range(workers)]:
                future.result()
            atexit.register(_pool.shutdown, wait=False, cancel_futures=True)
            logger.info("TAXII validation pool: %d worker processes", workers)
        return _pool_workers


def warm_up(config: TaxiiConfig) -> None:
    """Load and compile everything :func:`parse_envelope` uses, before the first request.

    stix2-validator and the pattern grammar are imported lazily and the JSON schemas compiled on first
    use (about 1.5 CPU-seconds); a server pays that at start-up instead of in its first add request, and a
    broken validator install shows at start-up.

    Parameters
    ----------
    config : TaxiiConfig
        The server's settings (``validation`` decides what is loaded).
    """
    sample = serialize(ip_indicator("192.0.2.1", tlp="clear"))
    parse_envelope(json.dumps({"objects": [sample]}).encode(), config)
