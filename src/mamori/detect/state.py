"""Per-entity window state in bounded memory: a time- and size-bounded tail of recent events.

Design choice (see docs/detect.md): rather than re-implementing every windowed feature incrementally, the
state keeps the recent events themselves (only the columns behaviour features read) and each new batch is
scored by running :func:`mamori.features.extract_features` over *state + batch* and keeping the batch's rows.
The features are causal, so the batch's rows are exactly what a whole-history run would give, as long as
the history they depend on is still in the state. The state is bounded twice: by time (``horizon``: entities
idle for longer are evicted) and by size (``max_state_events``: a fixed memory budget, oldest first).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from mamori.errors import SchemaError
from mamori.events import EVENT_SCHEMA, LABEL_COLUMNS, conform

__all__ = ["STATE_COLUMNS", "StateStats", "WindowState"]

logger = logging.getLogger(__name__)

#: Columns the behaviour features of *other* rows depend on; the rest (query, body, bytes, ...) only shape the
#: features of an event's own row, so history does not need them.
STATE_COLUMNS: tuple[str, ...] = (
    "@timestamp",
    "source.ip",
    "source.as.number",
    "source.as.organization.name",
    "url.path",
    "http.response.status_code",
    "user_agent.original",
    "tls.client.ja3",
    "user.name",
    "user.id",
    "session.id",
    "device.id",
    "event.action",
    "event.outcome",
    "banking.amount",
    "banking.payee.id",
)

#: Entity columns: events sharing a value of any of these with a new event shape its behaviour features.
ENTITY_COLUMNS: tuple[str, ...] = (
    "source.ip",
    "source.as.number",
    "user.name",
    "user.id",
    "session.id",
    "device.id",
    "tls.client.ja3",
)

#: Entities whose behaviour features only use the long window (see mamori.features.behaviour).
_LONG_ONLY = frozenset({"source.as.number", "tls.client.ja3"})


@dataclass(frozen=True)
class StateStats:
    """Size of the window state.

    Attributes
    ----------
    events : int
        Events held.
    entities : int
        Distinct source IPs held.
    bytes : int
        Estimated memory of the held events.
    evicted : int
        Events evicted so far (by time or budget).
    max_events : int
        The budget.
    """

    events: int
    entities: int
    bytes: int
    evicted: int
    max_events: int


class WindowState:
    """The recent history that windowed features of new events depend on, in bounded memory.

    Parameters
    ----------
    horizon_seconds : float
        Events older than ``newest - horizon`` are evicted.
    max_events : int
        Budget: at most this many events are held (the oldest are evicted first).
    population_seconds : float, default=3600.0
        Length of the population window (``FeatureConfig.long_window``): ``context(..., related=True)`` keeps
        every login in it.
    """

    def __init__(self, horizon_seconds: float, max_events: int, population_seconds: float = 3600.0) -> None:
        self.horizon_seconds = horizon_seconds
        self.max_events = max_events
        self.population_seconds = population_seconds
        self._tail = pl.DataFrame(schema={c: EVENT_SCHEMA[c] for c in STATE_COLUMNS})
        self._evicted = 0

    @property
    def events(self) -> pl.DataFrame:
        """The held events (``STATE_COLUMNS`` only), oldest first."""
        return self._tail

    def context(self, batch: pl.DataFrame, *, related: bool = False) -> pl.DataFrame:
        """History rows to prepend to ``batch`` before extracting features.

        Parameters
        ----------
        batch : polars.DataFrame
            Canonical events about to be scored.
        related : bool, default=False
            Only the held events that share an entity (IP, ASN, username, user, session, device, TLS
            fingerprint) with ``batch``, the logins of the population window, and earlier events of those
            logins' usernames. The batch rows' features are the same as with the whole state; this is much
            smaller for small batches (the HTTP API).

        Returns
        -------
        polars.DataFrame
            Canonical schema (labels null), oldest first.
        """
        tail = self._tail
        if tail.height == 0:
            return tail
        if related:
            oldest = batch.get_column("@timestamp").min()
            since = None if oldest is None else oldest - dt.timedelta(seconds=self.population_seconds)
            recent = pl.lit(True) if since is None else pl.col("@timestamp") > since
            cond = pl.lit(False)
            for col in ENTITY_COLUMNS:
                values = batch.get_column(col).drop_nulls().unique()
                if values.len():
                    match = pl.col(col).is_in(values.implode())
                    # TLS fingerprints and networks are shared by many clients, and their features only look at
                    # the long window: older rows of theirs cannot change the batch's features.
                    cond = cond | ((match & recent) if col in _LONG_ONLY else match)
            if since is not None:
                logins = (pl.col("event.action") == "login") & recent
                login_names = tail.filter(logins).get_column("user.name").drop_nulls().unique()
                cond = cond | logins.fill_null(False)
                if login_names.len():
                    cond = cond | pl.col("user.name").is_in(login_names.implode())
            tail = tail.filter(cond.fill_null(False))
        return tail

    def append(self, batch: pl.DataFrame) -> None:
        """Add scored events and evict what falls out of the horizon or the budget.

        Parameters
        ----------
        batch : polars.DataFrame
            Canonical events (extra columns are dropped).
        """
        if self.max_events == 0:
            self._evicted += batch.height
            return
        new = batch.select(STATE_COLUMNS)
        tail = pl.concat([self._tail, new], how="vertical", rechunk=False) if self._tail.height else new
        before = tail.height
        newest = tail.get_column("@timestamp").max()
        if newest is not None:
            cutoff = newest - dt.timedelta(seconds=self.horizon_seconds)
            # the tail is mostly in time order; only pay for a filter when something is old enough to go
            oldest = tail.get_column("@timestamp").min()
            if oldest is not None and oldest <= cutoff:
                tail = tail.filter(pl.col("@timestamp") > cutoff)
        if tail.height > self.max_events:
            tail = tail.tail(self.max_events)
        if tail.n_chunks() > 8:
            tail = tail.rechunk()
        self._evicted += before - tail.height
        self._tail = tail

    def stats(self) -> StateStats:
        """Current size.

        Returns
        -------
        StateStats
        """
        tail = self._tail
        return StateStats(
            events=tail.height,
            entities=int(tail.get_column("source.ip").n_unique()) if tail.height else 0,
            bytes=int(tail.estimated_size()),
            evicted=self._evicted,
            max_events=self.max_events,
        )

    def save(self, path: str | Path) -> None:
        """Write the state to a Parquet file (atomically), to resume after a restart.

        Parameters
        ----------
        path : str or pathlib.Path
            Destination.
        """
        dest = Path(path)
        tmp = dest.with_name(dest.name + ".tmp")
        self._tail.write_parquet(tmp)
        tmp.replace(dest)

    def load(self, path: str | Path) -> None:
        """Replace the state with one written by :meth:`save`.

        Parameters
        ----------
        path : str or pathlib.Path
            Source.

        Raises
        ------
        SchemaError
            If the file is not a saved state.
        """
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise SchemaError(f"WindowState.load: cannot read state '{path}': {exc}") from exc
        missing = [c for c in STATE_COLUMNS if c not in frame.columns]
        if missing:
            raise SchemaError(f"WindowState.load: '{path}' lacks state columns {missing}; delete it to start fresh.")
        self._tail = conform(frame, source="WindowState.load").select(STATE_COLUMNS)
        self.append(self._tail.clear())


def canonical_batch(events: pl.DataFrame, source: str) -> pl.DataFrame:
    """Canonical schema without ground truth (labels set to null)."""
    visible = events.select([c for c in events.columns if not c.startswith("labels.")])
    frame = conform(visible, source=source)
    return frame.with_columns([pl.lit(None, dtype=EVENT_SCHEMA[c]).alias(c) for c in LABEL_COLUMNS])
