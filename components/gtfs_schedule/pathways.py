"""gtfs-validator's pathway_unreachable_location: inside a station that has pathways,
every platform, generic node and boarding area must be reachable from an entrance and
must reach one (entrances are exits too).

Pathways and stops are small tables, so each mode's graph is walked in memory; the
big tables are not read.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable, Sequence

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook
from interlock.components.gtfs_schedule.rules import modes_parsed
from interlock.components.gtfs_schedule.validate import ROWID_BITS, FeedFiles

CODE = "pathway_unreachable_location"
_ROW_MASK = (1 << ROWID_BITS) - 1
_PLATFORM, _ENTRANCE, _NODE, _BOARDING = 0, 2, 3, 4


def _walk(starts: Iterable[str], edges: dict[str, list[str]]) -> set[str]:
    seen = set(starts)
    todo = list(seen)
    while todo:
        for nxt in edges.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def check_pathways(conn: sqlite3.Connection, feeds: Sequence[FeedFiles], book: NoticeBook) -> None:
    """One notice per unreachable location, in stops.txt row order, per mode."""
    moded = bool(feeds) and feeds[0].mode is not None
    for mode in sorted(modes_parsed(book, feeds, ("stops", "pathways")), key=str):
        where = "WHERE mode IS ?" if moded else ""
        args = (mode,) if moded else ()
        forward: dict[str, list[str]] = defaultdict(list)
        backward: dict[str, list[str]] = defaultdict(list)
        sql = f"SELECT from_stop_id, to_stop_id, is_bidirectional FROM pathways {where}"
        for a, b, both in conn.execute(sql, args):
            if a is None or b is None:
                continue
            forward[a].append(b)
            backward[b].append(a)
            if both == 1:
                forward[b].append(a)
                backward[a].append(b)
        if not forward:
            continue
        stops: dict[str, tuple[int, int, str | None]] = {}
        sql = (
            f"SELECT rowid, stop_id, coalesce(location_type, 0), parent_station FROM stops {where}"
        )
        for rowid, stop_id, kind, parent in conn.execute(sql, args):
            stops.setdefault(stop_id, (rowid, kind, parent))
        _report(stops, forward, backward, mode, book)


def _report(
    stops: dict[str, tuple[int, int, str | None]],
    forward: dict[str, list[str]],
    backward: dict[str, list[str]],
    mode: str | None,
    book: NoticeBook,
) -> None:
    def station(stop_id: str) -> str | None:
        _, kind, parent = stops[stop_id]
        if kind == _BOARDING and parent in stops:
            return stops[parent][2]
        return parent

    with_pathways = {station(s) for s in (*forward, *backward) if s in stops} - {None}
    with_boarding = {p for _, kind, p in stops.values() if kind == _BOARDING}
    entrances = [s for s, (_, kind, _) in stops.items() if kind == _ENTRANCE]
    from_entrance = _walk(entrances, forward)
    to_exit = _walk(entrances, backward)
    found = []
    for stop_id, (rowid, kind, _) in stops.items():
        if kind not in (_PLATFORM, _NODE, _BOARDING) or station(stop_id) not in with_pathways:
            continue
        if kind == _PLATFORM and stop_id in with_boarding:
            continue  # its boarding areas are checked instead
        if stop_id not in from_entrance or stop_id not in to_exit:
            found.append((rowid, stop_id))
    for rowid, stop_id in sorted(found):
        book.add(Notice(CODE, "stops.txt", rowid & _ROW_MASK, "stop_id", stop_id, mode))
