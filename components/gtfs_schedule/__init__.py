"""The GTFS schedule: the component (``component.py``) beside its library: safe zip opening,
streaming CSV, validation with MobilityData's notice codes, and the SQLite loader.

The library is synchronous (it runs in a worker thread); imports only ``interlock.kit``,
``interlock.config`` and the shared leaves.
"""
