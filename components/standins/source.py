"""The interface every stand-in source implements, and what publishing returns.

A source adds its routes to the shared application (and datasets to the shared
CKAN catalogue); the server adds fault injection and the request log around them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from .ckan import CkanCatalog


@dataclass(frozen=True, kw_only=True)
class Publication:
    """What a source serves after `publish()`: where, and with which validators."""

    source: str
    # None when arbitrary bytes were published rather than a numbered version.
    version: int | None
    revision: int
    path: str
    etag: str
    sha256: str
    size: int
    last_modified: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "version": self.version,
            "revision": self.revision,
            "path": self.path,
            "etag": self.etag,
            "sha256": self.sha256,
            "size": self.size,
            "last_modified": self.last_modified.isoformat(),
        }


class Source(Protocol):
    """One imitated upstream (GTFS schedule, GTFS-realtime, PTV API, ...)."""

    @property
    def name(self) -> str:
        """Stable snake_case name used by control commands and fault targets."""
        ...

    def setup(self, app: web.Application, ckan: CkanCatalog) -> None:
        """Add routes to `app` and datasets to `ckan`; called once, before start."""
        ...

    def owns(self, request: web.BaseRequest) -> bool:
        """Whether `request` is for one of this source's own routes."""
        ...

    def publish(self, version: int) -> Publication:
        """Replace what is served with generated content for `version`."""
        ...

    def publish_bytes(self, data: bytes, *, content_type: str | None = None) -> Publication:
        """Replace what is served with `data` as is, e.g. a broken file for a test."""
        ...
