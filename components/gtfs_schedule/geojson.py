"""Reads GTFS-Flex's ``locations.geojson`` as MobilityData's gtfs-validator reads it
(``GeoJsonFileLoader``), with the same notices: ``malformed_json``,
``geo_json_duplicated_element``, ``missing_required_element``,
``unsupported_geo_json_type``, ``unsupported_feature_type``,
``unsupported_geometry_type``, ``invalid_geometry``, ``duplicate_geo_json_key`` and
``point_near_origin`` / ``point_near_pole`` for its points.

The file is small (zones, not timetables) so it is read whole; its features' ids go
into a TEMP table for the SQL rules of :mod:`.georules`, and their polygons stay here.
Like Java, a structure it cannot follow (coordinates that are not arrays of numbers,
which includes every MultiPolygon: Java's point check reads them one level too
shallow) makes the file unparsable without a notice, and an unparsable file is not
used by the rules that read it. Polygons are checked with GEOS (shapely), the C++
port of the JTS library Java uses, so validity and overlap mean the same.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from interlock.components.gtfs_schedule.notices import Notice, NoticeBook

FILENAME = "locations.geojson"


@dataclass(slots=True)
class Locations:
    """One feed's (mode's) locations.geojson as loaded: ``ok`` is False when it did not
    parse (rules that read it are skipped); ``shapes`` maps ids to valid polygons."""

    ok: bool = True
    ids: list[tuple[str, int]] = field(default_factory=list)  # (id, feature index)
    shapes: dict[str, Any] = field(default_factory=dict)


class _Unparsable(Exception):
    """What gtfs-validator's loader meets as an exception: the file is unparsable."""


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _text(value: Any) -> str:
    """Gson's getAsString: a string or a number; anything else throws."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Unparsable
    return str(value)


def load_locations(raw: bytes, mode: str | None, book: NoticeBook) -> Locations:
    """Parse ``raw`` (the file's bytes), adding the notices gtfs-validator gives."""
    out = Locations()

    def add(code: str, value: str | int | None = None, field_name: str | None = None) -> None:
        book.add(Notice(code, FILENAME, None, field_name, value, mode))

    try:
        root = json.loads(raw.decode("utf-8", "replace"), object_pairs_hook=_pairs)
    except _DuplicateKey as dup:
        # Java catches this after parsing: no features, yet the file counts as parsed.
        add("geo_json_duplicated_element", dup.key)
        return out
    except (ValueError, RecursionError):
        add("malformed_json")
        out.ok = False
        return out
    if not isinstance(root, dict):
        add("malformed_json")
        out.ok = False
        return out
    try:
        if "type" not in root:
            add("missing_required_element", "type")
            raise _Unparsable
        if _text(root["type"]) != "FeatureCollection":
            add("unsupported_geo_json_type", _text(root["type"]))
            raise _Unparsable
        features = root.get("features")
        if not isinstance(features, list):
            raise _Unparsable
        whole = True
        for index, feature in enumerate(features):
            whole &= _feature(feature, index, out, add)
    except _Unparsable:
        out.ok = False
        return out
    out.ok = whole
    if not whole:  # Java throws before building the container that finds duplicates
        return out
    seen: dict[str, int] = {}
    for fid, index in out.ids:
        if fid in seen:
            add("duplicate_geo_json_key", fid, "id")
        else:
            seen[fid] = index
    return out


def _feature(feature: Any, index: int, out: Locations, add: Any) -> bool:
    """One feature as ``GeoJsonFileLoader.extractFeature``; False when it is unusable."""
    if not isinstance(feature, dict):
        return False
    missing: list[str] = []
    fid: str | None = None
    if "id" not in feature or not _text(feature["id"]):
        missing.append("features.id")
    else:
        fid = _text(feature["id"])
    if "type" not in feature:
        missing.append("features.type")
    elif _text(feature["type"]) != "Feature":
        add("unsupported_feature_type", _text(feature["type"]), "type")
    if "properties" not in feature:
        missing.append("features.properties")
    geometry = feature.get("geometry")
    if "geometry" not in feature:
        missing.append("features.geometry")
    elif not isinstance(geometry, dict):
        raise _Unparsable
    elif "type" not in geometry:
        missing.append("features.geometry.type")
    elif "coordinates" not in geometry:
        missing.append("features.geometry.coordinates")
    elif not missing and fid is not None:
        return _geometry(fid, index, _text(geometry["type"]), geometry["coordinates"], out, add)
    for name in missing:
        add("missing_required_element", name, name)
    return False


def _geometry(fid: str, index: int, kind: str, coords: Any, out: Locations, add: Any) -> bool:
    for ring in _array(coords):
        for point in _array(ring):
            lon, lat = _lon_lat(point)
            if abs(lon) <= 1 and abs(lat) <= 1:
                add("point_near_origin", fid, "coordinates")
            elif abs(lat) >= 89:
                add("point_near_pole", fid, "coordinates")
    out.ids.append((fid, index))
    if kind != "Polygon":
        # MultiPolygons never get here (see the module's docstring).
        add("unsupported_geometry_type", kind, "type")
        return True
    polygon = _polygon(coords)
    if polygon is None:
        add("invalid_geometry", fid, "coordinates")
        out.ids.pop()
        return False
    out.shapes.setdefault(fid, polygon)
    return True


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise _Unparsable
    return value


def _lon_lat(point: Any) -> tuple[float, float]:
    """A point as [lon, lat, ...]: Gson's getAsDouble on its first two entries."""
    values = _array(point)
    if len(values) < 2:
        raise _Unparsable
    out = []
    for v in values[:2]:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise _Unparsable
        out.append(float(v))
    return out[0], out[1]


def _polygon(rings: list[Any]) -> Any:
    """The polygon JTS would build and accept, or None (an invalid_geometry)."""
    import shapely  # only feeds with GTFS-Flex zones pay for the import

    parsed = [[_lon_lat(p) for p in _array(ring)] for ring in rings]
    # JTS's LinearRing: closed, and 0 or at least 4 points.
    for ring in parsed:
        if ring and (len(ring) < 4 or ring[0] != ring[-1]):
            return None
    if not parsed or not parsed[0]:
        return None
    polygon = shapely.Polygon(parsed[0], [r for r in parsed[1:] if r])
    return polygon if shapely.is_valid(polygon) else None


def store_ids(conn: sqlite3.Connection, mode: str | None, locations: Locations) -> None:
    """Put the features' ids into TEMP table ``geo_locations`` for the SQL rules."""
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS geo_locations (mode TEXT, location_id TEXT, idx INTEGER)"
    )
    conn.executemany(
        "INSERT INTO geo_locations VALUES (?, ?, ?)",
        [(mode, fid, index) for fid, index in locations.ids],
    )
