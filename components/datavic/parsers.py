"""Station and temporal patronage tables from cleaned CSVs, with header variants accepted.

Each parser maps the header (normalised, with the aliases seen between years) to
canonical typed columns, skips rows it cannot read (each one an error notice for
the ``schema_validation`` rule), and counts what the quality rules measure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interlock.components.datavic.csvclean import Table, number
from interlock.errors import ValidationFailedError

PAX = (
    "pax_annual",
    "pax_weekday",
    "pax_norm_weekday",
    "pax_sch_hol_weekday",
    "pax_saturday",
    "pax_sunday",
    "pax_pre_am_peak",
    "pax_am_peak",
    "pax_interpeak",
    "pax_pm_peak",
    "pax_pm_late",
)
STATION_ALIASES: dict[str, tuple[str, ...]] = {
    "fin_year": ("fin_year", "financial_year", "finyear", "fy"),
    "stop_id": ("stop_id", "stopid", "station_id"),
    "stop_name": ("stop_name", "station_name", "station"),
    "stop_lat": ("stop_lat", "latitude", "lat"),
    "stop_long": ("stop_long", "stop_lon", "longitude", "lon", "long"),
    "pax_annual": ("pax_annual", "annual_pax", "pax_total_annual"),
    "pax_weekday": ("pax_weekday", "pax_avg_weekday"),
    "pax_norm_weekday": ("pax_norm_weekday", "pax_normal_weekday"),
    "pax_sch_hol_weekday": ("pax_sch_hol_weekday", "pax_school_holiday_weekday"),
    "pax_saturday": ("pax_saturday", "pax_sat"),
    "pax_sunday": ("pax_sunday", "pax_sun"),
    "pax_pre_am_peak": ("pax_pre_am_peak",),
    "pax_am_peak": ("pax_am_peak",),
    "pax_interpeak": ("pax_interpeak", "pax_inter_peak"),
    "pax_pm_peak": ("pax_pm_peak",),
    "pax_pm_late": ("pax_pm_late",),
}
STATION_REQUIRED = ("stop_id", "stop_name", "pax_annual")
STATION_COLUMNS = (
    ("fin_year", "TEXT NOT NULL"),
    ("fin_year_start", "INTEGER"),
    ("stop_id", "TEXT NOT NULL"),
    ("stop_name", "TEXT NOT NULL"),
    ("stop_lat", "REAL"),
    ("stop_long", "REAL"),
    *((p, "INTEGER") for p in PAX),
    ("resource", "TEXT NOT NULL"),
)
TEMPORAL_ALIASES: dict[str, tuple[str, ...]] = {
    "year": ("year", "calendar_year"),
    "month": ("month", "month_number", "month_num"),
    "month_name": ("month_name",),
    "day_of_week": ("day_of_week", "dayofweek", "day"),
    "day_type": ("day_type", "daytype"),
    "mode": ("mode", "transport_mode"),
    "pax_daily": ("pax_daily", "average_daily_patronage", "patronage"),
}
_FY = re.compile(r"(?:fy\s*)?(20\d\d|\d\d)\s*[-_/ ]\s*(\d\d|20\d\d)", re.IGNORECASE)


@dataclass
class Parsed:
    """One table's typed rows and what the quality rules read."""

    table: str
    columns: Sequence[tuple[str, str]]
    key: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    checked_cells: int = 0
    null_cells: int = 0
    problems: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    not_rounded_to_50: int = 0
    junk_rows: int = 0

    def problem(self, code: str, detail: str) -> None:
        self.problems[code] += 1
        if len(self.examples) < 10:
            self.examples.append(f"{code}: {detail}")

    def reject_nul_rows(self, table: Table, label: str) -> None:
        """One ``nul_character`` problem per row :func:`.csvclean.read_table` rejected."""
        for line in table.nul_lines:
            self.problem("nul_character", f"{label} line {line}: a value holds a NUL byte")

    def duplicates(self) -> int:
        idx = [i for i, (name, _) in enumerate(self.columns) if name in self.key]
        keys = Counter(tuple(r[i] for i in idx) for r in self.rows)
        return sum(n - 1 for n in keys.values())


def fin_year_start(text: str) -> int | None:
    """``"FY22-23"``, ``"2022-23"`` or ``"2022-2023"`` -> 2022."""
    m = _FY.search(text)
    if not m:
        return None
    first = int(m.group(1))
    return first if first >= 2000 else 2000 + first


