"""Prometheus metrics: an event-bus subscriber feeding a private registry, served on loopback.

``performance_monitoring.metrics`` = ``{"enabled": true, "listen": "127.0.0.1:9464"}``
serves ``/metrics`` (prometheus-client's handler: text or OpenMetrics, gzip) beside
``/healthz`` and ``/readyz`` (:mod:`.health`). Quota figures are read from the quota
guard at scrape time, so they are never stale. As on the dashboard, a request whose
Host is not this machine gets 421, so a DNS-rebinding page cannot read it. Labels are
configured names only (components, endpoints, datasets), so series stay bounded.
"""

from __future__ import annotations

import ipaddress
import platform
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.aiohttp import make_aiohttp_handler
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from interlock import events as ev
from interlock.config.dashboard import host_allowed
from interlock.errors import ConfigError
from interlock.store.abc import ComponentState

log = structlog.get_logger("interlock.metrics")

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
#: API response times: a JSON answer in tens of ms up to a large zip in minutes.
API_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: A GTFS-realtime rule id (bounds the ``rule`` label to the validator's 61).
_RULE = re.compile(r"[EW]\d{3}")

# ``_created`` series double every counter and histogram for a start time no dashboard
# uses; the process start time is already process_start_time_seconds.
disable_created_metrics()


def interlock_version() -> str:
    try:
        return version("interlock")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6); only loopback addresses are accepted."""
    host, sep, port = listen.rpartition(":")
    host = host.strip("[]")
    problem = None
    if not sep or not port.isdigit():
        problem = "is not host:port"
    elif host != "localhost":
        try:
            if not ipaddress.ip_address(host).is_loopback:
                problem = "is not a loopback address"
        except ValueError:
            problem = "is not an IP address"
    if problem:
        raise ConfigError(
            "performance_monitoring.metrics.listen",
            [
                f"$.performance_monitoring.metrics.listen: {listen!r} {problem}; metrics are "
                "served on loopback only (e.g. '127.0.0.1:9464'); expose them through a proxy"
            ],
        )
    return host, int(port)


class _QuotaCollector(Collector):
    """Quota used and left today, read from the quota guard at scrape time."""

    def __init__(self, quota: Callable[[], Any]) -> None:
        self.quota = quota

    def collect(self) -> Iterator[GaugeMetricFamily]:
        guard = self.quota()
        if guard is None or not hasattr(guard, "describe"):
            return
        try:
            doc = guard.describe()
        except Exception as exc:  # a scrape must not fail because the guard did
            log.warning("quota_describe_failed", error=repr(exc))
            return
        used = GaugeMetricFamily("interlock_quota_used_calls", "API calls used today")
        used.add_metric([], float(doc.get("used", 0)))
        left = GaugeMetricFamily("interlock_quota_left_calls", "API calls left today")
        left.add_metric([], float(doc.get("left", 0)))
        limit = GaugeMetricFamily("interlock_quota_daily_limit_calls", "Daily API call budget")
        limit.add_metric([], float(doc.get("daily_limit", 0)))
        yield from (used, left, limit)


class Metrics:
    """The registry and the subscriber that feeds it."""

    def __init__(
        self,
        quota: Callable[[], Any] = lambda: None,
        datasets: Callable[[str], Sequence[str]] = lambda name: (name,),
    ) -> None:
        self.datasets = datasets
        self.registry = CollectorRegistry()
        r = self.registry
        Info("interlock_build", "The running interlock", registry=r).info(
            {"version": interlock_version(), "python": platform.python_version()}
        )
        self.runs = Counter(
            "interlock_component_runs",
            "Component runs by outcome",
            ["component", "outcome"],
            registry=r,
        )
        self.duration = Histogram(
            "interlock_component_duration_seconds",
            "Wall time of component runs",
            ["component"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.records = Counter(
            "interlock_component_records", "Records published", ["component"], registry=r
        )
        self.peak_rss = Gauge(
            "interlock_component_peak_rss_bytes",
            "Peak process RSS during the component's last run",
            ["component"],
            registry=r,
        )
        self.api_calls = Counter(
            "interlock_api_calls",
            "API calls by component and endpoint",
            ["component", "endpoint"],
            registry=r,
        )
        self.api_seconds = Histogram(
            "interlock_api_response_seconds",
            "API response times by component and endpoint name",
            ["component", "endpoint"],
            buckets=API_BUCKETS,
            registry=r,
        )
        self.feed_header = Gauge(
            "interlock_feed_header_timestamp_seconds",
            "Header timestamp of the newest realtime feed fetched (unix time)",
            ["component", "endpoint"],
            registry=r,
        )
        self.join_ratio = Gauge(
            "interlock_realtime_join_ratio",
            "Share (0-1) of a realtime feed's distinct ids (kind: trip, route, stop) found in "
            "the schedule in force, at its newest stored poll",
            ["component", "endpoint", "kind"],
            registry=r,
        )
        self.rule_notices = Counter(
            "interlock_realtime_rule_notices",
            "Notices of the GTFS-realtime validation rules (rule: E001-E052, W001-W009) "
            "raised on stored realtime feeds, summed over polls",
            ["component", "endpoint", "rule", "severity"],
            registry=r,
        )
        self.last_success = Gauge(
            "interlock_component_last_success_timestamp_seconds",
            "When the component last published new data (unix time; unchanged runs not counted)",
            ["component"],
            registry=r,
        )
        self.last_checked = Gauge(
            "interlock_component_last_checked_timestamp_seconds",
            "When the component last confirmed its data current: published or unchanged",
            ["component"],
            registry=r,
        )
        self.published = Gauge(
            "interlock_dataset_published_timestamp_seconds",
            "When each dataset was last published (unix time)",
            ["component", "dataset"],
            registry=r,
        )
        self.breaches = Counter(
            "interlock_threshold_breaches",
            "Threshold breaches",
            ["component", "metric"],
            registry=r,
        )
        self.notifications = Counter(
            "interlock_notifications",
            "Notifications by channel and result",
            ["channel", "result"],
            registry=r,
        )
        ProcessCollector(registry=r)
        r.register(_QuotaCollector(quota))

    def load_states(self, states: Mapping[str, ComponentState]) -> None:
        """Start the success, check and dataset gauges from the stored component states."""
        for name, state in states.items():
            if state.last_success_at is not None:
                self.last_checked.labels(name).set(state.last_success_at.timestamp())
            if state.published_at is not None:
                self._published(name, state.published_at.timestamp())

    def _published(self, component: str, at: float) -> None:
        self.last_success.labels(component).set(at)
        for dataset in self.datasets(component) or (component,):
            self.published.labels(component, dataset).set(at)

    def observe_calls(self, component: str, calls: Mapping[str, Sequence[float]]) -> None:
        """Every response time of a finished run, into the histogram (a sampler listener)."""
        for endpoint, times in calls.items():
            histogram = self.api_seconds.labels(component, endpoint)
            for seconds in times:
                histogram.observe(seconds)

    async def handle(self, batch: Sequence[ev.Event]) -> None:
        """The bus handler."""
        for e in batch:
            if isinstance(e, ev.ComponentFinished):
                self._finished(e)
            elif isinstance(e, ev.ComponentSkipped):
                self.runs.labels(e.component, "skipped").inc()
            elif isinstance(e, ev.ThresholdBreached):
                self.breaches.labels(e.component, e.metric).inc()
            elif isinstance(e, ev.NotificationSent):
                self.notifications.labels(e.channel, "sent").inc()
            elif isinstance(e, ev.NotificationFailed):
                self.notifications.labels(e.channel, "failed").inc()

    def _finished(self, e: ev.ComponentFinished) -> None:
        c = e.component
        self.runs.labels(c, e.status).inc()
        self.duration.labels(c).observe(e.duration_s)
        if e.status in ("succeeded", "unchanged"):
            self.last_checked.labels(c).set(e.at.timestamp())
        if e.status == "succeeded":
            self._published(c, e.at.timestamp())
        if e.records:
            self.records.labels(c).inc(e.records)
        m = e.metrics or {}
        if isinstance(m.get("peak_rss_mb"), int | float):
            self.peak_rss.labels(c).set(m["peak_rss_mb"] * (1 << 20))
        for endpoint, a in (m.get("api") or {}).items():
            self.api_calls.labels(c, endpoint).inc(a.get("calls", 0))
        endpoints = m.get("endpoints")
        for endpoint, doc in (endpoints if isinstance(endpoints, dict) else {}).items():
            stamp = doc.get("header_timestamp") if isinstance(doc, dict) else None
            if isinstance(stamp, int | float) and not isinstance(stamp, bool):
                self.feed_header.labels(c, endpoint).set(stamp)
            rules = doc.get("rt_rules") if isinstance(doc, dict) else None
            for rule, n in (rules if isinstance(rules, dict) else {}).items():
                if _RULE.fullmatch(str(rule)) and isinstance(n, int) and n > 0:
                    severity = "error" if rule[0] == "E" else "warning"
                    self.rule_notices.labels(c, endpoint, rule, severity).inc(n)
        joins = m.get("joins")
        for endpoint, kinds in (joins if isinstance(joins, dict) else {}).items():
            for kind, j in (kinds if isinstance(kinds, dict) else {}).items():
                ids = j.get("ids") if isinstance(j, dict) else None
                if isinstance(ids, int) and ids > 0 and isinstance(j.get("joined"), int):
                    self.join_ratio.labels(c, endpoint, kind).set(j["joined"] / ids)


class MetricsServer:
    """``/metrics``, ``/healthz``, ``/readyz`` on loopback; ``port`` is the bound port.

    ``ready`` answers ``/readyz`` (``{"ready": bool, "checks": ...}``); without it the
    daemon is ready whenever it is live.
    """

    def __init__(
        self,
        metrics: Metrics,
        listen: str,
        ready: Callable[[], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.metrics = metrics
        self.ready = ready
        self._was_ready = True
        self.host, self.port = parse_listen(listen)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[self._host_check])
        app.router.add_get("/metrics", make_aiohttp_handler(self.metrics.registry))
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(
                "performance_monitoring.metrics.listen",
                [
                    f"$.performance_monitoring.metrics.listen: cannot listen on "
                    f"{self.host}:{self.port}: {exc.strerror or exc}; pick a free port"
                ],
            ) from None
        self._runner = runner
        if self.port == 0:
            for address in runner.addresses:  # the port the kernel picked
                self.port = int(address[1])
                break
        log.info("metrics_listening", host=self.host, port=self.port)

    @web.middleware
    async def _host_check(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if not host_allowed(host, self.host):
            log.warning("metrics_refused", reason="host", host=host[:100], remote=request.remote)
            return web.json_response(
                {
                    "ok": False,
                    "error": {
                        "code": "host_not_allowed",
                        "message": f"host {host[:100]!r} is not this machine's loopback address",
                    },
                },
                status=421,
            )
        return await handler(request)

    async def _healthz(self, request: web.Request) -> web.Response:
        # Liveness: answering at all means the event loop is turning.
        return web.json_response({"ok": True})

    async def _readyz(self, request: web.Request) -> web.Response:
        if self.ready is None:
            return web.json_response({"ready": True, "checks": {}})
        try:
            doc = await self.ready()
        except Exception as exc:  # a failing check is an unready daemon, not a 500
            log.warning("readiness_check_failed", error=repr(exc))
            doc = {"ready": False, "checks": {"readiness": [f"{type(exc).__name__}: {exc}"]}}
        if doc["ready"] != self._was_ready:  # log changes, not every probe
            self._was_ready = doc["ready"]
            problems = [p for v in doc["checks"].values() if v != "ok" for p in v]
            (log.info if doc["ready"] else log.warning)("readiness_changed", problems=problems)
        return web.json_response(doc, status=200 if doc["ready"] else 503)

    async def aclose(self) -> None:
        """Stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
