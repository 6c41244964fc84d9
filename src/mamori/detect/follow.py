"""Follow a live log: tail it, survive rotation and truncation, resume from a saved offset after a restart."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import polars as pl

from mamori.detect.scorer import Scorer
from mamori.errors import SchemaError
from mamori.events import READ_FORMATS, Quarantine, parse_lines

__all__ = ["FollowCheckpoint", "LogFollower"]

logger = logging.getLogger(__name__)

_CHECKPOINT = "follow.json"
_STATE = "state.parquet"


@dataclass
class FollowCheckpoint:
    """Where following stopped: the file identity and the byte offset after the last scored line.

    Attributes
    ----------
    path : str
        The followed path.
    inode : int
        Inode (and device) identify the file across renames: a different inode at the path means rotation.
    device : int
        Device number.
    offset : int
        Bytes of the file already scored (always at a line boundary).
    line_no : int
        Lines of the file already scored.
    events : int
        Events scored in total.
    """

    path: str
    inode: int
    device: int
    offset: int
    line_no: int
    events: int = 0


class LogFollower:
    """Tail a log file and score new lines as they arrive.

    Parameters
    ----------
    path : str or pathlib.Path
        The live log (e.g. ``/var/log/nginx/access.log``).
    scorer : Scorer
        Scores and emits alerts.
    fmt : str, default="nginx"
        Line format: ``nginx``, ``alb``, ``envoy``, ``envoy-json`` or ``ecs``.
    state_dir : str or pathlib.Path or None, default=None
        Where the checkpoint (offset, dedup table) and the window state are kept; with one, a restart resumes
        after the last scored line without re-alerting or skipping. None keeps nothing.
    max_batch_bytes : int, default=8388608
        Largest read per poll.
    state_every : float, default=30.0
        Seconds between saves of the window state (the offset and dedup table are saved after every batch).
    quarantine : Quarantine or None, default=None
        Where lines that do not parse go.
    explain_alerts : bool, default=True
        Attach contributing features to alerts.

    Notes
    -----
    Rotation (rename + new file at the path, as logrotate does) is noticed when the path's inode changes: the
    old file is read to its end first, then the new one from its start. ``copytruncate`` rotation (the file
    shrinks below the offset) restarts from the beginning of the file. A partly written last line waits until
    its newline arrives.
    """

    def __init__(
        self,
        path: str | Path,
        scorer: Scorer,
        *,
        fmt: str = "nginx",
        state_dir: str | Path | None = None,
        max_batch_bytes: int = 8 * 1024 * 1024,
        state_every: float = 30.0,
        quarantine: Quarantine | None = None,
        explain_alerts: bool = True,
    ) -> None:
        if fmt not in READ_FORMATS or fmt in ("csic", "csv"):
            raise SchemaError(
                f"LogFollower: format {fmt!r} cannot be followed line by line; use nginx, alb, envoy, envoy-json "
                "or ecs."
            )
        self.path = Path(path)
        self.scorer = scorer
        self.fmt = fmt
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.max_batch_bytes = max_batch_bytes
        self.state_every = state_every
        self.quarantine = quarantine
        self.explain_alerts = explain_alerts
        self._fh: IO[bytes] | None = None
        self._cp: FollowCheckpoint | None = None
        self._last_state_save = time.monotonic()
        self.rotations = 0
        self.truncations = 0
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            self._restore()

    # ---- checkpoint ---------------------------------------------------------------------------------------
    @property
    def checkpoint(self) -> FollowCheckpoint | None:
        """The current position (None before the file was first opened)."""
        return self._cp

    def _restore(self) -> None:
        assert self.state_dir is not None
        cp_file = self.state_dir / _CHECKPOINT
        if cp_file.exists():
            try:
                data = json.loads(cp_file.read_text())
                self._cp = FollowCheckpoint(**data["checkpoint"])
                self.scorer.dedup.load_dict(data.get("dedup", {}))
            except (ValueError, KeyError, TypeError) as exc:
                raise SchemaError(
                    f"LogFollower: checkpoint '{cp_file}' is unreadable ({exc}); delete it to start from the "
                    "beginning of the log."
                ) from exc
            logger.info("resuming %s at line %d (byte %d)", self.path, self._cp.line_no, self._cp.offset)
        state_file = self.state_dir / _STATE
        if state_file.exists():
            self.scorer.state.load(state_file)

    def save(self, *, with_state: bool = True) -> None:
        """Write the checkpoint (and the window state) now.

        Parameters
        ----------
        with_state : bool, default=True
            Also write the window state.
        """
        if self.state_dir is None or self._cp is None:
            return
        payload: dict[str, Any] = {"checkpoint": asdict(self._cp), "dedup": self.scorer.dedup.to_dict()}
        dest = self.state_dir / _CHECKPOINT
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.write_text(json.dumps(payload))
        tmp.replace(dest)
        if with_state:
            self.scorer.state.save(self.state_dir / _STATE)
            self._last_state_save = time.monotonic()

    # ---- reading ------------------------------------------------------------------------------------------
    def _open(self) -> bool:
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return False
        st = os.fstat(fh.fileno())
        cp = self._cp
        if cp is not None and (cp.inode, cp.device) == (st.st_ino, st.st_dev) and st.st_size >= cp.offset:
            fh.seek(cp.offset)
        else:
            if cp is not None and (cp.inode, cp.device) == (st.st_ino, st.st_dev):
                self.truncations += 1
                logger.warning("%s is shorter than the saved offset: truncated; reading from the start", self.path)
            events = cp.events if cp is not None else 0
            self._cp = FollowCheckpoint(str(self.path), st.st_ino, st.st_dev, 0, 0, events)
        self._fh = fh
        return True

    def _switch_if_rotated(self) -> bool:
        """After the open file is drained: reopen if the path now names another file or the file shrank."""
        assert self._fh is not None and self._cp is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False  # rotated away, new file not there yet
        if (st.st_ino, st.st_dev) != (self._cp.inode, self._cp.device):
            self._fh.close()
            self._fh = None
            self.rotations += 1
            logger.info("%s was rotated; following the new file", self.path)
            self._cp = FollowCheckpoint(str(self.path), st.st_ino, st.st_dev, 0, 0, self._cp.events)
            return self._open()
        if st.st_size < self._cp.offset:
            self.truncations += 1
            logger.warning("%s was truncated; reading from the start", self.path)
            self._fh.seek(0)
            self._cp.offset = 0
            self._cp.line_no = 0
            return True
        return False

    def poll(self) -> int:
        """Score the complete lines that arrived since the last call.

        Returns
        -------
        int
            Events scored.
        """
        if self._fh is None and not self._open():
            return 0
        assert self._fh is not None and self._cp is not None
        total = 0
        while True:
            data = self._fh.read(self.max_batch_bytes)
            end = data.rfind(b"\n") + 1
            if end == 0:
                if len(data) >= self.max_batch_bytes:  # one huge line: let the parser quarantine it
                    end = len(data)
                else:
                    self._fh.seek(self._cp.offset)
                    if self._switch_if_rotated():
                        continue
                    break
            complete = data[:end]
            self._fh.seek(self._cp.offset + end)
            total += self._score_lines(complete)
            self._cp.offset += end
            self.save(with_state=time.monotonic() - self._last_state_save >= self.state_every)
        return total

    def _score_lines(self, data: bytes) -> int:
        assert self._cp is not None
        lines = data.decode("utf-8", errors="replace").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
        first = self._cp.line_no + 1
        self._cp.line_no += len(lines)
        good, bad = parse_lines(pl.Series("text", lines, dtype=pl.String), self.fmt, source=self.path.name,
                                first_line=first)
        if bad.height:
            logger.warning("%s: %d lines quarantined in lines %d-%d", self.path.name, bad.height, first,
                           self._cp.line_no)
            if self.quarantine is not None:
                self.quarantine.add_frame(self.path.name, bad)
        if good.height == 0:
            return 0
        self.scorer.score(good, explain_alerts=self.explain_alerts)
        self._cp.events += good.height
        return good.height

    def run(self, stop: threading.Event | None = None, *, poll_interval: float = 0.5,
            idle_timeout: float | None = None) -> int:
        """Follow until ``stop`` is set (or ``idle_timeout`` seconds pass without new lines).

        Parameters
        ----------
        stop : threading.Event or None, default=None
            Set it to stop.
        poll_interval : float, default=0.5
            Seconds between polls when idle.
        idle_timeout : float or None, default=None
            Stop after this long without new lines (None: never).

        Returns
        -------
        int
            Events scored.
        """
        stop = stop or threading.Event()
        total = 0
        idle_since = time.monotonic()
        try:
            while not stop.is_set():
                n = self.poll()
                total += n
                if n:
                    idle_since = time.monotonic()
                elif idle_timeout is not None and time.monotonic() - idle_since >= idle_timeout:
                    break
                else:
                    stop.wait(poll_interval)
        finally:
            self.save()
            self.close()
        return total

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
