"""Performance monitoring: what each component run cost, and the thresholds it is held to.

The runner wraps every run in a :class:`RunProbe` from the shared
:class:`ResourceSampler` (one task samples RSS while any component runs, none when
idle); the figures go into the run's ``metrics``. :class:`Monitor` is an event-bus
subscriber that compares them with the configured thresholds and publishes
``threshold_breached`` events. A realtime feed whose ids stop joining its schedule
(``min_realtime_join_percentage``) is a state: one breach when it starts, one
``threshold_recovered`` when every endpoint joins again.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psutil
import structlog

from interlock import events as ev
from interlock.kit.http import CallStats

log = structlog.get_logger("interlock.monitor")

MB = 1 << 20
#: How often peak RSS is sampled while at least one component runs.
SAMPLE_INTERVAL_S = 0.05
#: A success rate is judged only once this many runs (or the whole window) are known.
MIN_RUNS_FOR_RATE = 5
OK_STATUSES = frozenset({"succeeded", "unchanged"})
COUNTED_STATUSES = frozenset({"succeeded", "unchanged", "failed", "timed_out"})


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return ordered[rank - 1]


def api_summary(calls: Mapping[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Calls and response times (ms) per endpoint: p50, p95, max and total."""
    return {
        endpoint: {
            "calls": len(times),
            "p50_ms": round(percentile(times, 50) * 1e3, 2),
            "p95_ms": round(percentile(times, 95) * 1e3, 2),
            "max_ms": round(max(times) * 1e3, 2),
            "total_ms": round(sum(times) * 1e3, 2),
        }
        for endpoint, times in calls.items()
        if times
    }


class RunProbe:
    """The measurements of one component run while it is in progress."""

    __slots__ = ("calls", "cpu0", "name", "overlapped", "peak_rss", "t0")

    def __init__(self, name: str, rss: int) -> None:
        self.name = name
        self.t0 = time.perf_counter()
        self.cpu0 = time.process_time()
        self.peak_rss = rss
        self.calls = CallStats(component=name)
        self.overlapped = False


