"""Open untrusted zip payloads without trusting their names, sizes or contents.

Limits are enforced on the bytes actually inflated, not only on what the central
directory declares, so a lying header cannot smuggle a zip bomb past them.
"""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from interlock.errors import UnsafeArchiveError

_MiB = 1024 * 1024
_GiB = 1024 * _MiB
# Compressed bytes read per step: small enough that the ratio check sees progress often.
_CHUNK = 64 * 1024
# The only methods GTFS publishers use; anything else is refused with a reason.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
# A local file header (APPNOTE 4.3.7): 30 bytes, then the name and the extra field,
# whose lengths are its last two fields; the member's data follows them.
_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Ceilings for one payload; defaults fit Transport Victoria's ~250 MB / ~2 GB zip."""

    max_members: int = 10_000
    max_member_bytes: int = 8 * _GiB
    max_total_bytes: int = 16 * _GiB
    max_ratio: float = 250.0
    # Tiny members compress absurdly well (a header repeated); only judge bigger ones.
    # Real GTFS tables stay under 25:1 from their first MiB, and a bomb is refused
    # within this many bytes (plus one read) since the ratio uses bytes consumed so far.
    ratio_min_bytes: int = 2 * _MiB


@dataclass(slots=True)
class Budget:
    """Uncompressed bytes inflated so far across the whole payload, nested zips included."""

    limits: ZipLimits
    total: int = field(default=0)

    def spend(self, archive: str, member: str, nbytes: int) -> None:
        self.total += nbytes
        if self.total > self.limits.max_total_bytes:
            raise UnsafeArchiveError(
                f"zip {archive!r}: inflating member {member!r} took the payload to "
                f"{self.total} uncompressed bytes, over the limit of "
                f"{self.limits.max_total_bytes}; raise ZipLimits.max_total_bytes if genuine"
            )


class _LimitedReader(io.RawIOBase):
    """A readable stream over one member that stops as soon as a limit is crossed.

    The member is inflated here rather than by ``zipfile`` so that the compressed
    bytes *consumed* so far are known exactly: the ratio is judged on them, and a
    bomb is refused after a few MiB instead of after ``max_ratio`` times its whole
    compressed size. ``zipfile`` still parses and checks the headers.
    """

    def __init__(self, fp: IO[bytes], info: zipfile.ZipInfo, archive: str, budget: Budget) -> None:
        super().__init__()
        self._fp = fp
        self._info = info
        self._archive = archive
        self._budget = budget
        self._read = 0
        self._consumed = 0
        self._left = info.compress_size
        self._crc = 0
        self._inflate = (
            zlib.decompressobj(-zlib.MAX_WBITS)
            if info.compress_type == zipfile.ZIP_DEFLATED
            else None
        )
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = b""
        while not data and not self._done:
            try:
                data = self._next(len(buffer))
            except (zlib.error, OSError) as exc:
                raise self._corrupt(str(exc)) from exc
        n = len(data)
        buffer[:n] = data
        self._read += n
        self._crc = zlib.crc32(data, self._crc)
        self._check(n)
        if self._done:
            self._finish()
        return n

    def _next(self, size: int) -> bytes:
        """Up to ``size`` inflated bytes; may be empty while a deflate block header is read."""
        if self._inflate is None:
            chunk = self._fp.read(min(size, self._left))
            self._left -= len(chunk)
            self._consumed += len(chunk)
            self._done = self._left == 0
            if not chunk and not self._done:
                raise self._corrupt("it ends early")
            return chunk
        tail = self._inflate.unconsumed_tail
        if not tail and self._left:
            tail = self._fp.read(min(_CHUNK, self._left))
            if not tail:
                raise self._corrupt("it ends early")
            self._left -= len(tail)
        out = self._inflate.decompress(tail, size)
        self._consumed += len(tail) - len(self._inflate.unconsumed_tail)
        if self._inflate.eof:
            self._done = True
        elif not out and not self._left and not self._inflate.unconsumed_tail:
            raise self._corrupt("its deflate stream ends early")
        return out

    def _finish(self) -> None:
        if self._read != self._info.file_size:
            raise self._corrupt(
                f"it inflated to {self._read} bytes but declared {self._info.file_size}"
            )
        if self._crc != self._info.CRC:
            raise self._corrupt("its CRC-32 does not match")

    def _corrupt(self, why: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(
            f"zip {self._archive!r}: member {self._info.filename!r} is corrupt "
            f"after {self._read} bytes ({why}); the payload must be re-fetched"
        )

    def _check(self, n: int) -> None:
        limits, name = self._budget.limits, self._info.filename
        if self._read > self._info.file_size:
            raise UnsafeArchiveError(
                f"zip {self._archive!r}: member {name!r} inflates past its declared "
                f"{self._info.file_size} bytes; refusing a lying header"
            )
        if self._read > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"zip {self._archive!r}: member {name!r} inflates past "
                f"{limits.max_member_bytes} bytes (max_member_bytes); refusing a possible zip bomb"
            )
        if self._read >= limits.ratio_min_bytes:
            ratio = self._read / max(self._consumed, 1)
            if ratio > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"zip {self._archive!r}: member {name!r} has compression ratio "
                    f"{ratio:.0f} after {self._read} bytes, over max_ratio {limits.max_ratio:g}; "
                    "refusing a possible zip bomb"
                )
        self._budget.spend(self._archive, name, n)

    def close(self) -> None:
        self._fp.close()
        super().close()


