"""Batch scoring's allocator setting: applied on glibc, and memory still works afterwards."""

from __future__ import annotations

import sys

import pytest

from mamori.cli.allocators import batch_allocators


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_batch_allocators_apply_and_memory_still_works() -> None:
    # Execute
    applied = batch_allocators()

    # Assert: mallopt accepted every setting, and large blocks are still allocated and freed correctly
    assert applied
    import numpy as np

    for _ in range(3):
        block = np.ones((2048, 4096), dtype=np.float32)
        assert float(block.sum()) == 2048 * 4096

