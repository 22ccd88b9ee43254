"""Retention for ``<data_dir>/quarantine/<component>/``: the newest N rejected payloads.

Every bad payload leaves a folder (payload and report, see :func:`.publish.quarantine`);
a source that keeps sending bad data would fill the disk. A component calls
:func:`prune_quarantine` after it quarantines, with ``data_quality.quarantine_keep``.
(Not ``kit/quarantine.py``: importing that would shadow ``interlock.kit.quarantine``,
the function.)
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

QUARANTINE_KEEP = 20
# The folders quarantine() makes (UTC, microseconds): they sort oldest first by name.
_STAMP = re.compile(r"^\d{8}T\d{12}Z$")


def quarantine_keep(data_quality: Mapping[str, Any]) -> int:
    """``data_quality.quarantine_keep`` (validated by the config), else the default."""
    keep = data_quality.get("quarantine_keep", QUARANTINE_KEEP)
    return keep if isinstance(keep, int) and keep >= 1 else QUARANTINE_KEEP


def prune_quarantine(data_dir: Path, component: str, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` quarantine folders of ``component``.

    Only folders named as quarantine() names them are touched, so an operator's
    notes beside them stay. Returns the folders removed (blocking: small, local I/O).
    """
    root = data_dir / "quarantine" / component
    try:
        folders = sorted(p for p in root.iterdir() if _STAMP.match(p.name) and p.is_dir())
    except FileNotFoundError:
        return []
    doomed = folders[: max(0, len(folders) - max(1, keep))]
    for folder in doomed:
        shutil.rmtree(folder, ignore_errors=True)
    return doomed
