"""The C heap of a long write (an import, a rebuild): few arenas, so freed memory is reused.

tantivy's indexing and merging threads allocate and free buffers of a megabyte and
more. glibc's malloc gives each thread that contends for the heap an arena of its own
(up to eight per core), and an arena keeps what is freed in it: an import of 10,000
documents held 166 MB of anonymous memory, most of it free space in seven arenas. With
two arenas the same import peaks at about 90 MB. Fixing the mmap threshold as well
(large buffers mapped and unmapped whole) took it to 70 MB but cost 5 to 10% more CPU
(every buffer's pages faulted in afresh), so glibc's dynamic threshold is kept.
Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import sys

M_ARENA_MAX = -8  # glibc's mallopt parameter (malloc.h)
ARENAS = 2

_bounded = False


def bound_heap() -> None:
    """Tell glibc's malloc to keep two arenas, not eight per core.

    Process-wide and inherited by forked workers; called once, before the threads and
    workers of a long write start.
    """
    import ctypes  # here, not at import: a search that opens the index never needs it

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
