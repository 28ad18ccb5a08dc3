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

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # buffers up to 32 MiB come from the heap (glibc's own dynamic ceiling)
TRIM_THRESHOLD = 16 << 20  # free heap kept before it is returned to the system


def tune() -> bool:
    """Apply the settings where the C library is glibc; elsewhere nothing changes. True if applied."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    applied = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not applied:
        log.info("malloc tuning not applied (mallopt refused)")
    return applied
