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

try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    _malloc_trim = _libc.malloc_trim
    _mallopt = _libc.mallopt
except (OSError, AttributeError):  # not glibc: nothing to tune
    _malloc_trim = _mallopt = None


def limit_arenas(count: int = 2) -> None:
    if _mallopt is not None:
        _mallopt(_M_ARENA_MAX, count)


def release() -> None:
    if _malloc_trim is not None:
        _malloc_trim(0)
