"""Stand-in for Data Vic's CKAN datasets of patronage CSVs.

Two kinds: ``station`` (annual metropolitan train station entries, one CSV per
financial year, header variants between years) and ``temporal`` (monthly
average patronage by day type and mode). Each dataset also lists a PDF data
dictionary, as the real ones do. Resource URLs stay put when a file is
replaced; its ``last_modified`` (and the package's ``metadata_modified``) move.
``touch()`` moves them without changing a byte.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from .ckan import CkanCatalog, ckan_timestamp
from .datavic_data import station_csv, temporal_csv
from .published import PublishedFile, next_publication_time
from .source import Publication

Clock = Callable[[], datetime]
CSV = "text/csv"
DATASETS = {
    "station": "annual-metropolitan-train-station-patronage-station-entries",
    "temporal": "monthly-average-patronage-by-day-type-and-by-mode",
}
TITLES = {
    "station": "Annual metropolitan train station patronage (station entries)",
    "temporal": "Monthly Average Patronage by Day Type and by Mode",
}
# Year -> header layout of the station files; versions add later years.
LAYOUTS = {2021: "oldest", 2022: "older"}


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Resource:
    id: str
    name: str
    filename: str
    created: datetime
    file: PublishedFile


class DatavicSource:
    """One Data Vic dataset under ``<prefix>/<dataset>/resource/<id>/download/<file>``."""

    def __init__(
        self,
        kind: str,
        *,
        name: str | None = None,
        dataset_id: str | None = None,
        prefix: str = "/datavic",
        version: int = 1,
        clock: Clock = _utcnow,
    ) -> None:
        if kind not in DATASETS:
            raise ValueError(f"unknown Data Vic kind {kind!r}; known: {', '.join(DATASETS)}")
        self.kind = kind
        self._name = name or f"datavic_{kind}_patronage"
        self.dataset_id = dataset_id or DATASETS[kind]
        self.prefix = f"{prefix.rstrip('/')}/{self.dataset_id}"
        self._clock = clock
        self._package_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin:datavic:{self.dataset_id}"))
        self._resources: dict[str, _Resource] = {}
        self._version: int | None = version
        self._revision = 0
        # When set, downloads answer 403 as a storage bucket that lost its public access.
        self.forbidden = False
        self._modified = next_publication_time(clock(), None)
        self._generate(version)

    @property
    def name(self) -> str:
        return self._name

    @property
    def resource_names(self) -> list[str]:
        return [r.name for r in self._resources.values()]

    def setup(self, app: web.Application, ckan: CkanCatalog) -> None:
        app.router.add_get(self.prefix + "/resource/{rid}/download/{filename}", self._serve)
        ckan.register(
            name=self.dataset_id, package_id=self._package_id, owner=self.name, build=self._package
        )

    def owns(self, request: web.BaseRequest) -> bool:
        return request.path.startswith(self.prefix + "/")

    def publish(self, version: int) -> Publication:
        self._version = version
        self._generate(version)
        return self._publication()

    def publish_bytes(self, data: bytes, *, content_type: str | None = None) -> Publication:
        """Replace the newest CSV resource's bytes with ``data`` as is."""
        self._version = None
        newest = max(self._resources.values(), key=lambda r: r.created)
        self._replace(newest, data, content_type or CSV)
        return self._publication()

    def touch(self) -> Publication:
        """Move every resource's last_modified on without changing its bytes."""
        for resource in self._resources.values():
            self._replace(resource, resource.file.data, resource.file.content_type, force=True)
        return self._publication()

    # --- content -------------------------------------------------------------------

    def _files(self, version: int) -> list[tuple[str, str, bytes]]:
        if self.kind == "temporal":
            name = "Monthly average patronage by day type and by mode"
            data = temporal_csv(11 + version, version)
            return [(name, "monthly_average_patronage_by_day_type_and_by_mode.csv", data)]
        out = []
        for year in range(2021, 2023 + version):
            label = f"{year}-{(year + 1) % 100:02d}"
            filename = f"annual_metropolitan_train_station_entries_fy_{year}_{year + 1}.csv"
            data = station_csv(year, LAYOUTS.get(year, "current"), 1)
            out.append((f"Annual metropolitan train station entries {label}", filename, data))
        return out

    def _generate(self, version: int) -> None:
        for name, filename, data in self._files(version):
            rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"standin:datavic:{self.dataset_id}:{name}"))
            existing = self._resources.get(rid)
            if existing is None:
                moment = self._next_time()
                file = PublishedFile(data=data, content_type=CSV, last_modified=moment, revision=1)
                self._resources[rid] = _Resource(rid, name, filename, moment, file)
            elif existing.file.data != data:
                self._replace(existing, data, CSV)

    def _next_time(self) -> datetime:
        self._modified = next_publication_time(self._clock(), self._modified)
        return self._modified

    def _replace(
        self, resource: _Resource, data: bytes, content_type: str, *, force: bool = False
    ) -> None:
        if not force and resource.file.data == data and resource.file.content_type == content_type:
            return
        resource.file = PublishedFile(
            data=data,
            content_type=content_type,
            last_modified=self._next_time(),
            revision=resource.file.revision + 1,
        )

    def _publication(self) -> Publication:
        self._revision += 1
        newest = max(self._resources.values(), key=lambda r: r.file.last_modified)
        return Publication(
            source=self.name,
            version=self._version,
            revision=self._revision,
            path=self._path(newest),
            etag=newest.file.etag,
            sha256=newest.file.sha256,
            size=newest.file.size,
            last_modified=newest.file.last_modified,
        )

    def _path(self, resource: _Resource) -> str:
        return f"{self.prefix}/resource/{resource.id}/download/{resource.filename}"

    # --- HTTP ----------------------------------------------------------------------

    async def _serve(self, request: web.Request) -> web.Response:
        resource = self._resources.get(request.match_info["rid"])
        if resource is None or resource.filename != request.match_info["filename"]:
            raise web.HTTPNotFound(text="404: Not Found\n")
        if self.forbidden:
            body = "<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>"
            return web.Response(status=403, text=body, content_type="application/xml")
        return resource.file.respond(request)

    def _package(self, origin: URL) -> dict[str, Any]:
        resources = sorted(self._resources.values(), key=lambda r: r.created)
        items = []
        for position, r in enumerate(resources):
            items.append(
                {
                    "id": r.id,
                    "package_id": self._package_id,
                    "name": r.name,
                    "description": "",
                    "format": "CSV",
                    "mimetype": CSV,
                    "url": str(origin.with_path(self._path(r))),
                    "url_type": "upload",
                    "created": ckan_timestamp(r.created),
                    "last_modified": ckan_timestamp(r.file.last_modified),
                    "size": r.file.size,
                    "hash": "",
                    "position": position,
                    "state": "active",
                    "datastore_active": False,
                }
            )
        items.append(
            {
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self._package_id}:dictionary")),
                "package_id": self._package_id,
                "name": "Data dictionary",
                "format": "PDF",
                "mimetype": "application/pdf",
                "url": str(origin.with_path(f"{self.prefix}/data-dictionary.pdf")),
                "created": ckan_timestamp(datetime(2023, 2, 21, tzinfo=UTC)),
                "last_modified": None,
                "size": None,
                "hash": "",
                "position": len(items),
                "state": "active",
            }
        )
        modified = max(r.file.last_modified for r in resources)
        return {
            "id": self._package_id,
            "name": self.dataset_id,
            "title": TITLES[self.kind],
            "type": "dataset",
            "state": "active",
            "private": False,
            "license_id": "cc-by",
            "license_title": "Creative Commons Attribution 4.0 International",
            "organization": {"name": "department-of-transport-and-planning"},
            "metadata_created": ckan_timestamp(resources[0].created),
            "metadata_modified": ckan_timestamp(modified),
            "num_resources": len(items),
            "notes": "Patronage estimates are rounded to nearest 50 (stand-in).",
            "resources": items,
        }
