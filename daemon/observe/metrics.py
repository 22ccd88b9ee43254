"""Prometheus metrics: an event-bus subscriber feeding a private registry, served on loopback.

``performance_monitoring.metrics`` = ``{"enabled": true, "listen": "127.0.0.1:9464"}``
serves ``/metrics`` in the text exposition format. Quota figures are read from the
quota guard at scrape time, so they are never stale. As on the dashboard, a request
whose Host is not this machine gets 421, so a DNS-rebinding page cannot read it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from interlock import events as ev
from interlock.config.dashboard import host_allowed
from interlock.errors import ConfigError
from interlock.store.abc import ComponentState

log = structlog.get_logger("interlock.metrics")

DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


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

    def __init__(self, quota: Callable[[], Any] = lambda: None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
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
        self.api_seconds = Counter(
            "interlock_api_response_seconds_sum",
            "Total API response time (divide by interlock_api_calls_total for the mean)",
            ["component", "endpoint"],
            registry=r,
        )
        self.api_last = Gauge(
            "interlock_api_response_seconds",
            "API response time in the component's last run",
            ["component", "endpoint", "quantile"],
            registry=r,
        )
        self.feed_age = Gauge(
            "interlock_feed_age_seconds",
            "Age of the newest realtime feed header when last fetched",
            ["component", "endpoint"],
            registry=r,
        )
        self.last_success = Gauge(
            "interlock_component_last_success_timestamp_seconds",
            "When the component last succeeded (unix time)",
            ["component"],
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
        """Start the last-success gauges from the stored component states."""
        for name, state in states.items():
            if state.last_success_at is not None:
                self.last_success.labels(name).set(state.last_success_at.timestamp())

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
            self.last_success.labels(c).set(e.at.timestamp())
        if e.records:
            self.records.labels(c).inc(e.records)
        m = e.metrics or {}
        if isinstance(m.get("peak_rss_mb"), int | float):
            self.peak_rss.labels(c).set(m["peak_rss_mb"] * (1 << 20))
        for endpoint, a in (m.get("api") or {}).items():
            self.api_calls.labels(c, endpoint).inc(a.get("calls", 0))
            self.api_seconds.labels(c, endpoint).inc(a.get("total_ms", 0) / 1e3)
            for q, key in (("0.5", "p50_ms"), ("0.95", "p95_ms"), ("1", "max_ms")):
                self.api_last.labels(c, endpoint, q).set(a.get(key, 0) / 1e3)
        for endpoint, age in (m.get("feed_age_s") or {}).items():
            if isinstance(age, int | float):
                self.feed_age.labels(c, endpoint).set(age)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``GET /metrics`` on a loopback address; ``port`` is the bound port (0 picks one)."""

    def __init__(self, metrics: Metrics, listen: str) -> None:
        self.metrics = metrics
        self.host, self.port = parse_listen(listen)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(middlewares=[self._host_check])
        app.router.add_get("/metrics", self._serve)
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

    async def _serve(self, request: web.Request) -> web.Response:
        body = self.metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def aclose(self) -> None:
        """Stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
