"""Stand-in for Transport Victoria's GTFS schedule download and its CKAN dataset.

Serves the zip of zips (or a flat feed) with ETag and Last-Modified; each publication
moves the file to a new URL, as the real portal's resource URL changes on republishing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from .ckan import CkanCatalog, ckan_timestamp
from .published import PublishedFile, next_publication_time
from .sample_feed import build_flat_feed, build_zip_of_zips
from .source import Publication

Clock = Callable[[], datetime]

ZIP = "application/zip"
FILE_NAME = "google_transit.zip"
# Fixed so the CKAN answer only changes when something is published.
DATASET_CREATED = datetime(2020, 3, 5, 4, 10, 0, tzinfo=UTC)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GtfsScheduleSource:
    """The GTFS schedule zip at `<prefix>/google_transit.zip`, plus its CKAN dataset.

    Routes (with the default prefix ``/gtfs/schedule``):

    - ``GET /gtfs/schedule/google_transit.zip``: always the current file.
    - ``GET /gtfs/schedule/v<revision>/google_transit.zip``: the URL CKAN gives for
      revision N (1 at start, +1 per publication). Superseded revisions answer
      404, like a replaced resource file on the real portal, so a client holding
      an old URL has to look the dataset up again.
    """

    def __init__(
        self,
        *,
        name: str = "gtfs_schedule",
        dataset_id: str = "gtfs-schedule",
        prefix: str = "/gtfs/schedule",
        flat: bool = False,
        version: int = 1,
        clock: Clock = _utcnow,
    ) -> None:
        self._name = name
        self.dataset_id = dataset_id
        self.prefix = prefix.rstrip("/")
        self.flat = flat
        self._clock = clock
        self._package_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin:ckan:{dataset_id}"))
        self._resource_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin:ckan:{dataset_id}:zip"))
        self._version: int | None = version
        self._current = PublishedFile(
            data=self._build(version),
            content_type=ZIP,
            last_modified=next_publication_time(clock(), None),
            revision=1,
        )

    @property
    def name(self) -> str:
        return self._name

    @property
    def current(self) -> PublishedFile:
        return self._current

    @property
    def stable_path(self) -> str:
        """The path that always serves the current file."""
        return f"{self.prefix}/{FILE_NAME}"

    @property
    def download_path(self) -> str:
        """The path CKAN currently advertises; it changes with every publication."""
        return f"{self.prefix}/v{self._current.revision}/{FILE_NAME}"

    def setup(self, app: web.Application, ckan: CkanCatalog) -> None:
        app.router.add_get(self.stable_path, self._serve_current)
        app.router.add_get(self.prefix + r"/v{revision:\d+}/" + FILE_NAME, self._serve_revision)
        ckan.register(
            name=self.dataset_id, package_id=self._package_id, owner=self.name, build=self._package
        )

    def owns(self, request: web.BaseRequest) -> bool:
        return request.path.startswith(self.prefix + "/")

    def publish(self, version: int) -> Publication:
        data = self._build(version)
        self._version = version
        return self._replace(data, ZIP)

    def publish_bytes(self, data: bytes, *, content_type: str | None = None) -> Publication:
        self._version = None
        return self._replace(data, content_type or ZIP)

    def _build(self, version: int) -> bytes:
        return build_flat_feed(version) if self.flat else build_zip_of_zips(version)

    def _replace(self, data: bytes, content_type: str) -> Publication:
        previous = self._current
        self._current = PublishedFile(
            data=data,
            content_type=content_type,
            last_modified=next_publication_time(self._clock(), previous.last_modified),
            revision=previous.revision + 1,
        )
        return self._publication()

    def _publication(self) -> Publication:
        current = self._current
        return Publication(
            source=self.name,
            version=self._version,
            revision=current.revision,
            path=self.download_path,
            etag=current.etag,
            sha256=current.sha256,
            size=current.size,
            last_modified=current.last_modified,
        )

    async def _serve_current(self, request: web.Request) -> web.Response:
        return self._current.respond(request)

    async def _serve_revision(self, request: web.Request) -> web.Response:
        if int(request.match_info["revision"]) != self._current.revision:
            raise web.HTTPNotFound(text="404: Not Found\n")
        return self._current.respond(request)

    def _package(self, origin: URL) -> dict[str, Any]:
        current = self._current
        modified = ckan_timestamp(current.last_modified)
        created = ckan_timestamp(DATASET_CREATED)
        kind = "flat GTFS feed" if self.flat else "zip of per-mode GTFS feeds"
        resource = {
            "id": self._resource_id,
            "package_id": self._package_id,
            "name": "GTFS Schedule",
            "description": f"Timetable data as a {kind}.",
            "format": "ZIP",
            "mimetype": current.content_type,
            "url": str(origin.with_path(self.download_path)),
            "url_type": "upload",
            "created": created,
            "last_modified": modified,
            "metadata_modified": modified,
            "size": current.size,
            # Free text in CKAN; here the SHA-256 hex digest, the same value as the ETag.
            "hash": current.sha256,
            "position": 0,
            "state": "active",
            "datastore_active": False,
            "cache_url": None,
            "cache_last_updated": None,
            "resource_type": None,
        }
        return {
            "id": self._package_id,
            "name": self.dataset_id,
            "title": "GTFS Schedule",
            "type": "dataset",
            "state": "active",
            "private": False,
            "notes": "Static timetable data for public transport in Victoria (stand-in).",
            "license_id": "cc-by",
            "license_title": "Creative Commons Attribution 4.0",
            "license_url": "https://creativecommons.org/licenses/by/4.0/",
            "isopen": True,
            "author": None,
            "author_email": None,
            "maintainer": "Department of Transport and Planning",
            "maintainer_email": None,
            "url": "",
            "version": None if self._version is None else str(self._version),
            "metadata_created": created,
            "metadata_modified": modified,
            "num_resources": 1,
            "num_tags": 2,
            "tags": [
                {"name": "gtfs", "display_name": "gtfs", "state": "active"},
                {"name": "timetable", "display_name": "timetable", "state": "active"},
            ],
            "groups": [],
            "extras": [],
            "organization": {
                "name": "department-of-transport-and-planning",
                "title": "Department of Transport and Planning",
                "type": "organization",
                "state": "active",
                "is_organization": True,
            },
            "relationships_as_object": [],
            "relationships_as_subject": [],
            "resources": [resource],
        }
