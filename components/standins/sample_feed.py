"""A deterministic small Melbourne-like GTFS feed, published the way Victoria does.

Same version in, byte-identical zip out; each new version adds trips so its hash
differs. Files copy Transport Victoria's quirks: UTF-8 BOM, CRLF, quoted values.
"""

from __future__ import annotations

import io
import itertools
import math
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import UnknownModeError
from .sample_network import NETWORKS, WEEKDAY, Line, ModeNetwork, Station

DEFAULT_MODES: tuple[str, ...] = ("1", "2", "3")

# A fixed timestamp for every zip member: the bytes must not depend on the clock.
ZIP_DATE_TIME = (2025, 7, 1, 0, 0, 0)

CALENDAR_START, CALENDAR_END = "20250101", "20281231"
# Public holidays run the Sunday timetable, as in Victoria.
HOLIDAYS = ("20260126", "20261225", "20270126", "20271225")

AGENCY_COLUMNS = (
    "agency_id",
    "agency_name",
    "agency_url",
    "agency_timezone",
    "agency_lang",
    "agency_fare_url",
)
RAIL_STOP_COLUMNS = (
    "stop_id",
    "stop_name",
    "stop_lat",
    "stop_lon",
    "stop_url",
    "location_type",
    "parent_station",
    "wheelchair_boarding",
    "level_id",
)
ROUTE_COLUMNS = (
    "route_id",
    "agency_id",
    "route_short_name",
    "route_long_name",
    "route_type",
    "route_color",
    "route_text_color",
)
TRIP_COLUMNS = (
    "route_id",
    "service_id",
    "trip_id",
    "shape_id",
    "trip_headsign",
    "direction_id",
    "block_id",
    "wheelchair_accessible",
    "bikes_allowed",
)
STOP_TIME_COLUMNS = (
    "trip_id",
    "arrival_time",
    "departure_time",
    "stop_id",
    "stop_sequence",
    "stop_headsign",
    "pickup_type",
    "drop_off_type",
    "shape_dist_traveled",
)
CALENDAR_COLUMNS = (
    "service_id",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "start_date",
    "end_date",
)
SHAPE_COLUMNS = (
    "shape_id",
    "shape_pt_lat",
    "shape_pt_lon",
    "shape_pt_sequence",
    "shape_dist_traveled",
)

Row = tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class _Platform:
    stop_id: str
    lat: float
    lon: float


def build_zip_of_zips(version: int = 1, modes: Sequence[str] = DEFAULT_MODES) -> bytes:
    """Return Victoria's layout: a zip holding `<mode>/google_transit.zip` per mode."""
    _check_version(version)
    members = {f"{mode}/google_transit.zip": build_mode_feed(mode, version) for mode in modes}
    # Stored, not deflated: the inner zips are compressed already.
    return _zip(members, zipfile.ZIP_STORED)


def build_flat_feed(version: int = 1, mode: str = "2") -> bytes:
    """Return one mode's feed as a flat GTFS zip, as single-feed agencies publish."""
    return build_mode_feed(mode, version)


def build_mode_feed(mode: str, version: int = 1) -> bytes:
    """Return the GTFS zip for one mode folder ("1" regional, "2" metro, "3" tram)."""
    return _zip(feed_files(mode, version), zipfile.ZIP_DEFLATED)


def feed_files(mode: str, version: int = 1) -> dict[str, bytes]:
    """Return the GTFS files of one mode's feed, name to encoded bytes."""
    _check_version(version)
    try:
        network = NETWORKS[mode]
    except KeyError:
        known = ", ".join(sorted(NETWORKS, key=int))
        raise UnknownModeError(
            f"no sample network for mode {mode!r}; known modes: {known}"
        ) from None
    platforms = _platforms(network)
    trips, stop_times, shapes = _schedule(network, platforms, version)
    stop_columns = RAIL_STOP_COLUMNS + (("platform_code",) if network.mode != "1" else ())
    files = {
        # Victoria's agency.txt is the one file without a BOM or a final newline.
        "agency.txt": _csv(AGENCY_COLUMNS, [_agency_row()], bom=False, final_newline=False),
        "calendar.txt": _csv(CALENDAR_COLUMNS, _calendar_rows()),
        "calendar_dates.txt": _csv(("service_id", "date", "exception_type"), _exception_rows()),
        "routes.txt": _csv(ROUTE_COLUMNS, [_route_row(network, line) for line in network.lines]),
        "shapes.txt": _csv(SHAPE_COLUMNS, shapes),
        "stop_times.txt": _csv(STOP_TIME_COLUMNS, stop_times),
        "stops.txt": _csv(stop_columns, _stop_rows(network, platforms, len(stop_columns))),
        "trips.txt": _csv(TRIP_COLUMNS, trips),
    }
    if network.rail:
        files["levels.txt"] = _csv(
            ("level_id", "level_index", "level_name"), [("Level 0", "0", "")]
        )
    return dict(sorted(files.items()))


