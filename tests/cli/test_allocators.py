"""Batch scoring's process settings: the allocator (glibc), and BLAS on the calling thread."""

from __future__ import annotations

import sys

import pytest

from mamori.cli.allocators import batch_allocators, batch_blas_threads


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



def test_batch_blas_threads_limit_blas_to_one_thread() -> None:
    # Prepare: the BLAS thread counts before, to restore them for the other tests of this process
    from threadpoolctl import threadpool_info, threadpool_limits

    before = {i["filepath"]: i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    try:
        # Execute
        applied = batch_blas_threads()

        # Assert: every loaded BLAS now runs on one thread
        assert applied
        assert all(i["num_threads"] == 1 for i in threadpool_info() if i["user_api"] == "blas")
    finally:
        threadpool_limits(limits=max(before.values(), default=1), user_api="blas")
