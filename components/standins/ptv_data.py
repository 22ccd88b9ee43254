"""Generated PTV Timetable API v3 answers for the stand-in, from the sample network.

PTV stop ids are the numbers in the sample GTFS feed's stop URLs (1001 upwards
per mode, as ``sample_feed`` assigns them), so what the demo polls lines up with
the schedule it loads. Everything is a pure function of the version and the
publication time: the same version answers byte for byte the same.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .sample_network import NETWORKS, Line, ModeNetwork, Station

ROUTE_TYPES = {0: "Train", 1: "Tram", 2: "Bus", 3: "Vline", 4: "Night Bus"}
# PTV route type -> the sample network's GTFS mode folder.
MODE_OF = {0: "2", 1: "3", 3: "1"}
CATEGORY = {0: "metro_train", 1: "metro_tram", 2: "metro_bus", 3: "regional_train"}


def category_for(route_types: set[Any]) -> str:
    """The group a disruption is listed under in ``/v3/disruptions``."""
    known = sorted(t for t in route_types if t in CATEGORY)
    return CATEGORY[known[0]] if len(known) == 1 else "general"


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _stations(network: ModeNetwork) -> list[Station]:
    seen: dict[str, Station] = {}
    for line in network.lines:
        for station in line.stations:
            seen.setdefault(station.code, station)
    return list(seen.values())


class GeneratedNetwork:
    """The answers for one published ``version`` at ``published_at``."""

    def __init__(self, version: int, published_at: datetime) -> None:
        self.version = version
        self.base = published_at.replace(second=0, microsecond=0)
        self._stops: dict[tuple[int, int], Station] = {}
        self._lines: dict[int, tuple[int, Line]] = {}
        for route_type, mode in MODE_OF.items():
            network = NETWORKS[mode]
            for number, station in enumerate(_stations(network), start=1001):
                self._stops[route_type, number] = station
            for i, line in enumerate(network.lines, start=1):
                self._lines[route_type * 100 + i] = (route_type, line)

    def stop_id(self, route_type: int, code: str) -> int:
        """The PTV stop id of the station ``code`` (e.g. "FSS") for ``route_type``."""
        for (rt, sid), station in self._stops.items():
            if rt == route_type and station.code == code:
                return sid
        raise KeyError(f"no station {code!r} for route type {route_type}")

    def _route(self, route_id: int) -> dict[str, Any]:
        route_type, line = self._lines[route_id]
        return {
            "route_type": route_type,
            "route_id": route_id,
            "route_name": line.short_name if route_type != 1 else line.long_name,
            "route_number": line.short_name if route_type == 1 else "",
            "route_gtfs_id": f"{MODE_OF[route_type]}-{line.code}",
            "geopath": [],
        }

    def routes(self) -> list[dict[str, Any]]:
        return [self._route(rid) for rid in sorted(self._lines)]

    def disruptions(self) -> list[dict[str, Any]]:
        frankston, glen_waverley = 1, 2
        items = [
            self._disruption(
                300001,
                "Minor delays on the Frankston line",
                "Current",
                "Minor Delays",
                [frankston],
                updated=timedelta(minutes=5 * self.version),
            ),
            self._disruption(
                300002,
                "Buses replace trains between Caulfield and Frankston from 9pm",
                "Planned",
                "Planned Works",
                [frankston],
                updated=timedelta(hours=-20),
            ),
        ]
        if self.version >= 2:
            items.append(
                self._disruption(
                    300000 + self.version + 1,
                    f"Lift outage at Richmond (notice {self.version})",
                    "Current",
                    "Service Information",
                    [glen_waverley],
                    updated=timedelta(minutes=-3),
                )
            )
        return items

    def _disruption(
        self,
        did: int,
        title: str,
        status: str,
        kind: str,
        route_ids: list[int],
        *,
        updated: timedelta,
    ) -> dict[str, Any]:
        published = self.base - timedelta(days=1)
        routes = [{**self._route(r), "direction": None} for r in route_ids]
        for r in routes:
            r.pop("geopath", None)
        return {
            "disruption_id": did,
            "title": title,
            "url": f"http://ptv.vic.gov.au/live-travel-updates/article/{did}",
            "description": title + ".",
            "disruption_status": status,
            "disruption_type": kind,
            "published_on": _utc(published),
            "last_updated": _utc(self.base + updated),
            "from_date": _utc(published if status == "Current" else self.base + timedelta(days=3)),
            "to_date": None,
            "routes": routes,
            "stops": [],
            "colour": "#ffd500",
            "display_on_board": True,
            "display_status": status == "Current",
        }

    def departures(self, route_type: int, stop_id: int, limit: int) -> dict[str, Any]:
        station = self._stops.get((route_type, stop_id))
        doc: dict[str, Any] = {
            "departures": [],
            "stops": {},
            "routes": {},
            "runs": {},
            "directions": {},
            "disruptions": {},
            "status": {"version": "3.0", "health": 1},
        }
        if station is None:
            return doc
        doc["stops"][str(stop_id)] = {
            "stop_distance": 0,
            "stop_suburb": station.name,
            "stop_name": station.name,
            "stop_id": stop_id,
            "route_type": route_type,
            "stop_latitude": station.lat,
            "stop_longitude": station.lon,
            "stop_landmark": "",
            "stop_sequence": 0,
        }
        serving = [
            rid
            for rid, (rt, line) in sorted(self._lines.items())
            if rt == route_type and station in line.stations
        ]
        disruptions = {d["disruption_id"]: d for d in self.disruptions()}
        for k in range(limit):
            rid = serving[k % len(serving)]
            line = self._lines[rid][1]
            outbound = (k // len(serving)) % 2 == 0 and station is not line.stations[-1]
            terminus = line.stations[-1] if outbound else line.stations[0]
            direction_id = rid * 10 + (0 if outbound else 1)
            scheduled = self.base + timedelta(minutes=4 + 6 * k)
            delay = timedelta(minutes=(self.version - 1) + k % 2)
            run_ref = f"{rid}-{self.version}{k:03d}-{stop_id}"
            affected = [d for d, item in disruptions.items() if rid in _route_ids(item)]
            doc["departures"].append(
                {
                    "stop_id": stop_id,
                    "route_id": rid,
                    "run_id": -1,
                    "run_ref": run_ref,
                    "direction_id": direction_id,
                    "disruption_ids": affected,
                    "scheduled_departure_utc": _utc(scheduled),
                    "estimated_departure_utc": _utc(scheduled + delay) if k < 3 else None,
                    "at_platform": k == 0,
                    "platform_number": str(1 + direction_id % 2) if route_type != 1 else None,
                    "flags": "",
                    "departure_sequence": 0,
                }
            )
            doc["routes"][str(rid)] = self._route(rid)
            doc["directions"][str(direction_id)] = {
                "direction_id": direction_id,
                "direction_name": line.outbound_headsign if outbound else "City",
                "route_id": rid,
                "route_type": route_type,
            }
            doc["runs"][run_ref] = self._run(run_ref, rid, route_type, direction_id, terminus, k)
            for d in affected:
                doc["disruptions"][str(d)] = disruptions[d]
        return doc

    def _run(
        self, run_ref: str, rid: int, route_type: int, direction_id: int, end: Station, k: int
    ) -> dict[str, Any]:
        final = self.stop_id(route_type, end.code)
        position = None
        if k == 0:
            position = {
                "latitude": end.lat,
                "longitude": end.lon,
                "easting": None,
                "northing": None,
                "direction": None,
                "bearing": 90,
                "supplier": "Standin",
                "datetime_utc": _utc(self.base),
                "expiry_time": _utc(self.base + timedelta(minutes=2)),
            }
        return {
            "run_id": -1,
            "run_ref": run_ref,
            "route_id": rid,
            "route_type": route_type,
            "final_stop_id": final,
            "destination_name": end.name,
            "status": "scheduled",
            "direction_id": direction_id,
            "run_sequence": 0,
            "express_stop_count": 0,
            "vehicle_position": position,
            "vehicle_descriptor": None,
            "geopath": [],
            "interchange": None,
        }


def _route_ids(item: dict[str, Any]) -> set[int]:
    return {r["route_id"] for r in item.get("routes") or []}