def trip_stops(mode: str, version: int = 1) -> list[tuple[str, str, list[tuple[int, str, int]]]]:
    """Each trip of one mode's feed: (trip_id, route_id, [(stop_sequence, stop_id, seconds
    after the service day's start)]), for stand-ins whose ids must join this schedule."""
    _check_version(version)
    network = NETWORKS[mode]
    trips, stop_times, _ = _schedule(network, _platforms(network), version)
    stops: dict[str, list[tuple[int, str, int]]] = {}
    for row in stop_times:
        h, m, s = (int(x) for x in str(row[1]).split(":"))
        stops.setdefault(str(row[0]), []).append((int(row[4]), str(row[3]), h * 3600 + m * 60 + s))
    return [(str(t[2]), str(t[0]), stops[str(t[2])]) for t in trips]


def _check_version(version: int) -> None:
    if version < 1:
        raise ValueError(f"feed version must be 1 or more, got {version!r}")


# --- tables ------------------------------------------------------------------------


def _agency_row() -> Row:
    return (
        "1",
        "Transport Victoria",
        "https://transport.vic.gov.au/",
        "Australia/Melbourne",
        "EN",
        "https://transport.vic.gov.au/tickets-and-myki",
    )


def _calendar_rows() -> list[Row]:
    days = {"T0": "1111100", "T2": "0000010", "T3": "0000001"}
    return [(sid, *flags, CALENDAR_START, CALENDAR_END) for sid, flags in days.items()]


def _exception_rows() -> list[Row]:
    rows: list[Row] = [("T0", day, "2") for day in HOLIDAYS]
    rows += [("T3", day, "1") for day in HOLIDAYS]
    return rows


def _route_id(network: ModeNetwork, line: Line) -> str:
    return f"aus:vic:vic-{int(network.mode):02d}-{line.code}:"


def _route_row(network: ModeNetwork, line: Line) -> Row:
    # Victoria leaves routes.agency_id empty: each per-mode feed has one agency.
    return (
        _route_id(network, line),
        "",
        line.short_name,
        line.long_name,
        str(network.route_type),
        line.color,
        line.text_color,
    )


def _stations(network: ModeNetwork) -> list[Station]:
    """Every station once, in order of first appearance (lines share city stations)."""
    seen: dict[str, Station] = {}
    for line in network.lines:
        for station in line.stations:
            seen.setdefault(station.code, station)
    return list(seen.values())


def _platforms(network: ModeNetwork) -> dict[tuple[str, int], _Platform]:
    """Each station has one stop per direction: platform 1 outbound, 2 towards the city."""
    platforms: dict[tuple[str, int], _Platform] = {}
    next_id = network.first_stop_id
    for station in _stations(network):
        for direction, offset in ((0, 0.00004), (1, -0.00004)):
            platforms[station.code, direction] = _Platform(
                stop_id=str(next_id), lat=station.lat + offset, lon=station.lon + offset
            )
            next_id += 1
    return platforms


def _stop_rows(
    network: ModeNetwork, platforms: dict[tuple[str, int], _Platform], width: int
) -> list[Row]:
    rows: list[Row] = []
    for number, station in enumerate(_stations(network), start=1001):
        url = f"https://transport.vic.gov.au/stop/{number}/"
        if not network.rail:
            for direction in (0, 1):
                p = platforms[station.code, direction]
                row = (p.stop_id, station.name, _deg(p.lat), _deg(p.lon), url, "", "", "1", "")
                rows.append((*row, "")[:width])
            continue
        parent_id, name = f"vic:rail:{station.code}", f"{station.name} Station"
        parent = (parent_id, name, _deg(station.lat), _deg(station.lon), "", "1", "", "1", "")
        rows.append((*parent, "")[:width])
        for direction in (0, 1):
            p = platforms[station.code, direction]
            row = (p.stop_id, name, _deg(p.lat), _deg(p.lon), url, "", parent_id, "1", "Level 0")
            rows.append((*row, str(direction + 1))[:width])
    return rows


