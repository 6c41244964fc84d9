"""Per-member token buckets (requests per minute), kept in the server's memory."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """A token bucket per member: ``limit`` requests per minute, bursts up to ``limit``.

    Parameters
    ----------
    clock : callable, default=time.monotonic
        Time source in seconds (tests pass a fake clock).
    """

    def __init__(self, clock: object = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def acquire(self, member: str, limit: int) -> float:
        """Take one token.

        Parameters
        ----------
        member : str
            Member name.
        limit : int
            Requests per minute; 0 means unlimited.

        Returns
        -------
        float
            0.0 when the request may go ahead, else the seconds to wait.
        """
        if limit <= 0:
            return 0.0
        rate = limit / 60.0
        now = self._clock()  # type: ignore[operator]
        with self._lock:
            tokens, last = self._buckets.get(member, (float(limit), now))
            tokens = min(float(limit), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[member] = (tokens - 1.0, now)
                return 0.0
            self._buckets[member] = (tokens, now)
            return (1.0 - tokens) / rate
