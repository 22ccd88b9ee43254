"""The raw archive: every payload stored once, by its SHA-256, with a retention limit.

Any publish (or rejected payload) can be replayed from here; a payload seen
before is not stored twice. Payloads are 0600 in 0700 folders: what a source sent
is kept as it was, and it may hold anything.
"""

from __future__ import annotations

import os
from pathlib import Path

from interlock.kit.files import PRIVATE_FILE, private_dir, restrict


class RawArchive:
    """``<root>/<component>/<sha256><suffix>``, keeping the newest ``keep`` per component."""

    def __init__(self, root: Path, keep: int = 5) -> None:
        self.root = root
        self.keep = keep

    def path_for(self, component: str, sha256: str, suffix: str = "") -> Path:
        """Where the payload with this hash lives (whether or not it is there yet)."""
        return self.root / component / f"{sha256}{suffix}"

    def store(self, component: str, sha256: str, file: Path, suffix: str = "") -> Path:
        """Move ``file`` into the archive (or drop it if already archived); return its path."""
        target = self.path_for(component, sha256, suffix)
        private_dir(target.parent, self.root)
        if target.exists():
            file.unlink(missing_ok=True)
            os.utime(target)  # seen again: it counts as recent for retention
        else:
            os.replace(file, target)
        restrict(target, PRIVATE_FILE)
        self.prune(component)
        return target

    def prune(self, component: str) -> list[Path]:
        """Delete all but the newest ``keep`` payloads of a component."""
        folder = self.root / component
        files = sorted(
            (p for p in folder.iterdir() if p.is_file()),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        doomed = files[self.keep :]
        for p in doomed:
            p.unlink(missing_ok=True)
        return doomed