@dataclass(frozen=True, kw_only=True)
class _Path:
    """The stops one direction of a line calls at, with distances along its shape."""

    shape_id: str
    stops: tuple[_Platform, ...]
    distances: tuple[float, ...]


def _schedule(
    network: ModeNetwork, platforms: dict[tuple[str, int], _Platform], version: int
) -> tuple[list[Row], list[Row], list[Row]]:
    """Build trips, stop_times and shapes; later versions add late weekday trips."""
    trips: list[Row] = []
    stop_times: list[Row] = []
    shapes: list[Row] = []
    for index, line in enumerate(network.lines):
        route_id = _route_id(network, line)
        paths = {direction: _path(network, line, platforms, direction) for direction in (0, 1)}
        for path in paths.values():
            shapes += [
                (path.shape_id, _deg(p.lat), _deg(p.lon), str(seq), f"{d:.2f}")
                for seq, (p, d) in enumerate(zip(path.stops, path.distances, strict=True), 1)
            ]
        runs = [
            (h.service_id, direction, start)
            for h in network.headways
            for direction in (0, 1)
            for start in h.departures()
        ]
        if index == 0:
            # Appended last so the ids of every regular trip stay stable across versions.
            runs += [(WEEKDAY, 0, 22 * 60 + 45 + 10 * k) for k in range(version - 1)]
        for number, (service_id, direction, start) in enumerate(runs, start=1001):
            path = paths[direction]
            trip_id = f"{int(network.mode):02d}-{line.code}--1-{service_id}-{number}"
            headsign = line.outbound_headsign if direction == 0 else network.city_headsign
            trips.append(
                (
                    route_id,
                    service_id,
                    trip_id,
                    path.shape_id,
                    headsign,
                    str(direction),
                    "",
                    "1",
                    "1",
                )
            )
            stop_times += _stop_time_rows(trip_id, path, start, network.speed)
    return trips, stop_times, shapes


def _path(
    network: ModeNetwork, line: Line, platforms: dict[tuple[str, int], _Platform], direction: int
) -> _Path:
    stations = line.stations if direction == 0 else tuple(reversed(line.stations))
    stops = tuple(platforms[s.code, direction] for s in stations)
    # Victoria's shape ids end in .H (outbound from the city) and .R (towards it).
    suffix = "1.H" if direction == 0 else "2.R"
    return _Path(
        shape_id=f"{int(network.mode)}-{line.code}-mjp-1.{suffix}",
        stops=stops,
        distances=tuple(_cumulative_metres(stops)),
    )


def _stop_time_rows(trip_id: str, path: _Path, start: int, speed: float) -> list[Row]:
    rows: list[Row] = []
    minute, previous = start, 0.0
    for seq, (stop, distance) in enumerate(zip(path.stops, path.distances, strict=True), 1):
        # At least a minute per hop, so times strictly increase along the trip.
        minute += 0 if seq == 1 else max(1, round((distance - previous) / speed))
        previous = distance
        time = _hhmmss(minute)
        rows.append((trip_id, time, time, stop.stop_id, str(seq), "", "0", "0", f"{distance:.2f}"))
    return rows


def _cumulative_metres(stops: Sequence[_Platform]) -> list[float]:
    total, out = 0.0, [0.0]
    for a, b in itertools.pairwise(stops):
        total += _haversine_m(a.lat, a.lon, b.lat, b.lon)
        out.append(total)
    return out


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def _hhmmss(minute: int) -> str:
    # Service days may run past midnight, so hours can exceed 23 (e.g. "24:15:00").
    return f"{minute // 60:02d}:{minute % 60:02d}:00"


def _deg(value: float) -> str:
    return f"{value:.8f}"


# --- encoding ----------------------------------------------------------------------


def _csv(
    columns: Sequence[str], rows: Iterable[Row], *, bom: bool = True, final_newline: bool = True
) -> bytes:
    # Victoria quotes every value but not the header, and ends lines with CRLF.
    lines = [",".join(columns)]
    for row in rows:
        if len(row) != len(columns):
            raise AssertionError(f"row {row!r} does not match columns {columns!r}")
        lines.append(",".join('"' + value.replace('"', '""') + '"' for value in row))
    text = "\r\n".join(lines) + ("\r\n" if final_newline else "")
    return ("\ufeff" if bom else "").encode() + text.encode()


def _zip(members: dict[str, bytes], compression: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.compress_type = compression
            # Fixed so the bytes are the same whichever OS builds them.
            info.create_system = 3
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()
