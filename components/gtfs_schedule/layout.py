"""How a GTFS zip is laid out: txt files at the root or in one folder, or a zip of zips.

Transport Victoria ships one zip per mode inside a folder per mode
(``<mode>/google_transit.zip``); anything nested deeper is refused.
"""

from __future__ import annotations

import zipfile
from pathlib import PurePosixPath

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.spec import TABLES_BY_FILE
from interlock.components.gtfs_schedule.zipsafe import SafeZip
from interlock.errors import UnsafeArchiveError, ValidationFailedError


def flat_prefix(zf: SafeZip) -> str:
    """'' when the txt files sit at the root, 'folder/' when all sit in one top folder."""
    tops = {PurePosixPath(i.filename).parts[0] for i in zf.files}
    nested = all(len(PurePosixPath(i.filename).parts) > 1 for i in zf.files)
    if nested and len(tops) == 1:
        return f"{tops.pop()}/"
    return ""


def inner_zips(zf: SafeZip) -> dict[str, zipfile.ZipInfo]:
    """Mode folder -> inner zip member, for a zip of zips; empty for a flat feed."""
    inner: dict[str, zipfile.ZipInfo] = {}
    for info in zf.files:
        path = PurePosixPath(info.filename)
        if path.suffix.lower() != ".zip":
            continue
        if len(path.parts) > 2:
            raise UnsafeArchiveError(
                f"zip {zf.label!r}: inner zip {info.filename!r} is nested deeper than "
                "<mode>/google_transit.zip"
            )
        mode = path.parts[0] if len(path.parts) == 2 else path.stem
        if mode in inner:
            raise ValidationFailedError(
                f"zip {zf.label!r} holds two zips for mode {mode!r}; expected one per folder"
            )
        inner[mode] = info
    return inner


def mode_key(mode: str) -> tuple[int, str]:
    """Sort key for modes: numbered modes in number order, then the others by name."""
    return (int(mode), "") if mode.isdigit() else (1 << 30, mode)


def check_subfolders(zf: SafeZip, mode: str | None, book: NoticeBook) -> None:
    """invalid_input_files_in_subfolder, once, as gtfs-validator's ``GtfsInput`` finds it:
    after a folder entry, a later entry under that folder is a GTFS ``.txt`` file.

    A zip without folder entries never raises it (as in Java; the gtfs-guru oracle
    looks at the paths alone), and its files still load from one top folder.
    """
    folder: str | None = None
    for name in zf.names:
        if name.endswith("/"):
            folder = name
        gtfs_file = name.endswith(".txt") and name.rsplit("/", 1)[-1] in TABLES_BY_FILE
        if folder is not None and folder in name and gtfs_file:
            book.add(Notice("invalid_input_files_in_subfolder", mode=mode))
            return
