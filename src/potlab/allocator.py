"""Keep large tensor allocations in the heap (glibc), so big systems cost linear time.

PyTorch on CPU allocates every intermediate tensor with ``malloc``. glibc serves requests
above its mmap threshold (at most 32 MB by default) with a fresh ``mmap`` and unmaps them
on ``free``; every energy+forces call on a large system then pays page faults and the
kernel's zeroing for each of its big edge tensors. That cost grows faster than the
tensors do (cache misses on fresh pages), and it made a SchNet call on a 3,200-atom cell
3.4x slower than it needs to be (``benchmarks/speed.py``; the per-atom cost rose from
400 us at 200 atoms to 1,090 us at 3,200; PaiNN's sys time exceeded its compute).
Raising the mmap threshold to 2 GiB and switching off trimming lets glibc reuse freed
heap memory from one call to the next: after the first call, the per-atom cost stays
flat.

The price is that a process keeps its peak heap (the largest call's working set) for
reuse instead of returning it to the system. Set ``POTLAB_MALLOC_TUNING=0`` to keep
glibc's defaults. Elsewhere than glibc (macOS, musl) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters from glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**31 - 1  # mallopt takes an int

_done: bool | None = None


def keep_large_allocations() -> bool:
    """Raise glibc's mmap threshold and switch off trimming, once per process; True if set.

    Called when potlab builds a potential; harmless to call again.
    """
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("POTLAB_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return _done
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, -1))
    return _done