def check_member_name(archive: str, name: str) -> None:
    """Refuse names that could escape an extraction directory (zip-slip)."""
    path = PurePosixPath(name)
    if (
        "\\" in name
        or "\x00" in name
        or path.is_absolute()
        or ".." in path.parts
        or (len(name) > 1 and name[1] == ":")
    ):
        raise UnsafeArchiveError(
            f"zip {archive!r}: member name {name!r} is absolute or climbs out of the archive "
            "(zip-slip); refusing the payload"
        )


class SafeZip:
    """A zip whose names and member count were checked; members open through limits."""

    def __init__(self, path: Path, budget: Budget, *, label: str | None = None) -> None:
        self.label = label or path.name
        self._path = path
        limits = budget.limits
        try:
            self._zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise UnsafeArchiveError(
                f"{self.label!r} is not a readable zip ({exc}); expected a GTFS zip"
            ) from exc
        except OSError as exc:
            raise UnsafeArchiveError(f"{self.label!r} cannot be read as a zip ({exc})") from exc
        self._budget = budget
        infos = self._zf.infolist()
        if len(infos) > limits.max_members:
            self._zf.close()
            raise UnsafeArchiveError(
                f"zip {self.label!r} has {len(infos)} members, over max_members "
                f"{limits.max_members}"
            )
        try:
            for info in infos:
                check_member_name(self.label, info.filename)
                if info.file_size > limits.max_member_bytes:
                    raise UnsafeArchiveError(
                        f"zip {self.label!r}: member {info.filename!r} declares "
                        f"{info.file_size} bytes, over max_member_bytes {limits.max_member_bytes}"
                    )
        except UnsafeArchiveError:
            self._zf.close()
            raise
        self.files = [i for i in infos if not i.is_dir()]
        self.names = [i.filename for i in infos]  # folders too, in the zip's order

    @property
    def budget(self) -> Budget:
        """The payload-wide byte budget this zip's members spend."""
        return self._budget

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._zf.close()

    def open(self, info: zipfile.ZipInfo) -> io.BufferedReader:
        """A buffered binary stream of one member, checked while it is read."""
        if info.compress_type not in _METHODS:
            raise UnsafeArchiveError(
                f"zip {self.label!r}: member {info.filename!r} uses compression method "
                f"{info.compress_type}; only {sorted(_METHODS.values())} are read, "
                "so the publisher must re-pack it"
            )
        try:
            # zipfile checks the local header (name, encryption, overlapping entries).
            self._zf.open(info).close()
            fp = self._path.open("rb")
        except (
            zipfile.BadZipFile,
            zlib.error,
            EOFError,
            NotImplementedError,
            RuntimeError,
            OSError,
        ) as exc:
            raise UnsafeArchiveError(
                f"zip {self.label!r}: member {info.filename!r} cannot be opened ({exc})"
            ) from exc
        try:
            fp.seek(info.header_offset)
            header = fp.read(_LOCAL_HEADER.size)
            if len(header) != _LOCAL_HEADER.size:
                raise UnsafeArchiveError(
                    f"zip {self.label!r}: member {info.filename!r} has a truncated local header"
                )
            *_, name_length, extra_length = _LOCAL_HEADER.unpack(header)
            fp.seek(name_length + extra_length, io.SEEK_CUR)
        except BaseException:
            fp.close()
            raise
        return io.BufferedReader(_LimitedReader(fp, info, self.label, self._budget), 1 << 20)

    def extract_to(self, info: zipfile.ZipInfo, dest: Path) -> None:
        """Stream one member into ``dest`` (used for the inner zips of a zip of zips)."""
        with self.open(info) as src, dest.open("xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


@contextmanager
def open_zip(path: Path, budget: Budget, *, label: str | None = None) -> Iterator[SafeZip]:
    """Open ``path`` as a :class:`SafeZip` for the duration of a ``with`` block."""
    zf = SafeZip(path, budget, label=label)
    try:
        yield zf
    finally:
        zf.close()
