"""Watching the daemon: logs, resource monitoring, metrics, notifications, reports, the dashboard.

Event-bus subscribers and read-only views; may import ``core``, ``kit``, ``store``, ``config``
and the leaves, never ``service`` or ``cli``.
"""
