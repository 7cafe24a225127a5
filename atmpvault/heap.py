"""The C heap of a long write (an import, a rebuild): memory freed is given back.

tantivy's indexing and merging threads allocate and free buffers of a megabyte and
more. glibc's malloc raises its mmap threshold each time such a buffer is freed (up to
32 MB), so the next ones come from per-thread arenas (up to eight per core) that keep
what is freed: an import of 10,000 documents held 166 MB of anonymous memory, most of
it free space in seven arenas. With two arenas and the threshold fixed at 4 MB (the
writer's 1 MB pages are reused in the arenas; anything larger is mapped and unmapped
whole) the same import peaks at about 80 MB, for about 3% more CPU than without (a
threshold of 128 KB gives 70 MB for 8%). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameters (malloc.h)
M_ARENA_MAX = -8
MMAP_THRESHOLD = 4 * 1024 * 1024
ARENAS = 2

_bounded = False


def bound_heap() -> None:
    """Tell glibc's malloc to return large buffers when freed and to keep few arenas.

    Process-wide and inherited by forked workers; called once, before the threads and
    workers of a long write start.
    """
    global _bounded
    if _bounded or not sys.platform.startswith("linux"):
        return
    _bounded = True
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # no mallopt in this C library: nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt(M_ARENA_MAX, ARENAS)
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
