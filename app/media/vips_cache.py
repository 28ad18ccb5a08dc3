"""libvips' operation cache: it keeps recent operations, and the pixels they made, for reuse.

A file changed in place (an external library's) would be decoded from a stale entry, and a
worker, which renders each file once, would only hold pixels it never reads again (the cache
keeps up to 100 MB of them by default).
"""

from __future__ import annotations

import pyvips

# libvips' default size of its operation cache (operations kept); 0 once a worker turned it off.
_max = 100


def disable() -> None:
    """For the whole process: `serve` runs its worker in the API's process, whose own renderings
    (edits, crops) do not reuse operations either."""
    global _max
    _max = 0
    pyvips.cache_set_max(0)


def forget_loaded_files() -> None:
    """Empty the cache (libvips trims it to the new maximum at once), then let it fill again."""
    pyvips.cache_set_max(0)
    pyvips.cache_set_max(_max)
