"""A stand-in for a CKAN portal's action API, shared by every source.

Sources register datasets; `package_show` and `package_list` answer in CKAN's
envelope (`help`, `success`, `result` or `error`) with CKAN's status codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from yarl import URL

from .errors import DuplicateNameError

ACTION_PREFIX = "/ckan/api/3/action/"
PACKAGE_SHOW = ACTION_PREFIX + "package_show"
PACKAGE_LIST = ACTION_PREFIX + "package_list"

# Builds the package dict; it takes the server's origin so resource URLs are absolute
# for whatever host and port the client used.
PackageBuilder = Callable[[URL], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class _Dataset:
    name: str
    package_id: str
    owner: str
    build: PackageBuilder


def ckan_timestamp(moment: datetime) -> str:
    """CKAN's timestamp format: ISO 8601 in UTC, no zone, with microseconds."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class CkanCatalog:
    """The datasets the stand-in portal knows, by name and by package id."""

    def __init__(self) -> None:
        self._datasets: dict[str, _Dataset] = {}

    def register(self, *, name: str, package_id: str, owner: str, build: PackageBuilder) -> None:
        """Make `package_show?id=<name or package_id>` answer with `build(origin)`."""
        for key in (name, package_id):
            if key in self._datasets:
                raise DuplicateNameError(
                    f"CKAN dataset {key!r} is already registered by source "
                    f"{self._datasets[key].owner!r}; give each dataset a unique name"
                )
        dataset = _Dataset(name=name, package_id=package_id, owner=owner, build=build)
        self._datasets[name] = self._datasets[package_id] = dataset

    def owner_of(self, request: web.BaseRequest) -> str | None:
        """The source whose dataset a `package_show?id=...` request asks for, if any."""
        if request.path != PACKAGE_SHOW:
            return None
        dataset = self._datasets.get(request.query.get("id", ""))
        return dataset.owner if dataset else None

    def setup(self, app: web.Application) -> None:
        # CKAN accepts every action both as GET with a query and POST with a JSON body.
        for path, handler in ((PACKAGE_SHOW, self._package_show), (PACKAGE_LIST, self._list)):
            app.router.add_get(path, handler)
            app.router.add_post(path, handler)

    async def _package_show(self, request: web.Request) -> web.Response:
        params = await _action_params(request)
        dataset_id = params.get("id")
        if not isinstance(dataset_id, str) or not dataset_id:
            error = {"__type": "Validation Error", "name_or_id": ["Missing value"]}
            return _failure(request, "package_show", 409, error)
        dataset = self._datasets.get(dataset_id)
        if dataset is None:
            error = {"__type": "Not Found Error", "message": "Not found"}
            return _failure(request, "package_show", 404, error)
        return _success(request, "package_show", dataset.build(request.url.origin()))

    async def _list(self, request: web.Request) -> web.Response:
        names = sorted({dataset.name for dataset in self._datasets.values()})
        return _success(request, "package_list", names)


async def _action_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            params.update(body)
    return params


def _help_url(request: web.Request, action: str) -> str:
    help_url = request.url.origin().with_path(ACTION_PREFIX + "help_show")
    return str(help_url.with_query(name=action))


def _success(request: web.Request, action: str, result: object) -> web.Response:
    body = {"help": _help_url(request, action), "success": True, "result": result}
    return web.json_response(body)


def _failure(request: web.Request, action: str, status: int, error: dict[str, Any]) -> web.Response:
    body = {"help": _help_url(request, action), "success": False, "error": error}
    return web.json_response(body, status=status)
