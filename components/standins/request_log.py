"""What the stand-ins were asked and what they answered, for tests to assert on.

Holds the request headers a well-behaved client is judged by (conditional requests,
its User-Agent) and the status and fault each request got.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import hdrs, web


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One request as the server saw it, with the status it was sent."""

    at: datetime
    method: str
    path: str
    query: Mapping[str, str]
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None
    status: int
    # Source names owning the request, and the fault applied to it, if any.
    sources: tuple[str, ...]
    fault: str | None

    @property
    def conditional(self) -> bool:
        return self.if_none_match is not None or self.if_modified_since is not None

    @classmethod
    def of(
        cls,
        request: web.BaseRequest,
        *,
        at: datetime,
        status: int,
        sources: tuple[str, ...],
        fault: str | None,
    ) -> RequestRecord:
        headers = request.headers
        return cls(
            at=at,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            if_none_match=headers.get(hdrs.IF_NONE_MATCH),
            if_modified_since=headers.get(hdrs.IF_MODIFIED_SINCE),
            user_agent=headers.get(hdrs.USER_AGENT),
            status=status,
            sources=sources,
            fault=fault,
        )

    def as_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "method": self.method,
            "path": self.path,
            "query": dict(self.query),
            "if_none_match": self.if_none_match,
            "if_modified_since": self.if_modified_since,
            "user_agent": self.user_agent,
            "status": self.status,
            "sources": list(self.sources),
            "fault": self.fault,
        }
