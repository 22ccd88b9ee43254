"""One PTV poll's answers as one archived bundle: ``<data_dir>/raw/<component>/<sha256>.zip``.

The zip holds ``requests.json`` (for each request, in the poll's order: the member
holding its answer, the request kind, the path, the query parameters the settings asked
for, the route type and the HTTP status) and the exact bytes of every answer. The devid
and the signature are secrets: the signed URL is never stored, only what it asked.
Member times are fixed, so the same answers make the same bytes and hash: a poll
that saw nothing new is archived once (``RawArchive`` counts it as recent again).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interlock.components.ptv_timetable.client import parse_answer
from interlock.errors import ReplayError

MANIFEST = "requests.json"
SUFFIX = ".zip"
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip can hold: no run time in the bytes

#: (kind, path, params, route_type) of one API call, as PtvTimetableComponent plans it.
Request = tuple[str, str, list[tuple[str, str | int]], int | None]


def _put(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    zf.writestr(info, data)


def write_bundle(file: Path, plan: Sequence[Request], replies: Sequence[tuple[int, bytes]]) -> str:
    """Write the poll's ``replies`` ((status, body) per request of ``plan``); its SHA-256."""
    entries: list[dict[str, Any]] = []
    with zipfile.ZipFile(file, "w") as zf:
        for i, ((kind, path, params, route_type), (status, body)) in enumerate(
            zip(plan, replies, strict=True)
        ):
            member = f"{i:04d}-{kind}.json"
            entries.append(
                {
                    "member": member,
                    "kind": kind,
                    "path": path,
                    "params": [[k, v] for k, v in params],
                    "route_type": route_type,
                    "status": status,
                }
            )
            _put(zf, member, body)
        _put(zf, MANIFEST, json.dumps(entries, indent=1).encode())
    digest = hashlib.sha256()
    with file.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_bundle(file: Path) -> tuple[list[Request], list[dict[str, Any]]]:
    """The plan and the parsed answers archived in ``file``; ReplayError if unreadable."""
    try:
        with zipfile.ZipFile(file) as zf:
            entries = json.loads(zf.read(MANIFEST))
            bodies = [zf.read(e["member"]) for e in entries]
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ReplayError(
            f"the archived PTV bundle {str(file)!r} cannot be read ({type(exc).__name__}: "
            f"{exc}); delete it and give a --since after its poll"
        ) from None
    plan: list[Request] = [
        (e["kind"], e["path"], [(k, v) for k, v in e["params"]], e["route_type"]) for e in entries
    ]
    answers = [parse_answer(f"archived PTV {p[1]}", b) for p, b in zip(plan, bodies, strict=True)]
    return plan, answers
