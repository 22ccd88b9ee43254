"""PTV Timetable API v3 responses -> typed rows, with the checks the quality rules count.

Pure functions over parsed JSON. A response of the wrong shape (not what the
endpoint returns) raises :class:`ValidationFailedError`; an entry inside a good
response that lacks a required field or has an unreadable time is counted as
an error notice and skipped, so the data-quality rules decide.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from interlock.errors import ValidationFailedError

Row = tuple[Any, ...]

DEPARTURE_KEY = ("stop_id", "route_id", "run_ref", "scheduled_departure_utc")
#: Where the API's zone-less vehicle times count: Melbourne, whatever their name says.
MELBOURNE = ZoneInfo("Australia/Melbourne")
_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _moment(value: Any) -> datetime | None:
    """An API time as sent: aware with ``Z`` or an offset, naive without."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # .NET sends seven fractional digits; Python reads at most six
        digits = "".join(ch for ch in rest if ch.isdigit())
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    return datetime.fromisoformat(text)


def utc(value: Any) -> str | None:
    """An API time (``2024-04-25T01:27:00Z``, any fraction) as ``YYYY-MM-DDTHH:MM:SSZ``."""
    moment = _moment(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_FORMAT)


def vehicle_utc(value: Any, near: Sequence[datetime] = ()) -> str | None:
    """``vehicle_position.datetime_utc`` as real UTC (``YYYY-MM-DDTHH:MM:SSZ``).

    Metro trains' positions come without a zone and are Melbourne local time despite
    the name (a train at Hughesdale at "12:42:29" departs there at 02:42:52Z); a time
    with ``Z`` or an offset (bus positions) is taken as it says. A local time in the
    hour that happens twice when daylight saving ends, or in the hour skipped when it
    starts, has two readings: the one nearer the run's departures in ``near`` (UTC) is
    taken, else the first (daylight-saving) reading.
    """
    moment = _moment(value)
    if moment is None:
        return None
    if moment.tzinfo is not None:
        return moment.astimezone(UTC).strftime(_FORMAT)
    readings = [moment.replace(tzinfo=MELBOURNE, fold=f).astimezone(UTC) for f in (0, 1)]
    best = readings[0]
    if readings[1] != best and near:
        best = min(readings, key=lambda r: min(abs(r - t) for t in near))
    return best.strftime(_FORMAT)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass
class Poll:
    """Everything one poll saw, as rows keyed for upserting."""

    route_types: dict[int, Row] = field(default_factory=dict)
    routes: dict[int, Row] = field(default_factory=dict)
    stops: dict[tuple[int, int], Row] = field(default_factory=dict)
    directions: dict[tuple[int, int], Row] = field(default_factory=dict)
    runs: dict[str, Row] = field(default_factory=dict)
    departures: list[Row] = field(default_factory=list)
    disruptions: dict[int, Row] = field(default_factory=dict)
    problems: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    checked_cells: int = 0
    null_cells: int = 0

    def problem(self, code: str, detail: str) -> None:
        self.problems[code] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{code}: {detail}")

    # --- endpoints ----------------------------------------------------------------

    def add_route_types(self, where: str, doc: dict[str, Any]) -> None:
        for item in _list(where, doc, "route_types"):
            rt = _int(item.get("route_type"))
            if rt is None:
                self.problem("route_type_without_id", _short(item))
                continue
            self.route_types[rt] = (rt, item.get("route_type_name"))

    def add_routes(self, where: str, doc: dict[str, Any]) -> None:
        for item in _list(where, doc, "routes"):
            self._route(item)

    def add_departures(self, where: str, doc: dict[str, Any], route_type: int) -> None:
        departures = _list(where, doc, "departures")
        for name in ("stops", "routes", "runs", "directions", "disruptions"):
            _mapping(where, doc, name)
        for item in (doc.get("routes") or {}).values():
            self._route(item)
        for item in (doc.get("stops") or {}).values():
            self._stop(item, route_type)
        for item in (doc.get("directions") or {}).values():
            did, rid = _int(item.get("direction_id")), _int(item.get("route_id"))
            if did is not None and rid is not None:
                row = (did, rid, item.get("direction_name"), _int(item.get("route_type")))
                self.directions[did, rid] = row
        near = _departure_times(departures)
        for item in (doc.get("runs") or {}).values():
            self._run(item, near)
        for item in (doc.get("disruptions") or {}).values():
            self._disruption(item, None)
        for item in departures:
            self._departure(item, route_type)

    def add_disruptions(self, where: str, doc: dict[str, Any]) -> None:
        groups = _mapping(where, doc, "disruptions", required=True)
        for category, items in groups.items():
            if not isinstance(items, list):
                raise _shape(where, f"'disruptions.{category}' is not a list")
            for item in items:
                self._disruption(item, category)

    # --- entities -----------------------------------------------------------------

    def _required(self, item: dict[str, Any], names: tuple[str, ...]) -> bool:
        self.checked_cells += len(names)
        missing = [n for n in names if item.get(n) in (None, "")]
        self.null_cells += len(missing)
        return not missing

    def _route(self, item: Any) -> None:
        rid = _int(item.get("route_id")) if isinstance(item, dict) else None
        if rid is None:
            self.problem("route_without_id", _short(item))
            return
        status = item.get("route_service_status") or {}
        self.routes[rid] = (
            rid,
            _int(item.get("route_type")),
            item.get("route_name"),
            item.get("route_number"),
            item.get("route_gtfs_id"),
            status.get("description") if isinstance(status, dict) else None,
        )

    def _stop(self, item: Any, route_type: int) -> None:
        sid = _int(item.get("stop_id")) if isinstance(item, dict) else None
        if sid is None:
            self.problem("stop_without_id", _short(item))
            return
        rt = _int(item.get("route_type"))
        rt = route_type if rt is None else rt
        self.stops[rt, sid] = (
            rt,
            sid,
            item.get("stop_name"),
            item.get("stop_suburb"),
            item.get("stop_latitude"),
            item.get("stop_longitude"),
            item.get("stop_landmark") or None,
        )

    def _run(self, item: Any, near: dict[str, list[datetime]]) -> None:
        ref = item.get("run_ref") if isinstance(item, dict) else None
        if not ref:
            self.problem("run_without_ref", _short(item))
            return
        pos = item.get("vehicle_position") or {}
        desc = item.get("vehicle_descriptor") or {}
        interchange = item.get("interchange")
        try:
            at = vehicle_utc(pos.get("datetime_utc"), near.get(str(ref), ()))
        except ValueError:
            at = None
            self.problem("bad_time", f"run {ref!r} vehicle_position.datetime_utc")
        self.runs[str(ref)] = (
            str(ref),
            _int(item.get("run_id")),
            _int(item.get("route_id")),
            _int(item.get("route_type")),
            _int(item.get("final_stop_id")),
            item.get("destination_name"),
            item.get("status"),
            _int(item.get("direction_id")),
            _int(item.get("express_stop_count")),
            pos.get("latitude"),
            pos.get("longitude"),
            pos.get("bearing"),
            at,
            desc.get("id"),
            desc.get("description"),
            _json(interchange) if isinstance(interchange, dict) else None,
        )

    def _departure(self, item: Any, route_type: int) -> None:
        if not isinstance(item, dict):
            self.problem("departure_not_an_object", _short(item))
            return
        if not self._required(item, DEPARTURE_KEY):
            self.problem("departure_missing_field", _short(item))
            return
        try:
            scheduled = utc(item["scheduled_departure_utc"])
            estimated = utc(item.get("estimated_departure_utc"))
        except ValueError as exc:
            self.problem("bad_time", f"departure of run {item.get('run_ref')!r}: {exc}")
            return
        self.departures.append(
            (
                _int(item["stop_id"]),
                route_type,
                _int(item["route_id"]),
                str(item["run_ref"]),
                _int(item.get("run_id")),
                _int(item.get("direction_id")),
                scheduled,
                estimated,
                bool(item.get("at_platform")),
                item.get("platform_number"),
                item.get("flags") or None,
                _int(item.get("departure_sequence")),
                _json(item.get("disruption_ids") or []),
            )
        )

    def _disruption(self, item: Any, category: str | None) -> None:
        if not isinstance(item, dict) or not self._required(
            item, ("disruption_id", "title", "disruption_status")
        ):
            self.problem("disruption_missing_field", _short(item))
            return
        did = _int(item["disruption_id"])
        if did is None:
            self.problem("disruption_missing_field", _short(item))
            return
        try:
            times = [
                utc(item.get(k)) for k in ("published_on", "last_updated", "from_date", "to_date")
            ]
        except ValueError as exc:
            self.problem("bad_time", f"disruption {did}: {exc}")
            return
        routes = [r.get("route_id") for r in item.get("routes") or [] if isinstance(r, dict)]
        stops = [s.get("stop_id") for s in item.get("stops") or [] if isinstance(s, dict)]
        previous = self.disruptions.get(did)
        self.disruptions[did] = (
            did,
            item.get("title"),
            item.get("url"),
            item.get("description"),
            item.get("disruption_status"),
            item.get("disruption_type"),
            *times,
            item.get("colour"),
            bool(item.get("display_on_board")),
            bool(item.get("display_status")),
            _json(routes),
            _json(stops),
            category or (previous[-1] if previous else None),
        )

    # --- summaries ----------------------------------------------------------------

    def duplicate_departures(self) -> int:
        keys = Counter((d[0], d[2], d[3], d[6]) for d in self.departures)
        return sum(n - 1 for n in keys.values())

    def stats(self) -> dict[str, int]:
        """The figures the data-quality rules (``interlock.kit.quality``) read."""
        return {
            "records": len(self.departures) + len(self.disruptions),
            "checked_cells": self.checked_cells,
            "null_cells": self.null_cells,
            "keyed_rows": len(self.departures),
            "duplicate_rows": self.duplicate_departures(),
            "error_notices": sum(self.problems.values()),
        }

    def fingerprint(self) -> str:
        """What the poll saw, hashed: equal fingerprints mean nothing new to store."""
        content = {
            "departures": sorted(self.departures, key=repr),
            "disruptions": sorted(self.disruptions.values(), key=repr),
            "runs": sorted(self.runs.values(), key=repr),
            "routes": sorted(self.routes.values(), key=repr),
        }
        return hashlib.sha256(_json(content).encode()).hexdigest()


