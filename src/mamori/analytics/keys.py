"""The consortium key and keyed hashing of items (HMAC-SHA256).

Only members holding the key can map an item to its sketch cells.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

import numpy as np

from mamori.errors import ConfigError

__all__ = ["ConsortiumKey"]


class ConsortiumKey:
    """A secret shared by the members (never by the coordinator) that keys the sketch hash functions.

    Parameters
    ----------
    secret : bytes
        At least 16 bytes. Distribute out of band (e.g. in each member's ``node.toml``), rotate per period.

    Raises
    ------
    ConfigError
        When the secret is shorter than 16 bytes.
    """

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ConfigError(f"ConsortiumKey: the secret must be at least 16 bytes; got {len(secret)}")
        self._secret = bytes(secret)
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    @classmethod
    def generate(cls) -> ConsortiumKey:
        """Return a new random 32-byte key.

        Returns
        -------
        ConsortiumKey
        """
        return cls(secrets.token_bytes(32))

    @classmethod
    def from_hex(cls, text: str) -> ConsortiumKey:
        """Parse a key written as hex.

        Parameters
        ----------
        text : str
            Hex digits (at least 32).

        Returns
        -------
        ConsortiumKey

        Raises
        ------
        ConfigError
            When ``text`` is not hex, or shorter than 32 hex digits. The message never repeats the text: it is a
            secret.
        """
        try:
            secret = bytes.fromhex(text.strip())
        except ValueError as exc:
            raise ConfigError(f"ConsortiumKey.from_hex: the key ({len(text.strip())} characters) is not a hex string "
                              "(digits 0-9 and a-f, two per byte)") from exc
        if len(secret) < 16:
            raise ConfigError(f"ConsortiumKey.from_hex: the key has {len(secret)} bytes ({2 * len(secret)} hex "
                              "digits); it needs at least 16 bytes (32 hex digits)")
        return cls(secret)

    def hex(self) -> str:
        """Return the key as hex (to write into a member's configuration).

        Returns
        -------
        str
        """
        return self._secret.hex()

    def digest(self, kind: str, value: str) -> bytes:
        """Return the keyed hash of one item.

        Parameters
        ----------
        kind : str
            Item kind (``ip``, ``username`` ...); items of different kinds never share a hash.
        value : str
            The item.

        Returns
        -------
        bytes
            32 bytes of HMAC-SHA256.
        """
        return hmac.new(self._secret, f"{kind}\x00{value}".encode(), hashlib.sha256).digest()

    def token(self, kind: str, value: str) -> str:
        """Return a short keyed-hash token that members can match without revealing the item.

        Parameters
        ----------
        kind, value : str
            The item.

        Returns
        -------
        str
            ``hmac-sha256:`` and 32 hex digits.
        """
        return "hmac-sha256:" + self.digest(kind, value)[:16].hex()

    def cells(self, kind: str, values: Iterable[str], width: int, depth: int) -> np.ndarray:
        """Return the sketch cell of every item in every row.

        Parameters
        ----------
        kind : str
            Item kind.
        values : iterable of str
            Items.
        width, depth : int
            Sketch shape (``depth`` <= 8).

        Returns
        -------
        numpy.ndarray
            int64 array of shape (n, depth), values in ``[0, width)``.
        """
        rows = []
        for v in values:
            key = (kind, v)
            words = self._cache.get(key)
            if words is None:
                words = np.frombuffer(self.digest(kind, v), dtype="<u4").astype(np.int64)
                self._cache[key] = words
            rows.append(words[:depth])
        if not rows:
            return np.zeros((0, depth), dtype=np.int64)
        return np.stack(rows) % width

    def __repr__(self) -> str:
        return "ConsortiumKey(<secret>)"
