"""Generated Data Vic patronage CSVs with the real files' quirks.

A UTF-8 BOM, CRLF line ends, numbers with thousands separators inside quotes,
values rounded to 50 (and never below 50), trailing rows of empty cells and a
footnote, and header variants between financial years. Station ids are the PTV
stop numbers the sample GTFS feed carries in its stop URLs, so they join.
"""

from __future__ import annotations

import csv
import io
import random

from .sample_network import NETWORKS, Station

STATION_HEADERS = {
    # The newest layout, as Data Vic publishes it now.
    "current": [
        "Fin_year", "Stop_ID", "Stop_name", "Stop_lat", "Stop_long", "Pax_annual",
        "Pax_weekday", "Pax_norm_weekday", "Pax_sch_hol_weekday", "Pax_Saturday",
        "Pax_Sunday", "Pax_pre_AM_peak", "Pax_AM_peak", "Pax_interpeak", "Pax_PM_peak",
        "Pax_PM_late",
    ],
    # An older year: other capitals, Stop_Lon.
    "older": [
        "Fin_Year", "Stop_Id", "Stop_Name", "Stop_Lat", "Stop_Lon", "Pax_Annual",
        "Pax_Weekday", "Pax_Norm_Weekday", "Pax_Sch_Hol_Weekday", "Pax_Saturday",
        "Pax_Sunday", "Pax_Pre_AM_Peak", "Pax_AM_Peak", "Pax_Interpeak", "Pax_PM_Peak",
        "Pax_PM_Late",
    ],
    # The oldest: no year column (the year is only in the resource's name).
    "oldest": [
        "Stop_ID", "Station", "Latitude", "Longitude", "Pax_annual", "Pax_weekday",
        "Pax_norm_weekday", "Pax_sch_hol_weekday", "Pax_Saturday", "Pax_Sunday",
        "Pax_pre_AM_peak", "Pax_AM_peak", "Pax_interpeak", "Pax_PM_peak", "Pax_PM_late",
    ],
}  # fmt: skip
# Stations with entries but no stop in the sample GTFS feed: they do not join.
EXTRA_STATIONS = [
    (1186, "Stony Point", -38.3735, 145.2215),
    (1074, "Flemington Racecourse", -37.7878, 144.9077),
]
MODES = ["MetroTrain", "Tram", "MetroBus", "RegionalTrain", "RegionalBus"]
MODE_SCALE = {"MetroTrain": 600_000, "Tram": 550_000, "MetroBus": 330_000}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = "January February March April May June July August September October November December"
SCHOOL_HOLIDAY_MONTHS = {1, 4, 7, 9, 12}


def round50(value: float) -> int:
    """As Data Vic rounds: to the nearest 50, and values under 50 up to 50."""
    return max(50, round(value / 50.0) * 50)


def fmt(value: int) -> str:
    return f"{value:,}"


def metro_stations() -> list[tuple[int, str, float, float]]:
    """(PTV stop number, name, lat, lon): the sample feed's metro stations, then extras."""
    seen: dict[str, Station] = {}
    for line in NETWORKS["2"].lines:
        for station in line.stations:
            seen.setdefault(station.code, station)
    out = [(1001 + i, s.name, s.lat, s.lon) for i, s in enumerate(seen.values())]
    return out + EXTRA_STATIONS


def _csv(rows: list[list[str]], junk: int) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(rows)
    width = len(rows[0])
    for _ in range(junk):
        writer.writerow([""] * width)
    note = "Note: patronage estimates are rounded to the nearest 50."
    writer.writerow([note] + [""] * (width - 1))
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def station_csv(start_year: int, layout: str, version: int) -> bytes:
    """Annual station entries for the financial year starting ``start_year``."""
    header = STATION_HEADERS[layout]
    fy = f"FY{start_year % 100:02d}-{(start_year + 1) % 100:02d}"
    rows: list[list[str]] = [header]
    for stop_id, name, lat, lon in metro_stations():
        rng = random.Random(f"{stop_id}:{start_year}:{version}")
        weekday = rng.uniform(40, 60_000) if stop_id > 1001 else 61_800.0
        bands = [weekday * f for f in (0.05, 0.3, 0.3, 0.25, 0.1)]
        values = [
            round50(weekday * 300),
            round50(weekday),
            round50(weekday * 1.02),
            round50(weekday * 0.9),
            round50(weekday * 0.7),
            round50(weekday * 0.5),
            *(round50(b) for b in bands),
        ]
        cells = [str(stop_id), name, f"{lat:.6f}", f"{lon:.6f}", *(fmt(v) for v in values)]
        rows.append(cells if layout == "oldest" else [fy, *cells])
    return _csv(rows, junk=3)


def temporal_csv(months: int, version: int) -> bytes:
    """Monthly average patronage by day type and by mode, from January 2023."""
    header = ["Year", "Month", "Month_name", "Day_of_week", "Day_type", "Mode", "Pax_daily"]
    rows: list[list[str]] = [header]
    names = MONTHS.split()
    for n in range(months):
        year, month = 2023 + n // 12, n % 12 + 1
        combos = [(d, "Normal Weekday") for d in WEEKDAYS]
        if month in SCHOOL_HOLIDAY_MONTHS:
            combos += [(d, "School Holiday Weekday") for d in WEEKDAYS]
        combos += [("Saturday", "Weekend"), ("Sunday", "Weekend")]
        for day, day_type in combos:
            for mode in MODES:
                rng = random.Random(f"{year}-{month}:{day}:{day_type}:{mode}:{version}")
                base = MODE_SCALE.get(mode, 30_000) * (0.55 if day_type == "Weekend" else 1.0)
                pax = round50(base * rng.uniform(0.85, 1.1))
                when = [str(year), str(month), names[month - 1]]
                rows.append([*when, day, day_type, mode, fmt(pax)])
    return _csv(rows, junk=12)
