"""A fast "no errors" verdict for stix2-validator, falling back to the validator itself for anything else.

stix2-validator 3.3 spends most of its time in two places: pure-Python JSON-schema validation
(``jsonschema``) and its MUST check of timestamps, which parses every timestamp with ``dateutil``.
:func:`certainly_valid` answers the one question the TAXII server asks most — "does this object pass?" —
with the *same* JSON schemas compiled by ``jsonschema_rs`` (Rust), the validator's own MUST checks, and a
cheap timestamp check that only ever says "fine" when ``dateutil`` would accept the value too.

It only returns True when the stock validator would report no errors; whenever it is unsure (a type it
does not handle, a schema mismatch, an unusual timestamp, a library it cannot load) it returns False and the
caller runs the stock validator, so errors, their messages and every rejection come from stix2-validator
itself. ``tests/intel/test_stix.py`` compares the verdicts both ways on valid and invalid objects.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Object types whose stix2-validator schema is used unchanged: SDOs, SROs and marking definitions (the
# validator rewrites observed-data's and bundle's schemas on the fly; observables take the stock path).
_SCHEMA_DIRS = ("sdos", "sros")
_EXCLUDED_TYPES = frozenset({"observed-data"})
# Timestamps of at most nanosecond precision whose calendar fields form a real date and time are exactly
# the ones for which dateutil cannot fail (it fails on Feb 30, second 60, year 0, ...: those go the slow way).
_SIMPLE_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]{1,9})?Z")
# What strptime('%Y-%m-%dT%H:%M:%S.%fZ') or ('%Y-%m-%dT%H:%M:%SZ') reads the same way as this regex does.
_MICRO_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?Z")


class _Unavailable(Exception):
    """The fast path cannot be built here (missing library, unexpected stix2-validator layout)."""


_Compiled = tuple[dict[str, Any], list[Callable[..., Any]], Any, Callable[..., Iterator[Any]]]


@lru_cache(maxsize=1)
def _compiled() -> _Compiled | None:
    """The compiled fast path, once per process; None (logged once) when it cannot be built here."""
    try:
        return _compile()
    except (_Unavailable, ValueError, OSError) as exc:  # jsonschema_rs raises ValueError on schema problems
        logger.warning("stix2-validator fast path unavailable, every object takes the stock path: %s", exc)
        return None


def _compile() -> _Compiled:
    """Compile the validator's per-type schemas and its list of MUST checks."""
    try:
        import jsonschema_rs
        import stix2validator.validator as sv
        from jsonschema import Draft202012Validator
        from stix2validator import ValidationOptions
        from stix2validator.v21 import musts
    except ImportError as exc:
        raise _Unavailable(str(exc)) from exc
    root = Path(sv.__file__).parent / "schemas-2.1" / "schemas"
    if not root.is_dir():
        raise _Unavailable(f"no schema directory {root}")
    # Every schema patched exactly as stix2-validator patches it, registered under its file URI, so the
    # relative $refs ('../common/core.json') resolve to the same documents.
    resources = []
    for path in sorted(root.rglob("*.json")):
        resources.append((path.as_uri(), sv.patch_schema(json.loads(path.read_text(encoding="utf-8")), str(path))))
    registry = jsonschema_rs.Registry(resources)
    checker = Draft202012Validator.FORMAT_CHECKER  # the one stix2-validator uses (with its stricter 'email')
    formats = {name: (lambda value, name=name: bool(checker.conforms(value, name))) for name in checker.checkers}
    validators: dict[str, Any] = {}
    schema_dir = str(root)
    candidates = [path for sub in _SCHEMA_DIRS for path in sorted((root / sub).glob("*.json"))]
    for path in [*candidates, root / "common" / "marking-definition.json"]:
        name = path.stem
        if name in _EXCLUDED_TYPES:
            continue
        try:
            # Only when it is the file the stock validator picks for this type (it searches the whole tree).
            if Path(sv.find_schema(schema_dir, name)).resolve() != path.resolve():
                continue
        except (KeyError, TypeError, OSError):
            continue
        schema = sv.patch_schema(json.loads(path.read_text(encoding="utf-8")), str(path))
        validators[name] = jsonschema_rs.validator_for(schema, registry=registry, validate_formats=True,
                                                       formats=formats)
    options = ValidationOptions(version="2.1", disabled=["all"])
    replaced = {musts.timestamp: _timestamps, musts.timestamp_compare: _timestamp_order}
    checks = [replaced.get(check, check) for check in musts.list_musts(options)]
    if not all(fast in checks for fast in replaced.values()):
        raise _Unavailable("stix2-validator's MUST checks changed (no 'timestamp' or 'timestamp_compare')")
    return validators, checks, options, sv._iter_errors_custom


