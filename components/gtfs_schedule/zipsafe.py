"""Open untrusted zip payloads without trusting their names, sizes or contents.

Limits are enforced on the bytes actually inflated, not only on what the central
directory declares, so a lying header cannot smuggle a zip bomb past them.
"""

from __future__ import annotations

import io
import shutil
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


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """Ceilings for one payload; defaults fit Transport Victoria's ~250 MB / ~2 GB zip."""

    max_members: int = 10_000
    max_member_bytes: int = 8 * _GiB
    max_total_bytes: int = 16 * _GiB
    max_ratio: float = 250.0
    # Tiny members compress absurdly well (a header repeated); only judge bigger ones.
    ratio_min_bytes: int = 64 * _MiB


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
    """A readable stream over one member that stops as soon as a limit is crossed."""

    def __init__(self, raw: IO[bytes], info: zipfile.ZipInfo, archive: str, budget: Budget) -> None:
        super().__init__()
        self._raw = raw
        self._info = info
        self._archive = archive
        self._budget = budget
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self._raw.read(len(buffer))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise UnsafeArchiveError(
                f"zip {self._archive!r}: member {self._info.filename!r} is corrupt "
                f"after {self._read} bytes ({exc}); the payload must be re-fetched"
            ) from exc
        n = len(data)
        buffer[:n] = data
        self._read += n
        self._check(n)
        return n

    def _check(self, n: int) -> None:
        limits, name = self._budget.limits, self._info.filename
        if self._read > limits.max_member_bytes:
            raise UnsafeArchiveError(
                f"zip {self._archive!r}: member {name!r} inflates past "
                f"{limits.max_member_bytes} bytes (max_member_bytes); refusing a possible zip bomb"
            )
        if self._read >= limits.ratio_min_bytes:
            ratio = self._read / max(self._info.compress_size, 1)
            if ratio > limits.max_ratio:
                raise UnsafeArchiveError(
                    f"zip {self._archive!r}: member {name!r} has compression ratio "
                    f"{ratio:.0f} after {self._read} bytes, over max_ratio {limits.max_ratio:g}; "
                    "refusing a possible zip bomb"
                )
        self._budget.spend(self._archive, name, n)

    def close(self) -> None:
        self._raw.close()
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
        try:
            raw = self._zf.open(info)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as exc:
            raise UnsafeArchiveError(
                f"zip {self.label!r}: member {info.filename!r} cannot be opened ({exc})"
            ) from exc
        return io.BufferedReader(_LimitedReader(raw, info, self.label, self._budget), 1 << 20)

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
