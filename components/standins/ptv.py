"""Stand-in for the PTV Timetable API v3, checking every request's signature exactly.

A request whose signature is not HMAC-SHA1 (uppercase hex) of its own path and
query under the devid's key gets PTV's 403 body ``{message, status}``. Answers
come from recorded real responses (``PtvSource(recordings=folder)``, for tests) or
are generated from the sample network per published version (the demo).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from interlock.components.ptv_timetable.signing import signature, split_signed

from .bodies import Delivery, answer
from .ckan import CkanCatalog
from .ptv_data import ROUTE_TYPES, GeneratedNetwork, category_for
from .published import next_publication_time
from .source import Publication

#: The account the demo's configuration signs with (``interlock demo`` passes these on).
DEMO_DEVID = "3000165"
DEMO_API_KEY = "9c132d31-6a30-4cac-8d8b-8a1970834799"

STATUS = {"version": "3.0", "health": 1}
EXPAND_KEYS = {
    "stop": "stops",
    "route": "routes",
    "run": "runs",
    "direction": "directions",
    "disruption": "disruptions",
}
Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def error_body(message: str) -> dict[str, Any]:
    """PTV's error answer."""
    return {"message": message, "status": STATUS}


class PtvSource:
    """The API under ``<prefix>/v3/...`` (default prefix ``/ptv``); base URL ``<server>/ptv``."""

    def __init__(
        self,
        *,
        name: str = "ptv_timetable",
        prefix: str = "/ptv",
        accounts: dict[str, str] | None = None,
        recordings: Path | None = None,
        version: int = 1,
        clock: Clock = _utcnow,
        delivery: Delivery | None = None,
    ) -> None:
        self._name = name
        #: How answers are sent (None: at once); set it to serve big or chunked replies.
        self.delivery = delivery
        self.prefix = prefix.rstrip("/")
        self.accounts = dict(accounts if accounts is not None else {DEMO_DEVID: DEMO_API_KEY})
        self.disabled: set[str] = set()
        self._clock = clock
        self._revision = 1
        self._version: int | None = version
        self._published_at = next_publication_time(clock(), None)
        self._override: tuple[bytes, str] | None = None
        self._recorded: dict[tuple[int, int], dict[str, Any]] = {}
        self._recorded_disruptions: list[dict[str, Any]] = []
        if recordings is not None:
            self._load(recordings)
        self._network = GeneratedNetwork(version, self._published_at)

    @property
    def name(self) -> str:
        return self._name

    @property
    def recorded_stops(self) -> list[tuple[int, int]]:
        """(route_type, stop_id) of every recorded departures answer."""
        return sorted(self._recorded)

    def setup(self, app: web.Application, ckan: CkanCatalog) -> None:
        v3 = self.prefix + "/v3"
        app.router.add_get(v3 + "/route_types", self._route_types)
        app.router.add_get(v3 + "/routes", self._routes)
        stop = v3 + r"/departures/route_type/{route_type:\d+}/stop/{stop_id:\d+}"
        app.router.add_get(stop, self._departures)
        app.router.add_get(stop + r"/route/{route_id:\d+}", self._departures)
        app.router.add_get(v3 + "/disruptions", self._disruptions)

    def owns(self, request: web.BaseRequest) -> bool:
        return request.path.startswith(self.prefix + "/")

    def publish(self, version: int) -> Publication:
        self._version, self._override = version, None
        return self._bump(json.dumps({"version": version}).encode(), "application/json")

    def publish_bytes(self, data: bytes, *, content_type: str | None = None) -> Publication:
        self._version = None
        self._override = (data, content_type or "application/json")
        return self._bump(data, self._override[1])

    def disable(self, devid: str) -> None:
        """Answer ``devid``'s requests with PTV's 403 for a disabled developer id."""
        self.disabled.add(devid)

    # --- helpers -------------------------------------------------------------------

    def _bump(self, data: bytes, content_type: str) -> Publication:
        self._revision += 1
        self._published_at = next_publication_time(self._clock(), self._published_at)
        if self._version is not None:
            self._network = GeneratedNetwork(self._version, self._published_at)
        digest = hashlib.sha256(data).hexdigest()
        return Publication(
            source=self.name,
            version=self._version,
            revision=self._revision,
            path=self.prefix + "/v3/",
            etag=digest,
            sha256=digest,
            size=len(data),
            last_modified=self._published_at,
        )

    def _load(self, folder: Path) -> None:
        for path in sorted(folder.glob("*.json")):
            doc = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                continue
            found = doc.get("disruptions")
            items = found.values() if isinstance(found, dict) else found or []
            seen = {d["disruption_id"] for d in self._recorded_disruptions}
            for item in items:
                if isinstance(item, dict) and item.get("disruption_id") not in seen:
                    self._recorded_disruptions.append(item)
                    seen.add(item.get("disruption_id"))
            stops = doc.get("stops")
            # A departures answer is for one stop; a stopping pattern lists many.
            departures = doc.get("departures")
            if isinstance(departures, list) and isinstance(stops, dict) and len(stops) == 1:
                (stop,) = stops.values()
                self._recorded[int(stop["route_type"]), int(stop["stop_id"])] = doc

    def _check(self, request: web.Request) -> web.Response | None:
        """None when the request is signed correctly, else PTV's refusal."""
        raw = request.raw_path
        if raw.startswith(self.prefix):
            raw = raw[len(self.prefix) :]
        parts = split_signed(raw)
        devid = dict(parse_qsl(parts[0].partition("?")[2])).get("devid") if parts else None
        if parts is None or not devid:
            return _refuse(400, "Invalid request: a devid and a signature are required.")
        key = self.accounts.get(devid)
        message, sent = parts
        if key is None or not hmac.compare_digest(sent, signature(message, key)):
            return _refuse(403, "Forbidden (403): Invalid signature for this devid and request.")
        if devid in self.disabled:
            return _refuse(403, "Forbidden (403): This developer id has been disabled.")
        return None

    def _answer(
        self, request: web.Request, build: Callable[[], dict[str, Any]]
    ) -> web.StreamResponse:
        refusal = self._check(request)
        if refusal is not None:
            return refusal
        if self._override is not None:
            data, ctype = self._override
        else:
            data, ctype = json.dumps(build()).encode(), "application/json"
        return answer(data, content_type=ctype, delivery=self.delivery)

    # --- endpoints -----------------------------------------------------------------

    async def _route_types(self, request: web.Request) -> web.StreamResponse:
        types = [{"route_type_name": n, "route_type": t} for t, n in ROUTE_TYPES.items()]
        return self._answer(request, lambda: {"route_types": types, "status": STATUS})

    async def _routes(self, request: web.Request) -> web.StreamResponse:
        wanted = {int(v) for v in request.query.getall("route_types", []) if v.isdigit()}

        def build() -> dict[str, Any]:
            routes: list[dict[str, Any]]
            if self._recorded:
                found = {
                    r["route_id"]: r
                    for doc in self._recorded.values()
                    for r in (doc.get("routes") or {}).values()
                }
                routes = list(found.values())
            else:
                routes = self._network.routes()
            chosen = [
                {**copy.deepcopy(r), "route_service_status": _good_service(self._published_at)}
                for r in routes
                if not wanted or r["route_type"] in wanted
            ]
            return {"routes": chosen, "status": STATUS}

        return self._answer(request, build)

    async def _departures(self, request: web.Request) -> web.StreamResponse:
        route_type = int(request.match_info["route_type"])
        stop_id = int(request.match_info["stop_id"])
        if route_type not in ROUTE_TYPES:
            refusal = self._check(request)
            return refusal or _refuse(400, f"Invalid route_type {route_type}.")
        max_results = request.query.get("max_results", "")
        limit = int(max_results) if max_results.isdigit() and int(max_results) else None
        expand = {v.lower() for v in request.query.getall("expand", [])}
        route_id = request.match_info.get("route_id")

        def build() -> dict[str, Any]:
            if self._recorded:
                doc = copy.deepcopy(self._recorded.get((route_type, stop_id)) or _empty())
            else:
                doc = self._network.departures(route_type, stop_id, limit or 5)
            if route_id is not None:
                doc["departures"] = [
                    d for d in doc["departures"] if d.get("route_id") == int(route_id)
                ]
            if limit is not None:
                doc["departures"] = doc["departures"][:limit]
            return _expanded(doc, expand)

        return self._answer(request, build)

    async def _disruptions(self, request: web.Request) -> web.StreamResponse:
        status = request.query.get("disruption_status", "").lower()
        wanted = {int(v) for v in request.query.getall("route_types", []) if v.isdigit()}

        def build() -> dict[str, Any]:
            items = self._recorded_disruptions if self._recorded else self._network.disruptions()
            groups: dict[str, list[dict[str, Any]]] = {
                c: [] for c in ("general", "metro_train", "metro_tram", "metro_bus")
            }
            groups.update({"regional_train": [], "regional_coach": [], "regional_bus": []})
            for item in items:
                if status and str(item.get("disruption_status", "")).lower() != status:
                    continue
                types = {r.get("route_type") for r in item.get("routes") or []}
                if wanted and not types & wanted:
                    continue
                groups.setdefault(category_for(types), []).append(copy.deepcopy(item))
            return {"disruptions": groups, "status": STATUS}

        return self._answer(request, build)


def _refuse(status: int, message: str) -> web.Response:
    return web.json_response(error_body(message), status=status)


def _empty() -> dict[str, Any]:
    return {
        "departures": [],
        "stops": {},
        "routes": {},
        "runs": {},
        "directions": {},
        "disruptions": {},
        "status": STATUS,
    }


def _good_service(at: datetime) -> dict[str, Any]:
    return {"description": "Good Service", "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S+00:00")}


def _expanded(doc: dict[str, Any], expand: set[str]) -> dict[str, Any]:
    """Only what ``expand`` asked for, as the real API answers (unexpanded parts empty)."""
    every = "all" in expand
    for name, key in EXPAND_KEYS.items():
        if not every and name not in expand:
            doc[key] = {}
    for run in (doc.get("runs") or {}).values():
        if not every and "vehicleposition" not in expand:
            run["vehicle_position"] = None
        if not every and "vehicledescriptor" not in expand:
            run["vehicle_descriptor"] = None
    return doc
