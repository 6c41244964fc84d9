"""weights_hash: a canonical, layout-independent digest of model weights."""

from __future__ import annotations

import numpy as np
import pytest

from mamori.errors import FederationError
from mamori.federation import weights_hash


def test_hash_is_stable_and_independent_of_memory_layout_and_byte_order() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones(4, dtype=np.float64)

    reference = weights_hash([a, b])

    assert reference == weights_hash([a.copy(), b.copy()])
    assert reference == weights_hash([np.asfortranarray(a), b])
    assert reference == weights_hash([a.astype(a.dtype.newbyteorder(">")), b])
    assert len(reference) == 64 and int(reference, 16) >= 0


@pytest.mark.parametrize(
    "other",
    [
        lambda a, b: [a.reshape(4, 3), b],  # same bytes, other shape
        lambda a, b: [a.astype(np.float64), b],  # other dtype
        lambda a, b: [b, a],  # other order
        lambda a, b: [a, b, np.zeros(0, dtype=np.float32)],  # one more array
        lambda a, b: [np.nextafter(a, 100, dtype=np.float32), b],  # one ulp away
    ],
)
def test_hash_changes_with_shape_dtype_order_and_values(other) -> None:  # type: ignore[no-untyped-def]
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.ones(4, dtype=np.float64)
    assert weights_hash(other(a, b)) != weights_hash([a, b])


def test_hash_rejects_non_arrays() -> None:
    with pytest.raises(FederationError, match="expected numpy.ndarray"):
        weights_hash([[1.0, 2.0]])  # type: ignore[list-item]
    with pytest.raises(FederationError, match="empty list"):
        weights_hash([])
