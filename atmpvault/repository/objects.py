"""Reading a small file of the repository without starting a git process.

Every command reads the vault's configuration (the access check), and starting
`git cat-file` for it costs more than the read. Here the objects are read from the
repository's files: loose objects, and packs through their version-2 index, deltas
(by offset or by id) applied. Each object read is checked against its id, as git checks
it, so what is returned is what git would return. Whatever this reader does not know
(an object store with alternates, another hash, an object it cannot find or check, a
pack deleted under it by a roll-up) raises NotReadHere, and the caller asks git.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import zlib
from pathlib import Path

_TYPES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
_OFS_DELTA, _REF_DELTA = 6, 7
_MAX_DEPTH = 200  # deltas followed for one object (git's own default limit is 50)


class NotReadHere(Exception):
    """This reader cannot answer; git can."""


def read_path(repo: Path, commit: str, path: str) -> bytes | None:
    """The bytes of `path` as of `commit`, or None if its tree has no such file."""
    if len(commit) != 40 or os.path.exists(os.path.join(repo, "objects", "info", "alternates")):
        raise NotReadHere("not a repository this reader knows")
    try:
        with _Objects(repo) as objects:
            kind, data = objects.read(bytes.fromhex(commit))
            if kind != b"commit" or not data.startswith(b"tree "):
                raise NotReadHere(f"{commit} is not a commit")
            oid = bytes.fromhex(data[5:45].decode("ascii"))
            names = path.split("/")
            for depth, name in enumerate(names):
                kind, data = objects.read(oid)
                if kind != b"tree":
                    return None  # a file where a folder was named
                entry = _entry(data, name.encode("utf-8"))
                if entry is None:
                    return None
                mode, oid = entry
                if depth < len(names) - 1 and mode != b"40000":
                    return None
            kind, data = objects.read(oid)
            return data if kind == b"blob" else None
    except (OSError, ValueError, IndexError, zlib.error) as exc:
        raise NotReadHere(str(exc)) from exc


def _entry(tree: bytes, name: bytes) -> tuple[bytes, bytes] | None:
    """(mode, object id) of the entry `name` of a tree, or None."""
    pos = 0
    while pos < len(tree):
        space = tree.index(b" ", pos)
        end = tree.index(b"\0", space)
        if tree[space + 1 : end] == name:
            return tree[pos:space], tree[end + 1 : end + 21]
        pos = end + 21
    return None


class _Objects:
    """The object store of one repository, opened for a few reads."""

    def __init__(self, repo: Path) -> None:
        self.objects = os.path.join(repo, "objects")
        self.packs: list[tuple[mmap.mmap, mmap.mmap]] | None = None

    def __enter__(self) -> _Objects:
        return self

    def __exit__(self, *exc: object) -> None:
        for index, pack in self.packs or ():
            index.close()
            pack.close()

    def read(self, oid: bytes) -> tuple[bytes, bytes]:
        """(type, content) of an object, checked against its id."""
        found = self._loose(oid)
        if found is None:
            found = self._packed(oid)
        kind, data = found
        if hashlib.sha1(b"%s %d\0" % (kind, len(data)) + data).digest() != oid:
            raise NotReadHere("the object does not match its id")
        return kind, data

    def _loose(self, oid: bytes) -> tuple[bytes, bytes] | None:
        hex_id = oid.hex()
        try:
            with open(os.path.join(self.objects, hex_id[:2], hex_id[2:]), "rb") as file:
                raw = zlib.decompress(file.read())
        except FileNotFoundError:
            return None
        header, _, data = raw.partition(b"\0")
        kind, _, size = header.partition(b" ")
        if int(size) != len(data):
            raise NotReadHere("a loose object of the wrong size")
        return kind, data

    def _packed(self, oid: bytes) -> tuple[bytes, bytes]:
        for index, pack in self._open_packs():
            offset = _offset(index, oid)
            if offset is not None:
                return self._at(pack, offset, 0)
        raise NotReadHere("no pack holds the object")

    def _open_packs(self) -> list[tuple[mmap.mmap, mmap.mmap]]:
        if self.packs is None:
            self.packs = []
            folder = os.path.join(self.objects, "pack")
            for name in sorted(n for n in os.listdir(folder) if n.endswith(".idx")):
                idx = os.path.join(folder, name)
                with open(idx, "rb") as i, open(idx[: -len(".idx")] + ".pack", "rb") as p:
                    self.packs.append(
                        (mmap.mmap(i.fileno(), 0, access=mmap.ACCESS_READ),
                         mmap.mmap(p.fileno(), 0, access=mmap.ACCESS_READ))
                    )  # fmt: skip
        return self.packs

    def _at(self, pack: mmap.mmap, offset: int, depth: int) -> tuple[bytes, bytes]:
        """(type, content) of the pack entry at `offset`, its deltas applied."""
        if depth > _MAX_DEPTH:
            raise NotReadHere("a delta chain too long")
        byte = pack[offset]
        kind, size, shift, pos = (byte >> 4) & 7, byte & 15, 4, offset + 1
        while byte & 0x80:
            byte = pack[pos]
            size |= (byte & 0x7F) << shift
            shift, pos = shift + 7, pos + 1
        if kind in _TYPES:
            return _TYPES[kind], _inflate(pack, pos, size)
        if kind == _OFS_DELTA:
            byte = pack[pos]
            back, pos = byte & 0x7F, pos + 1
            while byte & 0x80:
                byte = pack[pos]
                back, pos = ((back + 1) << 7) | (byte & 0x7F), pos + 1
            base_kind, base = self._at(pack, offset - back, depth + 1)
        elif kind == _REF_DELTA:
            base_kind, base = self.read(bytes(pack[pos : pos + 20]))
            pos += 20
        else:
            raise NotReadHere(f"pack entry type {kind}")
        return base_kind, _apply(base, _inflate(pack, pos, size))


def _offset(index: mmap.mmap, oid: bytes) -> int | None:
    """Where a version-2 pack index puts an object in its pack, or None."""
    if index[:8] != b"\xfftOc\x00\x00\x00\x02":
        raise NotReadHere("not a version-2 pack index")
    fanout = 8
    count = int.from_bytes(index[fanout + 255 * 4 : fanout + 256 * 4], "big")
    first = oid[0]
    lo = int.from_bytes(index[fanout + (first - 1) * 4 : fanout + first * 4], "big") if first else 0
    hi = int.from_bytes(index[fanout + first * 4 : fanout + (first + 1) * 4], "big")
    names = fanout + 256 * 4
    while lo < hi:
        mid = (lo + hi) // 2
        found = index[names + mid * 20 : names + mid * 20 + 20]
        if found == oid:
            offsets = names + count * 24  # after the names and their CRC-32s
            value = int.from_bytes(index[offsets + mid * 4 : offsets + mid * 4 + 4], "big")
            if value & 0x80000000:  # in the table of 8-byte offsets that follows
                large = offsets + count * 4 + (value & 0x7FFFFFFF) * 8
                value = int.from_bytes(index[large : large + 8], "big")
            return value
        if found < oid:
            lo = mid + 1
        else:
            hi = mid
    return None


def _inflate(pack: mmap.mmap, pos: int, size: int) -> bytes:
    """The `size` bytes zlib-compressed at `pos`."""
    stream = zlib.decompressobj()
    out = b""
    step = max(size, 64) + 64
    while not stream.eof and pos < len(pack):
        out += stream.decompress(pack[pos : pos + step])
        pos += step
    if not stream.eof or len(out) != size:
        raise NotReadHere("a pack entry of the wrong size")
    return out


def _apply(base: bytes, delta: bytes) -> bytes:
    """A git delta applied to its base."""
    pos = 0
    sizes = []
    for _ in range(2):  # the base's size, then the result's
        value = shift = 0
        while True:
            byte = delta[pos]
            value, shift, pos = value | (byte & 0x7F) << shift, shift + 7, pos + 1
            if not byte & 0x80:
                break
        sizes.append(value)
    if sizes[0] != len(base):
        raise NotReadHere("a delta for another base")
    out = bytearray()
    while pos < len(delta):
        op = delta[pos]
        pos += 1
        if op & 0x80:  # copy from the base: offset and size, in the bytes the bits name
            offset = size = 0
            for bit in range(4):
                if op & (1 << bit):
                    offset, pos = offset | delta[pos] << (8 * bit), pos + 1
            for bit in range(3):
                if op & (0x10 << bit):
                    size, pos = size | delta[pos] << (8 * bit), pos + 1
            out += base[offset : offset + (size or 0x10000)]
        elif op:  # insert the next `op` bytes of the delta
            out += delta[pos : pos + op]
            pos += op
        else:
            raise NotReadHere("a delta with a reserved instruction")
    if len(out) != sizes[1]:
        raise NotReadHere("a delta of the wrong size")
    return bytes(out)
