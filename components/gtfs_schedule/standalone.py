"""The GTFS validator on its own: one zip in, MobilityData's ``report.json`` shape out.

What ``interlock validate`` runs, with no configuration and no state: the same loader,
zip guards and notices as the component, into a temporary SQLite file that is removed
afterwards.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from interlock.components.gtfs_schedule import mdreport
from interlock.components.gtfs_schedule.loader import load_feed
from interlock.components.gtfs_schedule.zipsafe import ZipLimits
from interlock.errors import ValidationFailedError


def validate_file(
    path: Path,
    *,
    gtfs_input: str | None = None,
    day: date | None = None,
    limits: ZipLimits = ZipLimits(),  # noqa: B008 - immutable frozen dataclass
) -> dict[str, Any]:
    """Validate the GTFS zip at ``path`` and return its report in gtfs-validator's shape.

    ``gtfs_input`` is what the report names as the input (default: the file's URI);
    ``day`` is the date the date-dependent rules judge against (default: today).
    Raises ValidationFailedError (UnsafeArchiveError for what is not a safe zip) when
    ``path`` cannot be validated at all; a feed's problems are notices, not errors.
    """
    if not path.is_file():
        what = "does not exist" if not path.exists() else "is not a regular file"
        raise ValidationFailedError(f"GTFS feed {str(path)!r} {what}; give a GTFS zip")
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="interlock-validate-") as tmp:
        db = Path(tmp) / "feed.sqlite"
        result = load_feed(path, db, limits=limits, today=day)
        return mdreport.document(
            result.report,
            gtfs_input=gtfs_input or path.resolve().as_uri(),
            validated_at=started,
            record_counts=result.record_counts,
            db=db,
            date_for_validation=(day or started.date()).isoformat(),
            seconds=time.perf_counter() - t0,
        )
