"""glibc malloc settings for a process that moves media in large buffers.

Each 1 MiB read of a download or an upload allocates a fresh buffer. Left to glibc's defaults, a
buffer that size is often served by a new mmap() (or from an arena just trimmed back to the
system), so every read pays a page fault and a page clear for each 4 KiB: from the page cache,
reads measured here ran at about half the speed of reads into a reused buffer. Keeping such
buffers in the heap, and not trimming the heap back after each one, removes that cost. The
heap keeps up to TRIM_THRESHOLD free per malloc arena once it has been used, about 15-20 MiB more
resident after a large transfer (measured by bench/download.py); a 4 MiB threshold lost the gain.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
MMAP_THRESHOLD = 32 << 20  # buffers up to 32 MiB come from the heap (glibc's own dynamic ceiling)
TRIM_THRESHOLD = 16 << 20  # free heap kept before it is returned to the system
# Each arena may keep TRIM_THRESHOLD free; threads (libvips', the executor's) each take one, up to glibc's
# 8 per core by default. Fewer arenas bound what stays resident; the download kept its speed with 2.
ARENA_MAX = 2 * (os.cpu_count() or 1)


def tune() -> bool:
    """Apply the settings where the C library is glibc; elsewhere nothing changes. True if applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    applied = all(mallopt(option, value) == 1 for option, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_ARENA_MAX, ARENA_MAX)))
    if not applied:
        log.info("malloc tuning not applied (mallopt refused)")
    return applied