def _timestamps(instance: Mapping[str, Any]) -> Iterator[Any]:
    """stix2-validator's ``timestamp`` MUST check without dateutil for plain timestamps.

    Yields nothing when every timestamp property is either left to the schema (does not look like a
    timestamp, as the original skips those) or a real calendar date and time; otherwise runs the original
    check, which yields its own errors.
    """
    from stix2validator.util import has_cyber_observable_data
    from stix2validator.v21 import enums, musts

    kind = instance["type"]
    props = ["created", "modified", *enums.TIMESTAMP_PROPERTIES.get(kind, ())]
    simple = not (has_cyber_observable_data(instance, "2.1") or kind in enums.TIMESTAMP_OBSERVABLE_PROPERTIES
                  or kind in enums.TIMESTAMP_EMBEDDED_PROPERTIES)
    for prop in props:
        if not simple:
            break
        if prop not in instance:
            continue
        value = instance[prop]
        if not isinstance(value, str):
            simple = False
        elif musts.TIMESTAMP_FORMAT_RE.match(value):
            match = _SIMPLE_TIMESTAMP.fullmatch(value)
            try:
                if match is None:
                    raise ValueError(value)
                datetime(*(int(g) for g in match.groups()))
            except ValueError:
                simple = False
    if not simple:
        yield from musts.timestamp(instance)


def _plain_datetime(value: Any) -> datetime | None:
    """The datetime stix2-validator's ``datetime_from_str`` would make of a plain timestamp, else None.

    Plain: at most microseconds and a real date and time, which its two ``strptime`` formats read into
    this same datetime.
    """
    match = _MICRO_TIMESTAMP.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    *fields, fraction = match.groups()
    try:
        return datetime(*(int(f) for f in fields), int(fraction.ljust(6, "0")) if fraction else 0)
    except ValueError:
        return None


def _timestamp_order(instance: Mapping[str, Any]) -> Iterator[Any]:
    """stix2-validator's ``timestamp_compare`` MUST check without ``strptime`` when it plainly passes.

    ``modified >= created``, ``valid_until > valid_from``, ...: when every compared pair is plain and in
    order, nothing is yielded; otherwise the original check runs and yields its own errors.
    """
    import operator

    from stix2validator.v21 import enums, musts

    compares = [("modified", "ge", "created"), *enums.TIMESTAMP_COMPARE.get(instance.get("type", ""), [])]
    for first, op, second in compares:
        if first in instance and second in instance:
            a, b = _plain_datetime(instance[first]), _plain_datetime(instance[second])
            if a is None or b is None or not getattr(operator, op)(a, b):
                yield from musts.timestamp_compare(instance)
                return


def certainly_valid(obj: Mapping[str, Any]) -> bool:
    """Whether stix2-validator (STIX 2.1, default checks) certainly reports no error for this object.

    Parameters
    ----------
    obj : mapping
        A STIX object as parsed JSON. An indicator's STIX pattern must already have been checked (its
        ``pattern_type`` renamed, as :func:`mamori.intel.stix.validate_object` does).

    Returns
    -------
    bool
        True only when the stock validator would find no error; False means "ask the stock validator"
        (the object may well be valid).
    """
    compiled = _compiled()
    if compiled is None:
        return False
    validators, checks, options, iter_errors_custom = compiled
    kind = obj.get("type") if isinstance(obj, dict) else None
    if not isinstance(kind, str) or "id" not in obj:
        return False
    validator = validators.get(kind)
    if validator is None:
        return False
    try:
        if not validator.is_valid(obj):
            return False
        for _error in iter_errors_custom(obj, checks, options):
            return False
    except Exception:  # noqa: BLE001 - anything odd is for the stock validator to report
        return False
    return True
