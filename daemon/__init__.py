"""interlock: the orchestrator daemon that keeps Victoria's public-transport open data fresh.

Rooms, top to bottom (a module imports only from rooms below its own): ``cli`` ->
``service`` -> ``observe`` -> ``core`` -> ``kit`` -> ``store`` -> ``config`` -> the shared
leaves (``errors``, ``events``, ``delivery``, ``outcome``, ``cadence``, ``graph``,
``secrets``).
Components (``interlock.components``) import only ``kit``, ``config`` and the leaves.
"""
