"""libvips keeps recently loaded files in its operation cache, keyed by file name and load options:
a file changed in place (an external library's) would be decoded from the stale entry."""

from __future__ import annotations

import pyvips

# libvips' default size of its operation cache (operations kept).
_DEFAULT_MAX = 100


def forget_loaded_files() -> None:
    """Empty the cache (libvips trims it to the new maximum at once), then let it fill again."""
    pyvips.cache_set_max(0)
    pyvips.cache_set_max(_DEFAULT_MAX)
