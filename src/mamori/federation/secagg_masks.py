"""SecAgg+'s masks from a cryptographic generator (AES-256-CTR) instead of Flower's.

Flower 1.41's ``pseudo_rand_gen`` (``flwr.common.secure_aggregation.secaggplus_utils``) folds each 32-byte mask secret
- a member's self-mask seed, or the Diffie-Hellman key it shares with a neighbour - to a 32-bit seed of NumPy's
Mersenne Twister: every mask is one of 2**32 vectors, which a coordinator can search (flwrlabs/flower#7522, open;
a fix is proposed in #7570). No other SecAgg+ implementation fits Flower's workflow, so mamori swaps this one function:
:func:`install` makes Flower's client mod and server workflow expand the whole secret with AES-256-CTR. It runs when
mamori's SecAgg+ code is imported - the in-process run, and the deployment's ServerApp and ClientApps - so every
party of a mamori consortium derives the same masks and they still cancel in the sum.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["install", "secure_pseudo_rand_gen"]

_DOMAIN = b"mamori-secagg+-mask"
#: The modules that look ``pseudo_rand_gen`` up when they mask (the client mod) or unmask (the server workflow).
_USERS = (
    "flwr.common.secure_aggregation.secaggplus_utils",
    "flwr.client.mod.secure_aggregation.secaggplus_mod",
    "flwr.server.workflow.secure_aggregation.secaggplus_workflow",
)


def secure_pseudo_rand_gen(seed: bytes, num_range: int, dimensions_list: Sequence[tuple[int, ...]]) -> list[np.ndarray]:
    """Masks for SecAgg+: uniform integers in ``[0, num_range)``, one array per shape, from the whole ``seed``.

    A drop-in for Flower's ``pseudo_rand_gen``: the same arguments, the same int64 arrays, but the keystream of
    AES-256-CTR under ``SHA-256(domain || seed)``, so all of the secret's bits count.

    Parameters
    ----------
    seed : bytes
        The mask secret (a self-mask seed or a pairwise shared key).
    num_range : int
        The modulus of the masked arithmetic, a power of two up to 2**63 (Flower's ``modulus_range``).
    dimensions_list : sequence of tuple of int
        The shapes of the arrays to mask.

    Returns
    -------
    list of numpy.ndarray
        int64 arrays of those shapes.

    Raises
    ------
    ValueError
        If ``num_range`` is not a power of two in ``[2, 2**63]`` (masking by bits would then be biased).
    """
    if num_range < 2 or num_range > 2**63 or num_range & (num_range - 1):
        raise ValueError(f"secure_pseudo_rand_gen: num_range must be a power of two in [2, 2**63]; got {num_range}")
    key = hashlib.sha256(_DOMAIN + bytes(seed)).digest()
    stream = Cipher(algorithms.AES(key), modes.CTR(b"\x00" * 16)).encryptor()
    low_bits = np.uint64(num_range - 1)
    out = []
    for shape in dimensions_list:
        size = int(np.prod(shape)) if len(shape) else 1
        words = np.frombuffer(stream.update(bytes(8 * size)), dtype="<u8") & low_bits
        out.append(words.astype(np.int64).reshape(shape))
    return out


def install() -> None:
    """Make Flower's SecAgg+ client mod and server workflow draw their masks from :func:`secure_pseudo_rand_gen`.

    Idempotent. Both ends must run it (they look the function up when a round masks or unmasks), which importing
    ``mamori.federation.secagg`` or ``mamori.deploy.flowerapp`` does.
    """
    # import_module, not `import a.b.secaggplus_mod as m`: the package re-exports the function under the module's
    # name, so attribute access would reach the function, not the module whose globals the mod reads
    for name in _USERS:
        importlib.import_module(name).pseudo_rand_gen = secure_pseudo_rand_gen
