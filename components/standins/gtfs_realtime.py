"""Stand-in for Transport Victoria's GTFS-realtime API (trip updates, positions, alerts).

Serves generated protobuf feeds at ``/opendata/public-transport/gtfs/realtime/v1/
{mode}/{feed}`` behind a ``KeyId`` header check (401 without a known key). The
header timestamp only moves when told to (``advance`` / ``publish``), so a client
polling twice in a row sees the same feed, as it would within the real 30 s cache.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from aiohttp import web
from google.transit import gtfs_realtime_pb2 as rt

from .bodies import Delivery, answer
from .ckan import CkanCatalog
from .sample_feed import trip_stops
from .source import Publication

Clock = Callable[[], datetime]

PREFIX = "/opendata/public-transport/gtfs/realtime/v1"
PROTOBUF = "application/x-protobuf"
#: The key the stand-in accepts by default; the demo passes it as its API key.
STANDIN_API_KEY = "standin-opendata-key"
KEY_HEADER = "KeyId"

TRIP_UPDATES, VEHICLE_POSITIONS, SERVICE_ALERTS = (
    "trip-updates",
    "vehicle-positions",
    "service-alerts",
)
ALL_FEEDS = (TRIP_UPDATES, VEHICLE_POSITIONS, SERVICE_ALERTS)
#: The real API's feeds: metro and tram with all three, bus and V/Line without alerts.
DEFAULT_FEEDS: Mapping[str, tuple[str, ...]] = {
    "metro": ALL_FEEDS,
    "tram": ALL_FEEDS,
    "bus": (TRIP_UPDATES, VEHICLE_POSITIONS),
    "vline": (TRIP_UPDATES, VEHICLE_POSITIONS),
}
#: Entities per feed, about what the real Melbourne metro feed carries.
DEFAULT_ENTITIES = {TRIP_UPDATES: 190, VEHICLE_POSITIONS: 150, SERVICE_ALERTS: 12}
MELBOURNE = (-37.8183, 144.9671)


def _utcnow() -> datetime:
    return datetime.now(UTC)


#: The sample schedule's mode folder behind each stand-in mode: their ids join it.
SCHEDULE_MODES = {"metro": "2", "tram": "3", "vline": "1"}
#: 2025-02-01 00:00 in Melbourne (noon minus 12 h): the service day the feeds run on.
SERVICE_DAY = 1_738_328_400


@functools.lru_cache(maxsize=8)
def _trips(mode: str) -> list[tuple[str, str, list[tuple[int, str, int]]]]:
    folder = SCHEDULE_MODES.get(mode)
    return trip_stops(folder) if folder is not None else []


def build_entities(mode: str, feed: str, version: int, count: int) -> bytes:
    """The serialised entities of one feed (a FeedMessage without its header).

    Deterministic per (mode, feed, version); protobuf concatenation merges them
    with a separately serialised header, so a new timestamp costs no rebuild.
    Metro, tram and V/Line name the sample schedule's trips, routes and stops (see
    ``sample_feed``), all but a few: every 20th trip and stops past a trip's end are
    ids the schedule lacks, so join rates mean something. A third of the trip
    updates give times without delays (to be derived from the schedule).
    """
    rng = random.Random(f"{mode}/{feed}/{version}")
    msg = rt.FeedMessage()
    base = 1_738_392_840 + version * 60
    trips = _trips(mode)
    for i in range(count):
        entity = msg.entity.add()
        entity.id = f"{mode}-{feed}-{version}-{i}"
        trip_id = f"{mode}.T{i % 17}.{i}-vpt-{version}"
        route_id = f"aus:vic:vic-0{2 if mode == 'metro' else 3}-{i % 16:03d}:"
        stops: dict[int, tuple[str, int]] = {}
        if trips:
            sched_trip, route_id, calls = trips[i % len(trips)]
            stops = {seq: (sid, secs) for seq, sid, secs in calls}
            if i % 20 != 19:
                trip_id = sched_trip
        if feed == TRIP_UPDATES:
            tu = entity.trip_update
            tu.trip.trip_id = trip_id
            tu.trip.route_id = route_id
            tu.trip.start_time = f"{(5 + i // 12) % 24:02d}:{(i * 5) % 60:02d}:00"
            tu.trip.start_date = "20250201"
            tu.trip.schedule_relationship = rt.TripDescriptor.SCHEDULED
            tu.vehicle.id = f"{mode}-veh-{i}"
            tu.timestamp = base
            delay = rng.randint(-60, 600)
            first = 1 + i % max(1, min(4, len(stops) - 9)) if stops else 1 + i % 4
            for seq in range(first, first + 10):
                stu = tu.stop_time_update.add()
                stu.stop_sequence = seq
                if stops:
                    sid, secs = stops.get(seq, (f"{mode}-beyond-{seq}", 0))
                    stu.stop_id = sid
                    when = SERVICE_DAY + (secs or seq * 120) + delay
                else:
                    stu.stop_id = f"{10000 + (i * 7 + seq) % 900}"
                    when = base + seq * 120 + delay
                stu.arrival.time = when
                stu.departure.time = when + 60
                if not stops or i % 3 != 2:
                    stu.arrival.delay = delay
                    stu.departure.delay = delay
        elif feed == VEHICLE_POSITIONS:
            vp = entity.vehicle
            vp.trip.trip_id = trip_id
            vp.trip.route_id = route_id
            vp.trip.start_date = "20250201"
            vp.vehicle.id = f"{mode}-veh-{i}"
            vp.vehicle.label = f"{100 + i}"
            vp.position.latitude = MELBOURNE[0] + rng.uniform(-0.3, 0.3)
            vp.position.longitude = MELBOURNE[1] + rng.uniform(-0.4, 0.4)
            vp.position.bearing = rng.uniform(0, 360)
            vp.position.speed = rng.uniform(0, 25)
            vp.current_stop_sequence = 1 + i % 20
            vp.stop_id = f"{10000 + i % 900}"
            if stops:
                seq = min(stops)
                vp.current_stop_sequence, vp.stop_id = seq, stops[seq][0]
            vp.current_status = rt.VehiclePosition.IN_TRANSIT_TO
            vp.timestamp = base
            vp.occupancy_status = rt.VehiclePosition.MANY_SEATS_AVAILABLE
        else:
            alert = entity.alert
            period = alert.active_period.add()
            period.start = base - 3600
            period.end = base + 7200 * (1 + i % 3)
            informed = alert.informed_entity.add()
            informed.route_id = route_id
            informed.route_type = 2 if mode == "metro" else 0
            if i % 2:
                stop = alert.informed_entity.add()
                stop.stop_id = stops[min(stops)][0] if stops else f"{10000 + i}"
            alert.cause = rt.Alert.MAINTENANCE if i % 2 else rt.Alert.TECHNICAL_PROBLEM
            alert.effect = rt.Alert.REDUCED_SERVICE if i % 3 else rt.Alert.DETOUR
            for field, text in (
                ("header_text", f"Delays on line {i % 16} ({mode})"),
                ("description_text", f"Buses replace trains between stops {i} and {i + 4}."),
                ("url", f"https://www.ptv.vic.gov.au/disruptions/{version}-{i}"),
            ):
                tr = getattr(alert, field).translation.add()
                tr.text = text
                tr.language = "en"
    # Partial: the header (a required field) is serialised separately.
    return msg.SerializePartialToString()


def build_header(timestamp: int) -> bytes:
    """A FeedMessage holding only its header, stamped ``timestamp``."""
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.incrementality = rt.FeedHeader.FULL_DATASET
    msg.header.timestamp = timestamp
    return msg.SerializeToString()


def build_feed(
    mode: str, feed: str, version: int, timestamp: int, entities: int | None = None
) -> bytes:
    """One complete feed as the API serves it."""
    count = DEFAULT_ENTITIES[feed] if entities is None else entities
    return build_header(timestamp) + build_entities(mode, feed, version, count)


class GtfsRealtimeSource:
    """GTFS-realtime endpoints ``<prefix>/<mode>/<feed>`` for every configured mode.

    ``feeds`` maps a mode to its feed names; ``api_keys`` are the KeyId values
    accepted. ``publish(version)`` serves new entities with a new timestamp,
    ``advance(seconds)`` only moves the header timestamp; ``set_endpoint_bytes``
    serves given bytes from one endpoint (empty, HTML, garbage) for tests.
    """

    def __init__(
        self,
        *,
        name: str = "gtfs_realtime",
        prefix: str = PREFIX,
        feeds: Mapping[str, Sequence[str]] = DEFAULT_FEEDS,
        api_keys: Iterable[str] = (STANDIN_API_KEY,),
        entities: Mapping[str, int] | None = None,
        version: int = 1,
        clock: Clock = _utcnow,
        delivery: Delivery | None = None,
    ) -> None:
        self._name = name
        #: How feeds are sent (None: at once); set it to serve big or chunked feeds.
        self.delivery = delivery
        self.prefix = prefix.rstrip("/")
        self.feeds = {mode: tuple(names) for mode, names in feeds.items()}
        self.api_keys = set(api_keys)
        self.entities = {**DEFAULT_ENTITIES, **(entities or {})}
        self._clock = clock
        self.version = version
        self.revision = 1
        self.timestamp = int(clock().timestamp())
        self._bodies: dict[tuple[str, str, int], bytes] = {}
        self._overrides: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._everywhere: tuple[bytes, str] | None = None
        self.served = 0

    @property
    def name(self) -> str:
        return self._name

    def path(self, mode: str, feed: str) -> str:
        return f"{self.prefix}/{mode}/{feed}"

    def endpoints(self) -> dict[str, str]:
        """Endpoint name (e.g. ``metro_trip_updates``) -> path, for every feed served."""
        return {
            f"{mode}_{feed.replace('-', '_')}": self.path(mode, feed)
            for mode, names in self.feeds.items()
            for feed in names
        }

    def setup(self, app: web.Application, ckan: CkanCatalog) -> None:
        app.router.add_get(self.prefix + "/{mode}/{feed}", self._serve)

    def owns(self, request: web.BaseRequest) -> bool:
        return request.path.startswith(self.prefix + "/")

    def publish(self, version: int) -> Publication:
        """New entities for ``version`` with a header timestamp of now (always later)."""
        self.version = version
        self._bodies.clear()
        self._everywhere = None
        return self.advance_to(int(self._clock().timestamp()))

    def advance(self, seconds: int = 30) -> Publication:
        """Move the header timestamp on by ``seconds``; the entities stay."""
        return self.advance_to(self.timestamp + seconds)

    def advance_to(self, timestamp: int) -> Publication:
        """Stamp every feed ``timestamp`` (at least one second after the last stamp)."""
        self.timestamp = max(timestamp, self.timestamp + 1)
        self.revision += 1
        return self._publication()

    def set_timestamp(self, timestamp: int) -> None:
        """Stamp every feed exactly ``timestamp``, even in the past or the future."""
        self.timestamp = timestamp
        self.revision += 1

    def publish_bytes(self, data: bytes, *, content_type: str | None = None) -> Publication:
        self._everywhere = (data, content_type or PROTOBUF)
        self.revision += 1
        return self._publication()

    def set_endpoint_bytes(
        self, mode: str, feed: str, data: bytes, *, content_type: str = PROTOBUF
    ) -> None:
        """Serve ``data`` from one endpoint until :meth:`clear_endpoint`."""
        self._overrides[(mode, feed)] = (data, content_type)

    def clear_endpoint(self, mode: str, feed: str) -> None:
        self._overrides.pop((mode, feed), None)

    def body(self, mode: str, feed: str) -> bytes:
        """What ``<mode>/<feed>`` serves now."""
        key = (mode, feed, self.version)
        entities = self._bodies.get(key)
        if entities is None:
            kind = feed if feed in ALL_FEEDS else TRIP_UPDATES
            entities = self._bodies[key] = build_entities(
                mode, kind, self.version, self.entities[kind]
            )
        return build_header(self.timestamp) + entities

    def _publication(self) -> Publication:
        digest = hashlib.sha256(f"{self.version}:{self.timestamp}".encode()).hexdigest()
        return Publication(
            source=self.name,
            version=self.version,
            revision=self.revision,
            path=self.prefix + "/",
            etag=digest,
            sha256=digest,
            size=0,
            last_modified=datetime.fromtimestamp(self.timestamp, UTC),
        )

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        key = request.headers.get(KEY_HEADER)
        if key is None or key not in self.api_keys:
            return web.json_response(
                {"message": "Access denied due to missing or invalid subscription key."},
                status=401,
            )
        mode, feed = request.match_info["mode"], request.match_info["feed"]
        if feed not in self.feeds.get(mode, ()):
            raise web.HTTPNotFound(text=f"404: no feed {mode}/{feed}\n")
        self.served += 1
        override = self._overrides.get((mode, feed)) or self._everywhere
        data, ctype = override if override is not None else (self.body(mode, feed), PROTOBUF)
        return answer(data, content_type=ctype, delivery=self.delivery)