class ResourceSampler:
    """Samples the process's RSS for every running component, from one shared task.

    The task exists only while components run, so an idle daemon never wakes for it.
    CPU time and RSS are the process's: when components overlap their figures
    include each other's work, and the run's metrics say ``overlapped``.
    """

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        #: Called with (component, {endpoint: [seconds, ...]}) as each run finishes:
        #: the metrics histogram sees every response time, history only the summary.
        self.call_listeners: list[Callable[[str, Mapping[str, Sequence[float]]], None]] = []
        self._process = psutil.Process()
        self._active: set[RunProbe] = set()
        self._task: asyncio.Task[None] | None = None
        self.last_rss = 0

    def start(self, name: str) -> RunProbe:
        """Begin measuring a run of ``name``."""
        probe = RunProbe(name, self.last_rss)
        if self._active:
            probe.overlapped = True
            for other in self._active:
                other.overlapped = True
        self._active.add(probe)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._sample(), name="resource sampler"
            )
        return probe

    def finish(
        self, probe: RunProbe, *, records: int, attempts: int, extra: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Stop measuring; the run's metrics (the component's own ``extra`` first)."""
        self._active.discard(probe)
        wall = time.perf_counter() - probe.t0
        out: dict[str, Any] = dict(extra) if extra else {}
        out["wall_s"] = round(wall, 6)
        out["cpu_s"] = round(time.process_time() - probe.cpu0, 6)
        out["peak_rss_mb"] = round(max(probe.peak_rss, self.last_rss) / MB, 1)
        out["retries"] = max(0, attempts - 1)
        if records and wall > 0:
            out["records_per_s"] = round(records / wall, 1)
        if probe.calls.calls:
            out["net_bytes"] = probe.calls.bytes_received
            out["api"] = api_summary(probe.calls.calls)
            out["api_busy_s"] = round(min(probe.calls.busy_s(), wall), 6)
            for listener in self.call_listeners:
                try:
                    listener(probe.name, probe.calls.calls)
                except Exception as exc:  # a metrics fault must not fail the run
                    log.warning("call_listener_failed", error=repr(exc))
        if probe.overlapped:
            out["overlapped"] = True
        return out

    async def _sample(self) -> None:
        try:
            while self._active:
                rss = self._process.memory_info().rss
                self.last_rss = rss
                for probe in self._active:
                    if rss > probe.peak_rss:
                        probe.peak_rss = rss
                await asyncio.sleep(self.interval_s)
        except psutil.Error as exc:
            log.warning("rss_sample_failed", error=repr(exc))
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Stop the sampling task. Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


# --- thresholds ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Thresholds:
    """The limits one component is held to (None: not checked)."""

    max_execution_time_minutes: float | None = None
    max_memory_mb: float | None = None
    max_api_response_ms: float | None = None
    min_success_rate_percentage: float | None = None
    success_rate_window: int = 20
    #: The least share of a realtime feed's trip, route or stop ids found in its schedule.
    min_realtime_join_percentage: float | None = 90.0


def thresholds_for(monitoring: Mapping[str, Any], component: str) -> Thresholds:
    """Global ``thresholds`` overlaid with ``component_thresholds[component]``."""
    merged = {
        **dict(monitoring.get("thresholds") or {}),
        **dict((monitoring.get("component_thresholds") or {}).get(component) or {}),
    }
    return Thresholds(**{k: v for k, v in merged.items() if k in Thresholds.__dataclass_fields__})


@dataclass(frozen=True, kw_only=True)
class Breach:
    """One limit exceeded: the metric, what was measured and the limit."""

    metric: str
    measured: float
    limit: float
    unit: str
    detail: str


def breaches(
    limits: Thresholds,
    status: str,
    duration_s: float,
    metrics: Mapping[str, Any] | None,
    recent: Sequence[bool],
) -> list[Breach]:
    """The limits a finished run exceeded; ``recent`` is the success window, newest last."""
    out: list[Breach] = []
    metrics = metrics or {}
    if limits.max_execution_time_minutes is not None:
        minutes = duration_s / 60.0
        if minutes > limits.max_execution_time_minutes:
            out.append(
                Breach(
                    metric="max_execution_time_minutes",
                    measured=round(minutes, 2),
                    limit=limits.max_execution_time_minutes,
                    unit="min",
                    detail=f"ran {minutes:.1f} min",
                )
            )
    peak = metrics.get("peak_rss_mb")
    if (
        limits.max_memory_mb is not None
        and isinstance(peak, int | float)
        and peak > limits.max_memory_mb
    ):
        out.append(
            Breach(
                metric="max_memory_mb",
                measured=peak,
                limit=limits.max_memory_mb,
                unit="MB",
                detail=f"peak memory (process RSS) {peak:g} MB",
            )
        )
    api = metrics.get("api")
    if limits.max_api_response_ms is not None and isinstance(api, dict):
        worst = max(api.items(), key=lambda kv: kv[1].get("max_ms", 0), default=None)
        if worst is not None and worst[1].get("max_ms", 0) > limits.max_api_response_ms:
            out.append(
                Breach(
                    metric="max_api_response_ms",
                    measured=worst[1]["max_ms"],
                    limit=limits.max_api_response_ms,
                    unit="ms",
                    detail=f"slowest response from {worst[0]}",
                )
            )
    if limits.min_success_rate_percentage is not None and status in COUNTED_STATUSES:
        need = min(limits.success_rate_window, MIN_RUNS_FOR_RATE)
        if len(recent) >= need and not recent[-1]:
            rate = 100.0 * sum(recent) / len(recent)
            if rate < limits.min_success_rate_percentage:
                out.append(
                    Breach(
                        metric="min_success_rate_percentage",
                        measured=round(rate, 1),
                        limit=limits.min_success_rate_percentage,
                        unit="%",
                        detail=f"{sum(recent)} of the last {len(recent)} runs succeeded",
                    )
                )
    return out


def join_levels(
    limit: float, metrics: Mapping[str, Any] | None
) -> dict[str, tuple[float, str] | None]:
    """Per endpoint measured in ``metrics["joins"]``: its lowest join percentage under
    ``limit`` with a sentence saying which ids, or None when every kind meets it."""
    joins = (metrics or {}).get("joins")
    out: dict[str, tuple[float, str] | None] = {}
    for endpoint, kinds in (joins if isinstance(joins, dict) else {}).items():
        low: tuple[float, str] | None = None
        for kind, j in (kinds if isinstance(kinds, dict) else {}).items():
            ids, joined = (j.get("ids"), j.get("joined")) if isinstance(j, dict) else (0, 0)
            if not isinstance(ids, int) or not isinstance(joined, int) or ids <= 0:
                continue
            percent = 100.0 * joined / ids
            if percent < limit and (low is None or percent < low[0]):
                low = (percent, f"{endpoint}: {joined} of {ids} {kind} ids are in the schedule")
        out[endpoint] = low
    return out


class Monitor:
    """Event-bus subscriber: checks each finished run against its thresholds."""

    def __init__(
        self,
        config_of: Callable[[], Any],
        publish: Callable[[ev.Event], None],
        recent: Mapping[str, Sequence[bool]] | None = None,
        low_joins: Iterable[str] = (),
    ) -> None:
        self.config_of = config_of
        self.publish = publish
        self._windows: dict[str, deque[bool]] = {
            name: deque(values) for name, values in (recent or {}).items()
        }
        # Thresholds per component, rebuilt when the config (a reload) changes.
        self._limits: dict[str, Thresholds] = {}
        self._limits_of: object = None
        # component -> endpoint -> (percent, detail): feeds under their join threshold.
        # ``low_joins``: components whose join breach the notification store holds open
        # from before a restart; their placeholder endpoint "" goes at the first measure.
        self._low_joins: dict[str, dict[str, tuple[float, str]]] = {
            name: {"": (0.0, "")} for name in low_joins
        }

    async def handle(self, batch: Sequence[ev.Event]) -> None:
        """The bus handler."""
        monitoring = self.config_of().monitoring
        if not monitoring.get("enabled", True):
            return
        for event in batch:
            if isinstance(event, ev.ComponentFinished) and event.status != "cancelled":
                self._check(event, monitoring)

    def _check(self, e: ev.ComponentFinished, monitoring: Mapping[str, Any]) -> None:
        if self._limits_of is not monitoring:
            self._limits, self._limits_of = {}, monitoring
        limits = self._limits.get(e.component)
        if limits is None:
            limits = self._limits[e.component] = thresholds_for(monitoring, e.component)
        window = self._windows.get(e.component)
        if window is None or window.maxlen != limits.success_rate_window:
            window = deque(window or (), maxlen=limits.success_rate_window)
            self._windows[e.component] = window
        if e.status in COUNTED_STATUSES:
            window.append(e.status in OK_STATUSES)
        for b in breaches(limits, e.status, e.duration_s, e.metrics, window):
            log.warning(
                "threshold_breached",
                component=e.component,
                metric=b.metric,
                measured=b.measured,
                limit=b.limit,
            )
            self.publish(
                ev.ThresholdBreached(
                    at=e.at,
                    run_id=e.run_id,
                    component=e.component,
                    metric=b.metric,
                    measured=b.measured,
                    limit=b.limit,
                    unit=b.unit,
                    detail=b.detail,
                )
            )
        if limits.min_realtime_join_percentage is not None:
            self._check_joins(e, limits.min_realtime_join_percentage)

    def _check_joins(self, e: ev.ComponentFinished, limit: float) -> None:
        measured = join_levels(limit, e.metrics)
        if not measured:
            return  # nothing stored or no schedule: no news either way
        low = self._low_joins.setdefault(e.component, {})
        was_low = bool(low)
        low.pop("", None)
        for endpoint, found in measured.items():
            if found is None:
                low.pop(endpoint, None)
            else:
                low[endpoint] = found
        if bool(low) == was_low:
            return
        metric = "min_realtime_join_percentage"
        if low:
            worst = min(p for p, _ in low.values())
            detail = "; ".join(d for _, d in sorted(low.values(), key=lambda v: v[1]))
            log.warning(
                "threshold_breached",
                component=e.component,
                metric=metric,
                measured=round(worst, 1),
                limit=limit,
            )
            self.publish(
                ev.ThresholdBreached(
                    at=e.at,
                    run_id=e.run_id,
                    component=e.component,
                    metric=metric,
                    measured=round(worst, 1),
                    limit=limit,
                    unit="%",
                    detail=detail,
                )
            )
        else:
            log.info("threshold_recovered", component=e.component, metric=metric)
            self.publish(
                ev.ThresholdRecovered(
                    at=e.at,
                    run_id=e.run_id,
                    component=e.component,
                    metric=metric,
                    measured=limit,
                    limit=limit,
                    unit="%",
                    detail=f"every endpoint's ids join its schedule again (at least {limit:g}%)",
                )
            )
