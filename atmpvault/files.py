"""Writing a file whole or not at all: the one atomic-write helper.

A temporary file beside the target is written, flushed to disk and renamed over the
target, so a reader (or a crash) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_write(target: Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """A binary file to write; on a clean exit it replaces `target`, else it vanishes."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomically(target: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace `target` with `data`, whole or not at all."""
    with atomic_write(target, mode) as fh:
        fh.write(data)
