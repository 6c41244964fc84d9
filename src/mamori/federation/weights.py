"""Model weights as exchanged in a federation: validation and a canonical hash."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from mamori.errors import FederationError

__all__ = ["check_arrays", "weights_hash"]

_HASH_DOMAIN = b"mamori-weights-v1\n"


def check_arrays(arrays: Sequence[np.ndarray], *, where: str, require_finite: bool = True) -> list[np.ndarray]:
    """Validate a list of weight arrays and return it as a list.

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The weights, in the model's parameter order.
    where : str
        Name of the caller, used in error messages.
    require_finite : bool, default=True
        Also reject floating-point arrays holding NaN or infinite values.

    Returns
    -------
    list of numpy.ndarray
        The same arrays, as a list.

    Raises
    ------
    FederationError
        If the sequence is empty, an item is not a numeric ndarray, or (with ``require_finite``)
        holds NaN/inf.
    """
    out = list(arrays)
    if not out:
        raise FederationError(f"{where}: got an empty list of weight arrays; expected the model's parameters.")
    for i, arr in enumerate(out):
        if not isinstance(arr, np.ndarray):
            raise FederationError(
                f"{where}: weight array {i} is a {type(arr).__name__}, expected numpy.ndarray "
                "(convert torch tensors with .detach().cpu().numpy())."
            )
        if arr.dtype.kind not in "fiub":
            raise FederationError(f"{where}: weight array {i} has dtype {arr.dtype}, expected a numeric dtype.")
        if require_finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise FederationError(
                f"{where}: weight array {i} (shape {arr.shape}) contains NaN or infinite values; "
                "local training diverged - lower the learning rate or check the member's data."
            )
    return out


def weights_hash(arrays: Sequence[np.ndarray]) -> str:
    """Return the SHA-256 of a canonical serialization of model weights.

    The serialization is independent of memory layout and byte order: for each array in order,
    its dtype (little-endian ``numpy.dtype.str``), its shape and its C-order little-endian bytes,
    after a domain-separation prefix and the number of arrays. Two weight lists hash equal exactly
    when they have the same dtypes, shapes and values (bit for bit).

    Parameters
    ----------
    arrays : sequence of numpy.ndarray
        The weights, in the model's parameter order.

    Returns
    -------
    str
        64 lowercase hex characters.

    Raises
    ------
    FederationError
        If ``arrays`` is empty or holds something other than numeric numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> len(weights_hash([np.zeros(3, dtype=np.float32)]))
    64
    """
    items = check_arrays(arrays, where="weights_hash", require_finite=False)
    digest = hashlib.sha256(_HASH_DOMAIN)
    digest.update(f"{len(items)}\n".encode())
    for arr in items:
        canonical = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        header = f"{canonical.dtype.str}|{','.join(str(d) for d in canonical.shape)}\n"
        digest.update(header.encode())
        digest.update(canonical.tobytes(order="C"))
    return digest.hexdigest()
