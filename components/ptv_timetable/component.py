"""The ``ptv_timetable`` component: the PTV Timetable API v3, signed, into SQLite.

Each run polls what the settings ask for (route types, routes, departures for
listed stops with their runs, routes and disruptions expanded, current and
planned disruptions), checks the answers, and stores them in one transaction in
``<data_dir>/ptv_timetable.sqlite`` (see :mod:`.storage`). A 400 or 403 fails the
run quoting the API's message and is not retried; 5xx and timeouts are retried by
the scheduler.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from interlock import events as ev
from interlock.components.ptv_timetable.tables import DATASET
from interlock.errors import TransientError, ValidationFailedError
from interlock.kit import ComponentContext, quarantine
from interlock.kit.change import DECIDED, because
from interlock.kit.quarantine_retention import prune_quarantine, quarantine_keep
from interlock.kit.tables import Database
from interlock.outcome import Outcome

if TYPE_CHECKING:
    from interlock.components.ptv_timetable.client import PtvClient
    from interlock.components.ptv_timetable.model import Poll

# The signed client, the reply model and the store are imported where an instance or a
# run uses them: `plan`, `check-config` and `schema` need only the class.

#: The default ``archive_keep``: two days of 15-minute polls (a poll that saw nothing new
#: is archived once).
ARCHIVE_KEEP = 192

EXPAND = ["Stop", "Route", "Run", "Direction", "Disruption", "VehiclePosition"]
EXPAND_VALUES = [*EXPAND, "All", "VehicleDescriptor"]
ROUTE_TYPES = {"type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": True}

SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["base_url", "devid", "api_key"],
    "properties": {
        "base_url": {"type": "string", "pattern": "^https?://"},
        "devid": {"type": "string", "minLength": 1},
        "api_key": {"type": "string", "minLength": 1},
        "route_types": {"type": "boolean"},
        "routes": {
            "oneOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"route_types": ROUTE_TYPES},
                },
            ]
        },
        "departures": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["route_type", "stop_id"],
                "properties": {
                    "route_type": {"type": "integer", "minimum": 0},
                    "stop_id": {"type": "integer", "minimum": 0},
                    "route_id": {"type": "integer", "minimum": 0},
                    "max_results": {"type": "integer", "minimum": 1, "maximum": 100},
                },
            },
        },
        "expand": {
            "type": "array",
            "items": {"enum": EXPAND_VALUES},
            "uniqueItems": True,
        },
        "disruptions": {
            "oneOf": [
                {"type": "boolean"},
                {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "statuses": {
                            "type": "array",
                            "items": {"enum": ["current", "planned"]},
                            "uniqueItems": True,
                            "minItems": 1,
                        },
                        "route_types": ROUTE_TYPES,
                    },
                },
            ]
        },
        "request_timeout_s": {"type": "number", "exclusiveMinimum": 0},
        "max_response_bytes": {
            "type": "integer",
            "minimum": 1,
            "description": "The largest reply read, in bytes (default 16 MiB; real replies "
            "are at most a few hundred KB). A larger one fails the run, naming the endpoint.",
        },
        "max_concurrent_requests": {"type": "integer", "minimum": 1, "maximum": 16},
        "keep_runs_days": {"type": "number", "exclusiveMinimum": 0},
        "archive_keep": {
            "type": "integer",
            "minimum": 1,
            "description": "How many polls' answer bundles the raw archive keeps "
            f"(default {ARCHIVE_KEEP}); interlock replay re-parses them.",
        },
    },
}

Params = list[tuple[str, str | int]]
# (kind, path, params, route_type) of one API call.
Request = tuple[str, str, Params, int | None]


class PtvTimetableComponent:
    """Polls the PTV Timetable API; see the module docstring."""

    settings_schema: ClassVar[dict[str, Any] | None] = SETTINGS_SCHEMA
    #: ``interlock replay`` rebuilds the dataset from the archived bundles (:mod:`.replay`).
    replays: ClassVar[bool] = True
    #: What ``interlock schema`` documents for this component's dataset.
    dataset_schema: ClassVar[Database] = DATASET

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        from interlock.components.ptv_timetable.client import MAX_RESPONSE_BYTES

        self.name = name
        self.settings = settings
        self.expand = list(settings.get("expand", EXPAND))
        self.timeout_s = float(settings.get("request_timeout_s", 30))
        self.max_response_bytes = int(settings.get("max_response_bytes", MAX_RESPONSE_BYTES))
        self.parallel = int(settings.get("max_concurrent_requests", 4))
        self.keep_runs = timedelta(days=float(settings.get("keep_runs_days", 7)))
        self.archive_keep = int(settings.get("archive_keep", ARCHIVE_KEEP))

    def requests(self) -> list[Request]:
        """(kind, path, params, route_type) for every call one poll makes, in order."""
        s = self.settings
        out: list[Request] = []
        if s.get("route_types", True):
            out.append(("route_types", "/v3/route_types", [], None))
        routes = s.get("routes", True)
        if routes:
            types = routes.get("route_types", []) if isinstance(routes, dict) else []
            out.append(("routes", "/v3/routes", [("route_types", t) for t in types], None))
        for dep in s.get("departures", []):
            path = f"/v3/departures/route_type/{dep['route_type']}/stop/{dep['stop_id']}"
            if "route_id" in dep:
                path += f"/route/{dep['route_id']}"
            params: Params = [("max_results", dep.get("max_results", 5))]
            params += [("expand", e) for e in self.expand]
            out.append(("departures", path, params, dep["route_type"]))
        disruptions = s.get("disruptions", True)
        if disruptions:
            spec = disruptions if isinstance(disruptions, dict) else {}
            for status in spec.get("statuses", ["current", "planned"]):
                params = [("route_types", t) for t in spec.get("route_types", [])]
                params.append(("disruption_status", status))
                out.append(("disruptions", "/v3/disruptions", params, None))
        return out

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Poll, check, store in one transaction (or quarantine the answers)."""
        from interlock.components.ptv_timetable.client import PtvClient
        from interlock.components.ptv_timetable.storage import write_poll

        if ctx.replay is not None:  # `interlock replay`: the stored polls, from the archive
            return await self._replay(ctx)
        client = PtvClient(
            ctx.services["http"],
            base_url=self.settings["base_url"],
            devid=self.settings["devid"],
            api_key=self.settings["api_key"],
            timeout_s=self.timeout_s,
            max_response_bytes=self.max_response_bytes,
            to_thread=ctx.to_thread,
        )
        plan = self.requests()
        answers, replies = await self._fetch_all(client, plan)
        try:
            poll = self._collect(plan, answers)
        except ValidationFailedError as exc:
            self._reject(ctx, plan, answers, exc.report, str(exc))
            raise
        stats = poll.stats()
        report: dict[str, Any] = {
            "stats": stats,
            "requests": len(plan),
            "problems": dict(poll.problems),
            "examples": poll.examples,
            "record_counts": {
                "departures": len(poll.departures),
                "disruptions": len(poll.disruptions),
                "runs": len(poll.runs),
                "stops": len(poll.stops),
                "routes": len(poll.routes),
            },
        }
        problems = ctx.judge_quality(stats, report)
        if problems:
            message = "data quality failed: " + "; ".join(problems)
            if poll.examples:
                message += f" (first: {poll.examples[0]})"
            self._reject(ctx, plan, answers, report, message)
            raise ValidationFailedError(message, report=report)

        fingerprint = poll.fingerprint()
        db = ctx.data_dir / f"{self.name}.sqlite"
        changed = (
            ctx.skip_change_detection
            or not db.exists()
            or ctx.previous.memory.get("fingerprint") != fingerprint
        )
        bundle = await ctx.to_thread(self._archive, ctx, plan, replies)
        poll_id = await ctx.to_thread(
            write_poll,
            db,
            poll,
            run_id=ctx.run_id,
            polled_at=ctx.clock(),
            requests=len(plan),
            fingerprint=fingerprint,
            changed=changed,
            keep_runs=self.keep_runs,
            bundle_sha256=bundle,
        )
        ctx.remember({"fingerprint": fingerprint, "poll_id": poll_id, "records": stats["records"]})
        metrics: dict[str, Any] = {"api_calls": client.calls}
        if not changed:
            by = "response fingerprint"
            ctx.remember({**(ctx.remembered or {}), DECIDED: by})
            metrics["change_detection"] = {"decided_by": by, "methods": [by]}
            return Outcome.unchanged(
                fingerprint=fingerprint,
                reason=because(by, "the API's answers are the same as at the last poll"),
                quality=report,
                metrics=metrics,
            )
        ctx.log.info(
            "ptv_poll_stored",
            path=str(db),
            poll_id=poll_id,
            departures=len(poll.departures),
            disruptions=len(poll.disruptions),
            api_calls=client.calls,
        )
        return Outcome.published(
            records=stats["records"], fingerprint=fingerprint, quality=report, metrics=metrics
        )

    @staticmethod
    def _collect(plan: list[Request], answers: list[dict[str, Any]]) -> Poll:
        from interlock.components.ptv_timetable.model import Poll

        poll = Poll()
        for (kind, path, _params, route_type), doc in zip(plan, answers, strict=True):
            where = f"PTV {path}"
            if kind == "route_types":
                poll.add_route_types(where, doc)
            elif kind == "routes":
                poll.add_routes(where, doc)
            elif kind == "departures":
                assert route_type is not None
                poll.add_departures(where, doc, route_type)
            else:
                poll.add_disruptions(where, doc)
        return poll

    def _archive(
        self, ctx: ComponentContext, plan: list[Request], replies: list[tuple[int, bytes]]
    ) -> str:
        """The poll's answers as one bundle in the raw archive; its SHA-256."""
        from interlock.components.ptv_timetable.bundle import SUFFIX, write_bundle
        from interlock.kit import RawArchive

        staging = ctx.data_dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        file = staging / f"{self.name}-{ctx.run_id}{SUFFIX}"
        try:
            sha = write_bundle(file, plan, replies)
            RawArchive(ctx.data_dir / "raw", keep=self.archive_keep).store(
                self.name, sha, file, SUFFIX
            )
        finally:
            file.unlink(missing_ok=True)
        return sha

    async def _replay(self, ctx: ComponentContext) -> Outcome:
        """Rebuild the stored polls from their archived bundles: no network, no quota.

        The newest poll, parsed again, passes the quality gate before anything is written.
        """
        from interlock.components.ptv_timetable import replay

        assert ctx.replay is not None
        db = ctx.data_dir / f"{self.name}.sqlite"
        raw = ctx.data_dir / "raw" / self.name
        polls, full = await ctx.to_thread(replay.polls_to_replay, db, raw, ctx.replay.since)
        parsed = await ctx.to_thread(replay.parse_polls, raw, polls, self._collect)
        stats, problems_seen = parsed[-1].stats(), dict(parsed[-1].problems)
        report = {"stats": stats, "replayed_polls": len(polls), "problems": problems_seen}
        problems = ctx.judge_quality(stats, report)
        if problems:
            message = "data quality failed: " + "; ".join(problems)
            raise ValidationFailedError(f"{message}; nothing was replayed", report=report)
        fingerprint = await ctx.to_thread(replay.rebuild, db, polls, parsed, full, self.keep_runs)
        poll_id = polls[-1][0]
        ctx.remember({"fingerprint": fingerprint, "poll_id": poll_id, "records": stats["records"]})
        ctx.log.info("ptv_replayed", polls=len(polls), from_scratch=full, poll_id=poll_id)
        return Outcome.published(
            records=stats["records"], fingerprint=fingerprint, quality={"passed": True, **report}
        )

    async def _fetch_all(
        self, client: PtvClient, plan: list[Request]
    ) -> tuple[list[dict[str, Any]], list[tuple[int, bytes]]]:
        """Every answer parsed, and its (status, exact bytes) for the archive."""
        gate = asyncio.Semaphore(self.parallel)

        async def one(path: str, params: Params) -> tuple[dict[str, Any], int, bytes]:
            async with gate:
                return await client.fetch(path, params)

        calls: list[Coroutine[Any, Any, tuple[dict[str, Any], int, bytes]]] = [
            one(p, q) for _, p, q, _ in plan
        ]
        tasks: list[asyncio.Task[tuple[dict[str, Any], int, bytes]]] = []
        try:
            async with asyncio.TaskGroup() as tg:
                for i, c in enumerate(calls):
                    tasks.append(tg.create_task(c, name=f"ptv request {i}"))
        except* Exception as group:
            # The scheduler classifies one error, not a group: a refusal (403) outranks a
            # transient failure, since retrying cannot fix it.
            errors = list(group.exceptions)
            lasting = [e for e in errors if not isinstance(e, TransientError)]
            raise (lasting or errors)[0] from None
        results = [t.result() for t in tasks]
        return [r[0] for r in results], [(r[1], r[2]) for r in results]

    def _reject(
        self,
        ctx: ComponentContext,
        plan: list[Request],
        answers: list[dict[str, Any]],
        report: dict[str, Any],
        reason: str,
    ) -> None:
        if not ctx.config.data_quality.get("quarantine_failed_data", True):
            return
        staging = ctx.data_dir / ".staging"
        staging.mkdir(parents=True, exist_ok=True)
        payload = staging / f"{self.name}-{ctx.run_id}.json"
        # Paths only: the queries would carry the devid and the signature.
        bundle = [{"path": p[1], "answer": a} for p, a in zip(plan, answers, strict=True)]
        payload.write_text(json.dumps(bundle))
        try:
            folder = quarantine(ctx.data_dir, self.name, payload, report, reason)
        finally:
            Path(payload).unlink(missing_ok=True)
        prune_quarantine(ctx.data_dir, self.name, quarantine_keep(ctx.config.data_quality))
        ctx.emit(
            ev.ComponentQuarantined(
                run_id=ctx.run_id, component=self.name, path=str(folder), reason=reason
            )
        )
