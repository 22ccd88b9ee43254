"""The operator dashboard: one live web page served by ``interlock serve`` on loopback.

:mod:`.settings` reads ``performance_monitoring.dashboard`` (imported by the config
checks, so it stays free of aiohttp); :mod:`.server` is the aiohttp application.
"""
