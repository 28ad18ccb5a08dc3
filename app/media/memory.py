"""Keeping a media worker's resident memory close to what it uses.

Image decoders allocate and free hundreds of MB per large file from several
threads. glibc then keeps per-thread arenas and freed pages around, so the
process's RSS ratchets up to the sum of past peaks. Fewer arenas and an explicit
trim after each large job hand the memory back to the system.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
# Allocations this large get their own mapping, returned to the system the moment they are freed.
# glibc's default starts at 128 KiB but rises to the largest block freed so far (up to 32 MiB), after
# which decoded pictures come from the heap and stay there; a fixed value stops that rise.
MMAP_THRESHOLD = 1 << 20

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _libc.malloc_trim
    _mallopt = _libc.mallopt
except (OSError, AttributeError):  # not glibc: nothing to tune
    _malloc_trim = _mallopt = None


def limit_arenas(count: int = 2) -> None:
    """Fewer arenas, and pixel buffers in their own mappings (see MMAP_THRESHOLD), so the heap
    holds little a trim would give back after an ordinary picture."""
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, count)
        _mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def release() -> None:
    """malloc_trim: walks the whole heap, some 20 ms of CPU or more; worth it after a large decode."""
    if _malloc_trim is not None:
        _malloc_trim(0)
