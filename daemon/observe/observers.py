"""Starts and stops the monitoring subscribers: thresholds, notifications, Prometheus metrics.

Kept apart from ``app.py`` so the orchestrator only says when they start and stop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

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
        self.monitor = Monitor(self.config_of, self.bus.publish, recent)
        self.bus.subscribe("monitor", self.monitor.handle)

        alerting = monitoring.get("alerting") or {}
        for channel in ("email", "slack"):
            reason = (alerting.get(channel) or {}).get("disabled_reason")
            if alerting.get("enabled") and reason:
                log.warning("notification_channel_disabled", channel=channel, reason=reason)
        if alerting.get("enabled"):
            http = self.services["http"]
            from interlock.observe.notify import Notifier, build_channels

            channels = build_channels(alerting, lambda: http.session)
            if channels:
                self.notifier = Notifier(
                    self.config_of,
                    channels,
                    store=self.store,
                    publish=self.bus.publish,
                    clock=self.clock,
                )
                await self.notifier.open()
                self.bus.subscribe("notify", self.notifier.handle)
            else:
                log.warning("alerting_without_channels", detail="configure email or slack")

        metrics_cfg = monitoring.get("metrics") or {}
        if metrics_cfg.get("enabled"):
            from interlock.observe.health import Readiness
            from interlock.observe.metrics import Metrics, MetricsServer

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
            self.metrics_server = MetricsServer(
                self.metrics, metrics_cfg.get("listen", "127.0.0.1:9464"), ready=ready
            )
            await self.metrics_server.start()

    async def aclose(self) -> None:
        """Deliver what is queued (bounded) and stop serving. Idempotent."""
        if self.notifier is not None:
            notifier, self.notifier = self.notifier, None
            await notifier.aclose()
        if self.metrics_server is not None:
            server, self.metrics_server = self.metrics_server, None
            await server.aclose()
        sampler = self.services.get("monitor")
        if self.metrics is not None and sampler is not None:
            listeners = sampler.call_listeners
            if self.metrics.observe_calls in listeners:
                listeners.remove(self.metrics.observe_calls)
