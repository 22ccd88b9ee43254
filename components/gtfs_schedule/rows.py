"""Turns CSV rows of one file into typed SQLite rows plus parse notices.

This is the hot loop of a load (millions of stop_times), so the per-file converter
is generated as straight-line Python for that file's header: no per-cell dispatch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from interlock.components.gtfs_schedule.cells import Padded, clean, java_double, parse_int
from interlock.components.gtfs_schedule.formats import (
    FormatCheck,
    amount_ok,
    currency_ok,
    email_ok,
    timezone_ok,
    url_ok,
)
from interlock.components.gtfs_schedule.langtag import language_ok
from interlock.components.gtfs_schedule.order import OrderTracker
from interlock.components.gtfs_schedule.schema import Bound, Field, Kind, Table
from interlock.components.gtfs_schedule.stoprows import stop_time_checks

# (code, csv_row, field, value) tuples; the loader turns them into Notices.
RawNotice = tuple[str, int, str | None, str | int | float | None]
# (block, last_row_number, out, notices) -> (last_row_number, null_cells); ``out`` gets
# the row values one after another (a flat list: no tuple per row stays alive).
ConvertFn = Callable[[Iterable[list[str]], int, list[object], list[RawNotice]], tuple[int, int]]

# gtfs-validator's GtfsTime pattern (\d{1,3}):(\d\d):(\d\d), ASCII digits: "100:00:00" is a
# time, "1:2:3" is not (the gtfs-guru oracle accepts it; the Java validator does not).
_TIME_RE = re.compile(r"([0-9]{1,3}):([0-5][0-9]):([0-5][0-9])")
_DATE_RE = re.compile(r"[0-9]{8}")
_COLOR_RE = re.compile(r"[0-9A-Fa-f]{6}")
# Text kinds whose format is checked: the notice for a bad value, and the check.
FORMATS: dict[Kind, tuple[str, Callable[[str], bool]]] = {
    Kind.TIMEZONE: ("invalid_timezone", timezone_ok),
    Kind.URL: ("invalid_url", url_ok),
    Kind.EMAIL: ("invalid_email", email_ok),
    Kind.CURRENCY: ("invalid_currency", currency_ok),
    Kind.LANGUAGE: ("invalid_language_code", language_ok),
}
# Bounded so that memory stays flat however varied a feed's values are: real feeds
# repeat a few thousand times and dates, so the hit rate barely suffers.
_MAX_CACHE = 16_384


def parse_time(v: str) -> tuple[str, int] | None:
    m = _TIME_RE.fullmatch(v)
    if m is None:
        return None
    h, mi, s = int(m[1]), int(m[2]), int(m[3])
    return f"{h:02d}:{mi:02d}:{s:02d}", h * 3600 + mi * 60 + s


def parse_date(v: str) -> str | None:
    if not _DATE_RE.fullmatch(v):
        return None
    try:
        date(int(v[:4]), int(v[4:6]), int(v[6:]))
    except ValueError:
        return None
    return v


class Caches:
    """Memo tables for values that repeat across millions of rows (times, small ints).

    Bounded so that memory does not grow with the feed however varied its values.
    """

    def __init__(self) -> None:
        self.ints: dict[str, int] = {str(i): i for i in range(10_000)}
        self.times: dict[str, tuple[str, int]] = {}
        self.dates: dict[str, str] = {}
        self.colors: dict[str, str] = {}
        self.formats = {kind: FormatCheck(test) for kind, (_, test) in FORMATS.items()}

    def time(self, v: str) -> tuple[str, int] | None:
        t = parse_time(v)
        if t is not None and len(self.times) < _MAX_CACHE:
            self.times[v] = t
        return t

    def date(self, v: str) -> str | None:
        d = parse_date(v)
        if d is not None and len(self.dates) < _MAX_CACHE:
            self.dates[v] = d
        return d

    def color(self, v: str) -> str | None:
        if not _COLOR_RE.fullmatch(v):
            return None
        if len(self.colors) < _MAX_CACHE:
            self.colors[v] = v
        return v


@dataclass(frozen=True, slots=True)
class Converter:
    """A generated converter and the SQL columns its output tuples fill, in order."""

    columns: tuple[str, ...]
    required_fields: int
    convert: ConvertFn
    # The same, trimming each value and reporting the whitespace or newline it held.
    convert_clean: ConvertFn

    def run(
        self, block: Iterable[list[str]], rowno: int, out: list[object], notices: list[RawNotice]
    ) -> tuple[int, int]:
        """Convert ``block``, through :attr:`convert_clean` when it is :class:`.cells.Padded`."""
        if type(block) is Padded:
            return self.convert_clean(block, rowno, out, notices)
        return self.convert(block, rowno, out, notices)


def _cell(f: Field, src: str, out: str) -> list[str]:
    """Source lines that parse variable ``src`` into ``out`` (and ``out_s`` for times)."""
    name = repr(f.name)
    miss = [f"{out} = None"]
    if f.required:
        miss += ["nulls += 1", f"bad(('missing_required_field', rowno, {name}, ''))"]

    # Like the gtfs-guru oracle: a value that does not parse drops its row, while a
    # parsed value out of range is reported and kept. ``drop`` names the dropped row
    # so that it needs no reset per row.
    def invalid(code: str) -> list[str]:
        return [f"bad(({code!r}, rowno, {name}, v))", "drop = rowno"]

    def out_of_range() -> list[str]:
        return [f"bad(('number_out_of_range', rowno, {name}, v))"]

    if f.kind is Kind.TEXT:
        if not f.required:
            return [f"{out} = {src} or None"]
        return [f"{out} = {src}", f"if not {out}:", *("    " + s for s in miss)]
    if f.kind in FORMATS:
        # Like gtfs-guru, a value of the wrong format is reported and its row kept.
        k = f.kind.name.lower()
        code = FORMATS[f.kind][0]
        return [
            f"{out} = {src}",
            f"if {out}:",
            f"    if {out} not in ok_{k} and not check_{k}({out}):",
            f"        bad(({code!r}, rowno, {name}, {out}))",
            "else:",
            *("    " + s for s in miss),
        ]
    lines = [f"v = {src}", "if v:"]
    body: list[str]
    if f.kind is Kind.INTEGER:
        body = [f"{out} = iget(v)", f"if {out} is None:", f"    {out} = parse_int(v)"]
        body += [f"if {out} is None:", *("    " + s for s in invalid("invalid_integer"))]
    elif f.kind in (Kind.FLOAT, Kind.LATITUDE, Kind.LONGITUDE):
        # Inline rather than a call per cell. float() accepts "nan", "inf", "1_0" and
        # "٣", which Java's Double.parseDouble refuses; it refuses "1d" and "0x1p3",
        # which Java reads. Those (rare) values take the Java grammar instead.
        body = ["try:", f"    {out} = float(v)", "except ValueError:", f"    {out} = jdouble(v)"]
        body += ["else:", f"    if {out} - {out} != 0.0 or '_' in v or not v.isascii():"]
        body += [f"        {out} = jdouble(v)", f"if {out} is None:"]
        body += ["    " + s for s in invalid("invalid_float")]
    elif f.kind is Kind.TIME:
        body = ["t = tget(v) or ctime(v)", "if t is None:"]
        body += ["    " + s for s in invalid("invalid_time")]
        body += ["else:", f"    {out}, {out}_s = t"]
    elif f.kind is Kind.DATE:
        body = [f"{out} = dget(v) or cdate(v)", f"if {out} is None:"]
        body += ["    " + s for s in invalid("invalid_date")]
    else:
        body = [f"{out} = cget(v) or ccolor(v)", f"if {out} is None:"]
        body += ["    " + s for s in invalid("invalid_color")]
    limit = {Kind.LATITUDE: 90.0, Kind.LONGITUDE: 180.0}.get(f.kind)
    if limit is not None:
        body += [f"elif not -{limit} <= {out} <= {limit}:"]
        body += ["    " + s for s in out_of_range()]
    elif f.bound is not Bound.NONE:
        op = "<" if f.bound is Bound.NON_NEGATIVE else "<="
        body += [f"elif {out} {op} 0:"]
        body += ["    " + s for s in out_of_range()]
    lines += ["    " + s for s in body]
    lines += ["else:", *("    " + s for s in miss)]
    if f.kind is Kind.TIME:
        lines.append(f"    {out}_s = None")
    return lines


def build_converter(
    table: Table,
    header: list[str],
    *,
    mode: str | None,
    rowid_base: int,
    caches: Caches,
    order: OrderTracker | None = None,
) -> Converter:
    """Generate the converter for ``table`` given the file's actual ``header``.

    Columns absent from the header are left out (SQLite fills NULL); columns not in
    the spec are ignored. ``rowid_base + csv_row`` becomes the rowid so that notices
    found later by SQL can cite the CSV row. With ``order`` (stop_times only), kept
    rows also feed its streaming stop-time order check.
    """
    args = (table, header, mode, rowid_base, caches, order)
    plain = _generate(*args, cleaning=False)
    columns, required, convert = plain
    return Converter(columns, required, convert, _generate(*args, cleaning=True)[2])


def _generate(
    table: Table,
    header: list[str],
    mode: str | None,
    rowid_base: int,
    caches: Caches,
    order: OrderTracker | None,
    *,
    cleaning: bool,
) -> tuple[tuple[str, ...], int, ConvertFn]:
    positions: dict[str, int] = {}
    for i, name in enumerate(header):
        positions.setdefault(name, i)
    present = [(f, positions[f.name]) for f in table.fields if f.name in positions]
    used = {idx for _, idx in present}
    columns: list[str] = ["rowid"] + (["mode"] if mode is not None else [])
    values: list[str] = [f"rowno + {rowid_base}"] + (["mode"] if mode is not None else [])
    body: list[str] = []
    variables: dict[str, str] = {}
    for k, (f, idx) in enumerate(present):
        var = f"c{k}"
        variables[f.name] = var
        if cleaning:
            x = f"x{idx}"
            body += [
                f"if {x} and ({x}[0] <= ' ' or {x}[-1] <= ' ' or '\\n' in {x} or '\\r' in {x}"
                f" or '\\ufffd' in {x}):"
            ]
            body += [f"    {x} = clean({x}, rowno, {f.name!r}, bad)"]
        body += _cell(f, f"x{idx}", var)
        columns.append(f.name)
        values.append(var)
        if f.kind is Kind.TIME:
            columns.append(f"{f.name}_secs")
            values.append(f"{var}_s")
            variables[f"{f.name}_secs"] = f"{var}_s"
    # One unpacking instead of a subscript per cell; unused columns go to "_".
    unpack = ", ".join(f"x{i}" if i in used else "_" for i in range(len(header)))
    tracked = order.source(variables) if order is not None else ([], [], [])
    checks = stop_time_checks(variables) if table.name == "stop_times" else []
    if table.name == "fare_products" and "amount" in positions and "currency" in variables:
        raw, currency = f"x{positions['amount']}", variables["currency"]
        checks = [
            f"if {variables['amount']} is not None and not amount_ok({raw}, {currency}):",
            f"    bad(('invalid_currency_amount', rowno, 'amount', {raw}))",
        ]
    src = [
        "def convert(block, rowno, out, notices):",
        "    bad = notices.append",
        "    add = out.extend",
        "    nulls = 0",
        "    drop = -1",
        *("    " + s for s in tracked[0]),
        # Blocks hold no blank lines: gtfs-validator skips them without counting.
        "    for rowno, r in enumerate(block, rowno + 1):",
        f"        if len(r) != {len(header)}:",
        "            bad(('invalid_row_length', rowno, None, len(r)))",
        "            continue",
        f"        {unpack}, = r",
        *("        " + s for s in body),
        "        if drop == rowno:",
        "            continue",
        *("        " + s for s in checks),
        *("        " + s for s in tracked[1]),
        f"        add(({', '.join(values)},))",  # flat: the writer slices rows back out
        *("    " + s for s in tracked[2]),
        "    return rowno, nulls",
    ]
    namespace: dict[str, object] = {
        "mode": mode,
        "order": order,
        "iget": caches.ints.get,
        "parse_int": parse_int,
        "jdouble": java_double,
        "amount_ok": amount_ok,
        **{f"ok_{k.name.lower()}": c.valid for k, c in caches.formats.items()},
        **{f"check_{k.name.lower()}": c for k, c in caches.formats.items()},
        "clean": clean,
        "tget": caches.times.get,
        "ctime": caches.time,
        "dget": caches.dates.get,
        "cdate": caches.date,
        "cget": caches.colors.get,
        "ccolor": caches.color,
    }
    # The source is built only from spec field names and integers, never from feed data.
    exec(compile("\n".join(src), f"<gtfs converter {table.name}>", "exec"), namespace)
    convert = namespace["convert"]
    assert callable(convert)
    required = sum(1 for f, _ in present if f.required)
    return tuple(columns), required, convert
