"""Process settings for batch scoring: keep freed memory for reuse, and BLAS on the calling thread only.

**Allocator.** Keep freed memory for reuse instead of handing it back to the kernel.

Batch scoring builds and drops NumPy matrices of hundreds of MB per chunk. glibc malloc serves each of them
with a fresh ``mmap`` and unmaps it when freed, so every chunk faults its pages in again: about 250,000 minor
page faults and up to 40% of a 250,000-event chunk's CPU time went to the kernel zeroing pages. With
``mmap`` off and trimming off, freed blocks stay in the heap and the next chunk reuses them; measured on the
2,000,000-line benchmark: 47.4 -> 38.3 CPU seconds, peak RSS 2.16 -> 2.47 GB. (Doing the same for polars.
jemalloc, ``_RJEM_MALLOC_CONF=dirty_decay_ms:-1``, saved nothing more and doubled the peak: the two
allocators then cannot hand memory to each other.) Only this process's allocator is touched; the CLI edge
(and the benchmark) call it, not the library.

**BLAS threads.** The model's matrix products of a chunk run on the scorer's worker thread while the main thread
extracts the next chunk's features and the reader parses the one after. OpenBLAS's own worker thread then
mostly spins waiting for work: it used 1.25-1.5 CPU-seconds on the 2,000,000-line benchmark (per-thread CPU
from /proc) for products that take about 1 CPU-second in all, and on two cores it takes a core from the
feature extraction. :func:`batch_blas_threads` keeps BLAS on the calling thread: about 1.1-1.5 CPU-seconds less
per run, the same scores (bit for bit on a 250,000-event chunk with one and two threads; the benchmark's
``--baseline`` comparison checks the alerts).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

__all__ = ["batch_allocators", "batch_blas_threads"]

logger = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4


def batch_allocators() -> bool:
    """Make glibc malloc keep freed memory (no ``mmap`` per large array, no trimming); True when applied.

    Call before the first large allocation (``mamori score`` does, for batch runs). The peak resident size
    grows a little (freed blocks are reused, not returned); memory is not given back until the process exits.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = all(libc.mallopt(opt, value) == 1 for opt, value in (
            (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1), (_M_TOP_PAD, 256 * 2**20)))
    except (OSError, AttributeError):  # not glibc
        return False
    logger.debug("glibc malloc keeps freed memory: %s", ok)
    return ok


def batch_blas_threads() -> bool:
    """Limit BLAS (NumPy's OpenBLAS) to the calling thread for the rest of the process; True when applied.

    For batch runs (``mamori score``), where the pipeline already keeps both cores busy; not for the service.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - a declared dependency
        return False
    threadpool_limits(limits=1, user_api="blas")  # kept: the returned object restores only if asked to
    logger.debug("BLAS limited to one thread for batch scoring")
    return True
