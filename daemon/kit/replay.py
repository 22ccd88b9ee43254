"""A run that rebuilds a dataset from the raw archive instead of the network.

``interlock replay`` puts a :class:`Replay` in the run's services (``ctx.replay``) and a
:class:`NoNetwork` client in place of HTTP: each component's fetch step reads the
archive instead (a snapshot the payload of its last publish, gtfs_realtime its stored
polls' payloads, ptv_timetable its polls' reply bundles), so a parser fix costs no API
call and no quota.
Everything after the fetch (quality gate, atomic swap, history) is the ordinary run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from interlock.errors import ReplayError


@dataclass(frozen=True, slots=True)
class Replay:
    """This run re-parses archived payloads (archived at or after ``since``, if given)."""

    since: datetime | None = None

    def payload(self, root: Path, component: str, sha256: str | None, suffix: str) -> Path:
        """The archived payload ``<root>/<component>/<sha256><suffix>``, or ReplayError."""
        if not sha256:
            raise ReplayError(
                f"component {component!r} has no published payload to replay (its state "
                "names none); run it once from its source first"
            )
        path = root / component / f"{sha256}{suffix}"
        if not path.is_file():
            raise ReplayError(
                f"component {component!r}: the payload of its last publish ({sha256[:12]}..."
                f"{suffix}) is no longer in the raw archive {str(root / component)!r}; raise "
                "its archive_keep, or run it from its source"
            )
        if self.since is not None:
            archived = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            if archived < self.since:
                raise ReplayError(
                    f"component {component!r}: the payload of its last publish was archived "
                    f"at {archived.isoformat(timespec='seconds')}, before --since "
                    f"{self.since.isoformat(timespec='seconds')}; nothing newer is archived"
                )
        return path


class NoNetwork:
    """The HTTP client of a replay: every call fails before anything is sent."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        async def refuse(url: object = None, *_args: object, **_kw: object) -> NoReturn:
            raise ReplayError(
                f"a replay makes no network calls, but the component called {name}({url!r}); "
                "it cannot be rebuilt from the archive alone"
            )

        return refuse

    async def close(self) -> None:
        """Nothing to close."""
