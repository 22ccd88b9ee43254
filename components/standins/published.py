"""A published file as a real open-data host serves it: bytes with validators.

Strong ETag from the SHA-256, Last-Modified, and 304 answers to conditional requests;
every source that serves a download builds its responses from this.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web
from aiohttp.helpers import ETag

ETAG_ANY = "*"


@dataclass(frozen=True, kw_only=True)
class PublishedFile:
    """One revision of a download: its bytes, type and when it was published."""

    data: bytes
    content_type: str
    last_modified: datetime
    revision: int

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        """The ETag's opaque value, the SHA-256 hex digest; the header quotes it."""
        return self.sha256

    @property
    def size(self) -> int:
        return len(self.data)

    def respond(self, request: web.BaseRequest) -> web.Response:
        """Answer `request` with the file, or with 304 when the client's copy is current."""
        if is_not_modified(
            etag=self.etag,
            last_modified=self.last_modified,
            if_none_match=request.if_none_match,
            if_modified_since=request.if_modified_since,
        ):
            response = web.Response(status=304)
        else:
            response = web.Response(body=self.data, content_type=self.content_type)
        # A 304 repeats the validators so the client can refresh what it stored.
        response.etag = self.etag
        response.last_modified = self.last_modified
        return response


def is_not_modified(
    *,
    etag: str,
    last_modified: datetime,
    if_none_match: tuple[ETag, ...] | None,
    if_modified_since: datetime | None,
) -> bool:
    """Decide a conditional GET as RFC 9110 section 13.2.2 orders it.

    If-None-Match wins when present (compared weakly, so W/"x" matches "x");
    If-Modified-Since is only consulted without it, at one-second resolution.
    """
    if if_none_match is not None:
        return any(tag.value in (etag, ETAG_ANY) for tag in if_none_match)
    if if_modified_since is None:
        return False
    return whole_seconds(last_modified) <= whole_seconds(if_modified_since)


def whole_seconds(moment: datetime) -> datetime:
    """HTTP dates have no fraction of a second, so compare and publish without one."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def next_publication_time(now: datetime, previous: datetime | None) -> datetime:
    """A publication time that is strictly after `previous` at HTTP's resolution.

    Two publications within one second would otherwise share a Last-Modified and
    a client using If-Modified-Since could miss the second one.
    """
    moment = whole_seconds(now)
    if previous is not None and moment <= previous:
        moment = previous + timedelta(seconds=1)
    return moment
