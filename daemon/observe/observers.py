"""Starts and stops the monitoring subscribers: thresholds, notifications, Prometheus metrics.

Kept apart from ``app.py`` so the orchestrator only says when they start and stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from interlock.errors import ConfigError
from interlock.events import EventBus
from interlock.observe.monitor import Monitor, thresholds_for
from interlock.store.abc import ComponentState

if TYPE_CHECKING:
    # Imported when enabled: prometheus-client and the SMTP client cost memory that a
    # daemon without metrics or alerting should not pay.
    from interlock.observe.metrics import Metrics, MetricsServer
    from interlock.observe.notify import Notifier

log = structlog.get_logger("interlock.observers")


class Observers:
    """The monitor, notifier and metrics subscribers of one orchestrator."""

    def __init__(
        self,
        config_of: Callable[[], Any],
        bus: EventBus,
        store: Any,
        services: Mapping[str, Any],
        clock: Callable[[], datetime],
        scheduler: Any = None,
    ) -> None:
        self.config_of = config_of
        self.scheduler = scheduler  # for /readyz; None: ready whenever live
        self.bus = bus
        self.store = store
        self.services = services
        self.clock = clock
        self.monitor: Monitor | None = None
        self.notifier: Notifier | None = None
        self.metrics: Metrics | None = None
        self.metrics_server: MetricsServer | None = None
        self._metrics_listen: str | None = None  # where metrics_server listens, as configured
        self._alerting: Any = {}  # the alerting settings the notifier was built from
        self._closing: set[asyncio.Task[None]] = set()  # replaced notifiers delivering the rest
        self._swapped: asyncio.Event | None = None  # set once a rebuilt notifier is in place

    async def start(self, states: Mapping[str, ComponentState]) -> None:
        """Subscribe what the config enables; the metrics server binds its port here."""
        config = self.config_of()
        monitoring = config.monitoring
        if not monitoring.get("enabled", True):
            return
        window = max(
            [thresholds_for(monitoring, n).success_rate_window for n in config.components] or [20]
        )
        recent = await self.store.recent_outcomes(window)
        from interlock.observe.notify.notifier import META_KEY
        from interlock.observe.notify.policy import AlertBook

        # The join breaches the notification dedup store holds open survive a restart.
        book = AlertBook.from_json(await self.store.get_meta(META_KEY))
        self.monitor = Monitor(
            self.config_of, self.bus.publish, recent, book.open_until_recovered()
        )
        self.bus.subscribe("monitor", self.monitor.handle)

        self.bus.subscribe("notify", self._notify)
        await self._build_notifier()
        metrics_cfg = monitoring.get("metrics") or {}
        if metrics_cfg.get("enabled"):
            await self._serve_metrics(metrics_cfg.get("listen", "127.0.0.1:9464"), states)

    async def _notify(self, batch: Any) -> None:
        # Subscribed once; the notifier behind it is rebuilt when a reload changes alerting,
        # and what happens meanwhile waits for the new one (the new config's targets).
        if self._swapped is not None:
            await self._swapped.wait()
        if self.notifier is not None:
            await self.notifier.handle(batch)

    async def _build_notifier(self) -> None:
        """The notifier of the current alerting settings (None when off or channel-less)."""
        alerting = self.config_of().monitoring.get("alerting") or {}
        self._alerting = alerting
        for channel in ("email", "slack"):
            reason = (alerting.get(channel) or {}).get("disabled_reason")
            if alerting.get("enabled") and reason:
                log.warning("notification_channel_disabled", channel=channel, reason=reason)
        if not alerting.get("enabled"):
            self.notifier = None
            return
        http = self.services["http"]
        from interlock.observe.notify import Notifier, build_channels

        channels = build_channels(alerting, lambda: http.session)
        if not channels:
            log.warning("alerting_without_channels", detail="configure email or slack")
            self.notifier = None
            return
        notifier = Notifier(
            self.config_of, channels, store=self.store, publish=self.bus.publish, clock=self.clock
        )
        await notifier.open()
        self.notifier = notifier

    async def _serve_metrics(self, listen: str, states: Mapping[str, ComponentState]) -> None:
        """Serve metrics on ``listen``; the server already serving stops only once the new one
        listens (ConfigError when it cannot bind, the old one kept)."""
        from interlock.observe.health import Readiness
        from interlock.observe.metrics import Metrics, MetricsServer

        if self.metrics is None:

            def datasets(name: str) -> tuple[str, ...]:
                spec = self.config_of().components.get(name)
                return spec.provides if spec is not None else ()

            self.metrics = Metrics(quota=lambda: self.services.get("quota"), datasets=datasets)
            self.metrics.load_states(states)
            self.bus.subscribe("metrics", self.metrics.handle)
            sampler = self.services.get("monitor")
            if sampler is not None:  # every response time reaches the histogram
                sampler.call_listeners.append(self.metrics.observe_calls)
        ready = None
        if self.scheduler is not None:
            ready = Readiness(self.scheduler, self.store, self.clock).check
        server = MetricsServer(self.metrics, listen, ready=ready)
        await server.start()
        old, self.metrics_server, self._metrics_listen = self.metrics_server, server, listen
        if old is not None:
            await old.aclose()

    async def reconfigure(self, rebuilt: list[str], failed: list[dict[str, str]]) -> None:
        """Rebuild what the current config changed: the notifier, the metrics listener.

        Appends the names of the parts rebuilt to ``rebuilt`` and ``{"part", "error"}`` for
        each that could not be (it keeps serving as before).
        """
        monitoring = self.config_of().monitoring
        if self.monitor is None or not monitoring.get("enabled", True):
            return  # started without monitoring: nothing subscribed to rebuild
        if (monitoring.get("alerting") or {}) != self._alerting:
            old, built_from, self._swapped = self.notifier, self._alerting, asyncio.Event()
            try:
                await self._build_notifier()
            except Exception as exc:  # the store would not give the dedup book: keep the old
                self.notifier, self._alerting = old, built_from
                failed.append({"part": "alerting", "error": str(exc) or type(exc).__name__})
                log.error("alerting_rebuild_failed", error=str(exc) or type(exc).__name__)
                old = None
            else:
                rebuilt.append("alerting")
            finally:
                self._swapped.set()
                self._swapped = None
            if old is not None:  # what it queued still goes out, bounded, off the reply
                task = asyncio.create_task(old.aclose(), name="close replaced notifier")
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)
        metrics_cfg = monitoring.get("metrics") or {}
        listen = metrics_cfg.get("listen", "127.0.0.1:9464") if metrics_cfg.get("enabled") else None
        if listen == self._metrics_listen:
            return
        try:
            if listen is None:
                server, self.metrics_server, self._metrics_listen = self.metrics_server, None, None
                if server is not None:
                    await server.aclose()
            else:
                states = self.scheduler.states if self.scheduler is not None else {}
                await self._serve_metrics(listen, states)
        except ConfigError as exc:
            failed.append({"part": "metrics listener", "error": str(exc)})
            log.error("metrics_rebuild_failed", error=str(exc), keeping=self._metrics_listen)
            return
        rebuilt.append("metrics listener")

    async def aclose(self) -> None:
        """Deliver what is queued (bounded) and stop serving. Idempotent."""
        if self.notifier is not None:
            notifier, self.notifier = self.notifier, None
            await notifier.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self.metrics_server is not None:
            server, self.metrics_server = self.metrics_server, None
            await server.aclose()
        sampler = self.services.get("monitor")
        if self.metrics is not None and sampler is not None:
            listeners = sampler.call_listeners
            if self.metrics.observe_calls in listeners:
                listeners.remove(self.metrics.observe_calls)
