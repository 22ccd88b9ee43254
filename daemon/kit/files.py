"""The modes of the files interlock writes, and which local files it agrees to read.

Whatever umask the process inherits (a shell's 022 or the unit's 0077), raw and
quarantined payloads are 0600 in 0700 folders and datasets at most 0640. A local
source is read only when it is a regular file with data in it: not a FIFO, a
device or a directory, and not a kernel file such as ``/proc/self/environ``, which
holds this process's environment, API keys included.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from interlock.errors import FetchError, PayloadTooLargeError

#: Raw and quarantined payloads: what an upstream sent may be anything, keys included.
PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700
#: Datasets: readable by the service's group (the readers), by no one else.
DATA_FILE = 0o640

#: Mounts whose files describe the running system rather than hold data.
KERNEL_MOUNTS = (Path("/proc"), Path("/sys"))
CHUNK = 1 << 20

_KINDS = {
    stat.S_IFDIR: "directory",
    stat.S_IFIFO: "FIFO",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
    stat.S_IFSOCK: "socket",
}


def restrict(path: Path, most: int) -> None:
    """Take away every permission bit of ``path`` beyond ``most`` (0640, 0600, 0700)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & ~most:
        os.chmod(path, mode & most)


def private_dir(path: Path, root: Path) -> Path:
    """Create ``path`` (below ``root``) if needed; it and each folder down from ``root`` 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    level = root
    restrict(level, PRIVATE_DIR)
    for part in path.relative_to(root).parts:
        level = level / part
        restrict(level, PRIVATE_DIR)
    return path


def private_opener(path: str, flags: int) -> int:
    """An ``open(..., opener=)`` that creates the file 0600 whatever the umask."""
    fd = os.open(path, flags | os.O_CLOEXEC, PRIVATE_FILE)
    os.fchmod(fd, PRIVATE_FILE)  # an existing file keeps its mode through open()
    return fd


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` as a 0600 file."""
    with open(path, "w", encoding="utf-8", opener=private_opener) as f:
        f.write(text)


def _kernel_file(real: str, st: os.stat_result) -> bool:
    for mount in KERNEL_MOUNTS:
        if real == str(mount) or real.startswith(f"{mount}/"):
            return True
        try:
            if os.stat(mount).st_dev == st.st_dev:  # the same kernel mount, seen elsewhere
                return True
        except OSError:
            continue
    return False


def copy_regular_file(
    source: Path,
    dest: Path,
    *,
    max_bytes: int,
    what: str,
    hint: str,
    magic: tuple[bytes, ...] = (),
    kind: str = "",
) -> int:
    """Copy the regular file ``source`` to a new 0600 ``dest`` (blocking); its size.

    Symlinks are followed, and what they lead to is judged. Refused with a
    :class:`FetchError` naming ``what`` (e.g. "GTFS source file") and saying ``hint``
    (what to do): a missing or unreadable file, anything that is not a regular file,
    a kernel file under /proc or /sys, a file that reads more than its size says,
    and, when ``magic`` is given, a file that does not start as a ``kind`` should
    (nothing of it is copied or quoted). Over ``max_bytes``: PayloadTooLargeError.
    """
    name = repr(str(source))
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise FetchError(f"{what} {name} does not exist; {hint}") from None
    except OSError as exc:
        raise FetchError(f"{what} {name} cannot be read: {exc.strerror}; {hint}") from None
    real = os.path.realpath(source)
    via = f" (a symlink to {real!r})" if real != os.path.abspath(source) else ""
    if not stat.S_ISREG(st.st_mode):
        found = _KINDS.get(stat.S_IFMT(st.st_mode), "special file")
        raise FetchError(f"{what} {name}{via} is a {found}, not a regular file; {hint}")
    if _kernel_file(real, st):
        raise FetchError(
            f"{what} {name}{via} is a kernel file, not data: files under /proc and /sys "
            f"describe the running system (/proc/self/environ holds its keys); {hint}"
        )
    if st.st_size > max_bytes:
        raise PayloadTooLargeError(
            f"{what} {name} is {st.st_size:,} bytes, over the limit of {max_bytes:,}; {hint}"
        )
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise FetchError(f"{what} {name} cannot be read: {exc.strerror}; {hint}") from None
    with os.fdopen(fd, "rb") as src:
        opened = os.fstat(src.fileno())
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise FetchError(f"{what} {name} was replaced while it was opened; {hint}")
        head = src.read(max((len(m) for m in magic), default=0))
        if magic and not head.startswith(magic):
            raise FetchError(f"{what} {name} is not a {kind}: it does not start as one; {hint}")
        size = 0
        try:
            with open(dest, "wb", opener=private_opener) as out:
                chunk = head or src.read(CHUNK)
                while chunk:
                    size += len(chunk)
                    if size > st.st_size:
                        raise FetchError(
                            f"{what} {name} reads more than its size ({st.st_size:,} bytes) "
                            f"says: it is not an ordinary file, or something is writing it; {hint}"
                        )
                    out.write(chunk)
                    chunk = src.read(CHUNK)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
    return size
