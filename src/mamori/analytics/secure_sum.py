"""Secure summation of integer vectors with pairwise masks (the masking core of SecAgg / SecAgg+).

Every pair of members agrees on a secret with X25519; each member adds, modulo 2**32, a pseudo-random mask
per peer (``+`` towards higher-numbered peers, ``-`` towards lower-numbered ones) to its vector. Each masked
vector alone is uniformly random to the coordinator; the masks cancel in the sum, so the coordinator learns the
consortium total and nothing else. This module has no dropout recovery (Flower's SecAgg+ adds Shamir shares of
the mask seeds for that); a round with a missing member fails and is retried without it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mamori.errors import FederationError

__all__ = ["MaskingMember", "SecureSumCoordinator", "secure_sum"]

_MOD = 2**32


class MaskingMember:
    """One member's side of the pairwise-mask protocol.

    Parameters
    ----------
    index : int
        The member's position in the round (distinct per member).
    """

    def __init__(self, index: int) -> None:
        self.index = index
        self._private = X25519PrivateKey.generate()
        self._seeds: dict[int, bytes] = {}

    def public_key(self) -> bytes:
        """Return the X25519 public key to publish through the coordinator.

        Returns
        -------
        bytes
        """
        return self._private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def agree(self, peers: dict[int, bytes]) -> None:
        """Derive the pairwise mask seeds from the peers' public keys.

        Parameters
        ----------
        peers : dict of int to bytes
            Index -> public key of every member of the round (own entry ignored).
        """
        for j, pub in peers.items():
            if j == self.index:
                continue
            shared = self._private.exchange(X25519PublicKey.from_public_bytes(pub))
            self._seeds[j] = hashlib.sha256(b"mamori-secure-sum" + shared).digest()

    def mask(self, vector: np.ndarray, round_id: int) -> np.ndarray:
        """Return ``vector`` plus the round's pairwise masks, modulo 2**32.

        Parameters
        ----------
        vector : numpy.ndarray
            Integer vector (negative entries allowed; they wrap).
        round_id : int
            Distinct per round so masks are never reused.

        Returns
        -------
        numpy.ndarray
            uint32 masked vector.
        """
        out = np.asarray(vector, dtype=np.int64).astype(np.uint32)
        for j, seed in self._seeds.items():
            gen = np.random.Generator(np.random.PCG64(np.frombuffer(
                hashlib.sha256(seed + round_id.to_bytes(8, "little")).digest(), dtype=np.uint64)))
            m = gen.integers(0, _MOD, out.size, dtype=np.uint32)
            out = out + m if self.index < j else out - m
        return out


class SecureSumCoordinator:
    """The coordinator's side: relays public keys, holds the masked vectors, returns only their sum.

    Attributes
    ----------
    received : dict of int to numpy.ndarray
        The masked vectors of the last round (kept for inspection by tests: this is all it ever sees).
    """

    def __init__(self) -> None:
        self.received: dict[int, np.ndarray] = {}

    def total(self, masked: dict[int, np.ndarray]) -> np.ndarray:
        """Sum the masked vectors; the masks cancel.

        Parameters
        ----------
        masked : dict of int to numpy.ndarray
            Index -> masked uint32 vector.

        Returns
        -------
        numpy.ndarray
            The sum as int64 (values >= 2**31 read as negative: DP noise may push cells below zero).

        Raises
        ------
        FederationError
            When the vectors differ in length.
        """
        sizes = {v.size for v in masked.values()}
        if len(sizes) != 1:
            raise FederationError(f"secure sum: masked vectors have different lengths {sorted(sizes)}")
        self.received = dict(masked)
        acc = np.zeros(sizes.pop(), dtype=np.uint32)
        for v in masked.values():
            acc += v
        return acc.view(np.int32).astype(np.int64)


def secure_sum(vectors: Sequence[np.ndarray], round_id: int = 0,
               coordinator: SecureSumCoordinator | None = None,
               members: Sequence[MaskingMember] | None = None) -> np.ndarray:
    """Run one in-process round: key agreement, masking, summation.

    Parameters
    ----------
    vectors : sequence of numpy.ndarray
        One integer vector per member, equal lengths, |sum| < 2**31.
    round_id : int, default=0
        Round number (fresh masks per round).
    coordinator : SecureSumCoordinator or None, default=None
        Reused coordinator (to inspect what it received); a new one when None.
    members : sequence of MaskingMember or None, default=None
        Members with keys already agreed (reused across rounds); new ones when None.

    Returns
    -------
    numpy.ndarray
        The element-wise int64 sum.

    Raises
    ------
    FederationError
        With fewer than 2 members (a sum of one is that member's vector).
    """
    if len(vectors) < 2:
        raise FederationError(f"secure sum needs at least 2 members; got {len(vectors)}")
    if members is None:
        members = [MaskingMember(i) for i in range(len(vectors))]
        keys = {m.index: m.public_key() for m in members}
        for m in members:
            m.agree(keys)
    coordinator = coordinator or SecureSumCoordinator()
    return coordinator.total({m.index: m.mask(v, round_id) for m, v in zip(members, vectors, strict=True)})
