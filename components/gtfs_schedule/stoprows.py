"""Generated converter lines for gtfs-validator's checks of one stop_times row on its
own, run as each row streams past (see :mod:`.rows`).

``variables`` maps a column (and ``<time column>_secs``) to the converter variable
holding the row's value; a column the file lacks reads as None.
"""

from __future__ import annotations


def stop_time_checks(variables: dict[str, str]) -> list[str]:
    """Converter lines for gtfs-validator's checks of one stop_times row on its own: an
    arrival after the departure, and one of the two times without the other."""
    arr, dep = variables.get("arrival_time", "None"), variables.get("departure_time", "None")
    arr_s = variables.get("arrival_time_secs", "None")
    dep_s = variables.get("departure_time_secs", "None")
    only = "'stop_time_with_only_arrival_or_departure_time'"
    # Both times present (the usual row) costs two tests and one comparison.
    lines = [
        f"if {arr_s} is None or {dep_s} is None:",
        f"    if ({arr} is None) != ({dep} is None):",
        f"        if {arr} is None:",
        f"            bad(({only}, rowno, 'departure_time', {dep}))",
        "        else:",
        f"            bad(({only}, rowno, 'arrival_time', {arr}))",
        f"elif {arr_s} > {dep_s}:",
        f"    bad(('start_and_end_range_out_of_order', rowno, 'arrival_time', {arr}))",
    ]
    timepoint = variables.get("timepoint")
    if timepoint is not None:
        code = "'stop_time_timepoint_without_times'"
        lines += [
            f"if {timepoint} == 1:",
            f"    if {arr} is None:",
            f"        bad(({code}, rowno, 'arrival_time', None))",
            f"    if {dep} is None:",
            f"        bad(({code}, rowno, 'departure_time', None))",
        ]
    return lines + _flex_checks(variables)


def _flex_checks(variables: dict[str, str]) -> list[str]:
    """Converter lines for the flexible-service rules of one stop_times row, generated
    only when the file has those columns (so a fixed-route feed pays nothing)."""
    get = variables.get
    lines: list[str] = []
    places = [get(f, "None") for f in ("stop_id", "location_group_id", "location_id")]
    if places[1:] != ["None", "None"]:
        lines += [
            f"if ({' is not None) + ('.join(places)} is not None) > 1:",
            f"    bad(('forbidden_geography_id', rowno, 'stop_id', {places[0]}))",
        ]
    start, end = get("start_pickup_drop_off_window"), get("end_pickup_drop_off_window")
    if start is None and end is None:
        return lines
    start, end = start or "None", end or "None"
    start_s = get("start_pickup_drop_off_window_secs", "None")
    end_s = get("end_pickup_drop_off_window_secs", "None")
    arr, dep = get("arrival_time", "None"), get("departure_time", "None")
    field = "'start_pickup_drop_off_window'"
    pickup, drop = get("pickup_type", "None"), get("drop_off_type", "None")
    return [
        *lines,
        f"if {start} is not None or {end} is not None:",
        f"    if {arr} is not None or {dep} is not None:",
        "        bad(('forbidden_arrival_or_departure_time', rowno, 'arrival_time', "
        f"{arr} or {dep}))",
        f"    if {start} is None or {end} is None:",
        f"        bad(('missing_pickup_or_drop_off_window', rowno, {field}, {start} or {end}))",
        f"    elif {start_s} >= {end_s}:",
        f"        bad(('invalid_pickup_drop_off_window', rowno, {field}, {start}))",
        f"    if {pickup} in (None, 0, 3):",
        f"        bad(('forbidden_pickup_type', rowno, 'pickup_type', {pickup}))",
        f"    if {drop} in (None, 0):",
        f"        bad(('forbidden_drop_off_type', rowno, 'drop_off_type', {drop}))",
    ]