def _columns(table: Table, aliases: dict[str, tuple[str, ...]], label: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for canonical, names in aliases.items():
        for name in names:
            if name in table.header:
                found[canonical] = table.header.index(name)
                break
    return found


def _missing(label: str, table: Table, missing: list[str]) -> ValidationFailedError:
    message = (
        f"{label} lacks the required column(s) {', '.join(missing)}; its header is "
        f"{table.raw_header!r}. The publisher may have changed the file's layout"
    )
    return ValidationFailedError(message, report={"error": message, "header": table.raw_header})


def _int_or_problem(parsed: Parsed, text: str, where: str) -> tuple[bool, int | None]:
    try:
        value = number(text)
    except ValueError as exc:
        parsed.problem("bad_number", f"{where}: {exc}")
        return False, None
    if isinstance(value, float):
        if not value.is_integer():
            parsed.problem("bad_number", f"{where}: {text!r} is not a whole number")
            return False, None
        value = int(value)
    return True, value


def parse_stations(parsed: Parsed | None, table: Table, label: str, resource: str) -> Parsed:
    """Add the station rows of one resource (a financial year) to ``parsed``."""
    out = parsed or Parsed(
        table="station_patronage", columns=STATION_COLUMNS, key=("fin_year", "stop_id")
    )
    cols = _columns(table, STATION_ALIASES, label)
    missing = [c for c in STATION_REQUIRED if c not in cols]
    year_from_name = fin_year_start(resource)
    if "fin_year" not in cols and year_from_name is None:
        missing.insert(0, "fin_year (and the resource name has no year)")
    if missing:
        raise _missing(label, table, missing)
    out.junk_rows += table.junk_rows
    out.reject_nul_rows(table, label)
    for line, cells in table.rows:
        where = f"{label} line {line}"

        def cell(name: str, cells: list[str] = cells) -> str:
            return cells[cols[name]] if name in cols else ""

        required = [cell(c) for c in STATION_REQUIRED]
        out.checked_cells += len(required)
        out.null_cells += sum(1 for v in required if not v)
        if not cell("stop_id") or not cell("stop_name"):
            out.problem("missing_station", f"{where}: no stop id or name")
            continue
        fin_year = cell("fin_year") or (
            f"FY{year_from_name % 100:02d}-{(year_from_name + 1) % 100:02d}"
            if year_from_name
            else ""
        )
        ok = True
        coords: list[float | None] = []
        for c in ("stop_lat", "stop_long"):
            try:
                v = number(cell(c))
                coords.append(None if v is None else float(v))
            except ValueError as exc:
                out.problem("bad_coordinate", f"{where}: {exc}")
                ok = False
        pax: list[int | None] = []
        for p in PAX:
            good, value = _int_or_problem(out, cell(p), f"{where} {p}")
            ok = ok and good
            if value is not None and value % 50:
                out.not_rounded_to_50 += 1
            pax.append(value)
        if not ok:
            continue
        stop_id = cell("stop_id")
        stop_id = stop_id[:-2] if stop_id.endswith(".0") else stop_id
        out.rows.append(
            (
                fin_year,
                fin_year_start(fin_year) or year_from_name,
                stop_id,
                cell("stop_name"),
                *coords,
                *pax,
                resource,
            )
        )
    return out


def parse_temporal(parsed: Parsed | None, table: Table, label: str, resource: str) -> Parsed:
    """Monthly patronage: the long layout by day type and mode, or the wide one by mode."""
    cols = _columns(table, TEMPORAL_ALIASES, label)
    if "year" not in cols or "month" not in cols:
        raise _missing(label, table, [c for c in ("year", "month") if c not in cols])
    long_layout = {"day_type", "mode", "pax_daily"} <= cols.keys()
    if parsed is None:
        parsed = _temporal_parsed(long_layout)
    elif (parsed.table == "daily_average_patronage") != long_layout:
        raise ValidationFailedError(
            f"{label} is laid out differently from the dataset's other resources; choose "
            "resources of one layout",
            report={"error": "mixed layouts", "header": table.raw_header},
        )
    parsed.junk_rows += table.junk_rows
    parsed.reject_nul_rows(table, label)
    used = {cols[c] for c in ("year", "month", "month_name") if c in cols}
    modes = [(i, raw) for i, raw in enumerate(table.raw_header) if i not in used]
    if not long_layout and not modes:
        raise _missing(label, table, ["day_type, mode, pax_daily (or one column per mode)"])
    for line, cells in table.rows:
        where = f"{label} line {line}"
        ok_y, year = _int_or_problem(parsed, cells[cols["year"]], f"{where} year")
        ok_m, month = _int_or_problem(parsed, cells[cols["month"]], f"{where} month")
        if not (ok_y and ok_m) or year is None or month is None or not 1 <= month <= 12:
            parsed.problem("bad_month", f"{where}: year {year!r} month {month!r}")
            continue
        name = cells[cols["month_name"]] if "month_name" in cols else None
        if long_layout:
            keys = [cells[cols[c]] for c in ("day_of_week", "day_type", "mode") if c in cols]
            parsed.checked_cells += len(keys) + 1
            parsed.null_cells += sum(1 for k in keys if not k)
            ok, pax = _int_or_problem(parsed, cells[cols["pax_daily"]], f"{where} pax_daily")
            parsed.null_cells += pax is None
            if not ok:
                continue
            parsed.not_rounded_to_50 += bool(pax and pax % 50)
            dow = cells[cols["day_of_week"]] if "day_of_week" in cols else None
            parsed.rows.append(
                (year, month, name, dow, cells[cols["day_type"]], cells[cols["mode"]], pax)
            )
            continue
        for i, mode in modes:
            parsed.checked_cells += 1
            ok, pax = _int_or_problem(parsed, cells[i], f"{where} {mode}")
            parsed.null_cells += pax is None
            if ok:
                parsed.rows.append((year, month, name, mode, pax))
    return parsed


def _temporal_parsed(long_layout: bool) -> Parsed:
    if long_layout:
        return Parsed(
            table="daily_average_patronage",
            columns=(
                ("year", "INTEGER NOT NULL"),
                ("month", "INTEGER NOT NULL"),
                ("month_name", "TEXT"),
                ("day_of_week", "TEXT"),
                ("day_type", "TEXT NOT NULL"),
                ("mode", "TEXT NOT NULL"),
                ("pax_daily", "INTEGER"),
            ),
            key=("year", "month", "day_of_week", "day_type", "mode"),
        )
    return Parsed(
        table="monthly_patronage",
        columns=(
            ("year", "INTEGER NOT NULL"),
            ("month", "INTEGER NOT NULL"),
            ("month_name", "TEXT"),
            ("mode", "TEXT NOT NULL"),
            ("patronage", "INTEGER"),
        ),
        key=("year", "month", "mode"),
    )
