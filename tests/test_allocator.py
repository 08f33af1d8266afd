"""potlab.allocator: glibc keeps large freed blocks for reuse once a potential exists."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")

PROBE = r"""
import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def fresh_pages_after_free(n=64 << 20):
    # a block above glibc's default mmap threshold is unmapped on free; a kept block is not:
    # the second allocation of the same size then faults no new pages
    p = libc.malloc(n); ctypes.memset(p, 1, n); libc.free(p)
    before = int(open("/proc/self/stat").read().split()[9])  # minor faults
    q = libc.malloc(n); ctypes.memset(q, 1, n); libc.free(q)
    return int(open("/proc/self/stat").read().split()[9]) - before
if sys.argv[1] == "tuned":
    import potlab.models.mace  # noqa: F401
    from potlab.potential import Potential
    Potential("schnet", {"preset": "tiny"}, [1, 8])
print(fresh_pages_after_free())
"""


def _faults(mode: str, env=None) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         env=env)
    return int(out.stdout.strip().splitlines()[-1])


def test_building_a_potential_keeps_large_blocks_for_reuse():
    pages = (64 << 20) // 4096
    assert _faults("plain") > 0.9 * pages  # glibc's default: a fresh mapping every time
    assert _faults("tuned") < 0.1 * pages  # after potlab: the freed block is reused


def test_tuning_can_be_switched_off():
    env = {**os.environ, "POTLAB_MALLOC_TUNING": "0"}
    assert _faults("tuned", env) > 0.9 * (64 << 20) // 4096
