"""Zips: the rule for the members of every zip atmpvault reads or writes, and a writer
whose bytes depend only on what goes in.

The rule: each member is a plain relative path (not absolute, no '..', no backslash, no
empty or '.' part), named once, and not a symbolic link. A zip that breaks it is not
trusted. The writer puts members in name order with one fixed time, fixed modes and one
compression level, so the same entries always give the same bytes.
"""

from __future__ import annotations

import re
import stat
import zipfile
from collections import Counter
from collections.abc import Callable, Sequence
from typing import IO

_DRIVE_RE = re.compile(r"[A-Za-z]:")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")

# A member's bytes: given whole, or written to the member by a function (a large file
# streamed from the repository, never held whole in memory).
Content = bytes | Callable[[IO[bytes]], object]


def member_problem(name: str) -> str | None:
    """Why a member's name is not a plain relative path inside the archive, or None."""
    if name.startswith(("/", "\\")) or _DRIVE_RE.match(name):
        return f"{name!r}: an absolute path"
    if "\\" in name:
        return f"{name!r}: a backslash in the name (a Windows folder separator)"
    if _CONTROL_RE.search(name):
        return f"{name!r}: control characters in the name"
    parts = name[:-1].split("/") if name.endswith("/") else name.split("/")
    if ".." in parts:
        return f"{name!r}: climbs out of the archive ('..')"
    if any(part in ("", ".") for part in parts):
        return f"{name!r}: an empty or '.' folder in the path"
    return None


def is_symlink(info: zipfile.ZipInfo) -> bool:
    """A member stored as a symbolic link (its unix mode in the high bits)."""
    return stat.S_ISLNK(info.external_attr >> 16)


def zip_member_problems(infos: Sequence[zipfile.ZipInfo]) -> list[str]:
    """Every member of a zip that breaks the rule above, each named once."""
    problems = []
    for info in infos:
        problem = member_problem(info.filename)
        if problem is None and is_symlink(info):
            problem = f"{info.filename}: a symbolic link"
        if problem is not None:
            problems.append(problem)
    counts = Counter(info.filename for info in infos)
    problems += [f"{name}: in the zip {n} times" for name, n in sorted(counts.items()) if n > 1]
    return problems


def write_members(
    out: IO[bytes], members: dict[str, Content], date_time: tuple[int, int, int, int, int, int]
) -> None:
    """Write `members` (files only; folders are implied by their names) as a zip to `out`,
    in name order, each stamped `date_time`, mode 0644, deflated at zlib's default level."""
    for name in members:
        problem = member_problem(name)
        if problem is not None or name.endswith("/"):
            raise ValueError(f"not a member name atmpvault writes: {problem or name}")
    with zipfile.ZipFile(out, "w") as archive:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.create_system = 3  # unix, so the mode below is read back as written
            info.external_attr = 0o100644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            content = members[name]
            if isinstance(content, bytes):
                archive.writestr(info, content)
            else:
                with archive.open(info, "w", force_zip64=True) as member:
                    content(member)