def _departure_times(departures: list[Any]) -> dict[str, list[datetime]]:
    """run_ref -> its departure times (UTC) in one answer, to place its vehicle's time."""
    out: dict[str, list[datetime]] = {}
    for item in departures:
        if not isinstance(item, dict):
            continue
        try:
            moment = _moment(item.get("scheduled_departure_utc"))
        except ValueError:
            continue
        if moment is not None and moment.tzinfo is not None:
            out.setdefault(str(item.get("run_ref")), []).append(moment)
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _short(item: Any) -> str:
    return _json(item)[:120] if not isinstance(item, str) else item[:120]


def _shape(where: str, what: str) -> ValidationFailedError:
    message = f"{where} answered JSON that is not a PTV v3 response: {what}"
    return ValidationFailedError(message, report={"error": message})


def _list(where: str, doc: dict[str, Any], name: str) -> list[Any]:
    value = doc.get(name)
    if not isinstance(value, list):
        keys = ", ".join(sorted(doc)[:8]) or "none"
        raise _shape(where, f"{name!r} is missing or not a list (keys: {keys})")
    return value


def _mapping(
    where: str, doc: dict[str, Any], name: str, *, required: bool = False
) -> dict[str, Any]:
    value = doc.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise _shape(where, f"{name!r} is missing or not an object")
    return value
