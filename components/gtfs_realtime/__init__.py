"""GTFS-realtime feeds: the polling component and one endpoint's poll, the checks a payload
must pass (``decode``), its table rows (``rows``) and the append dataset (``dataset``).

Imports only ``interlock.kit``, ``interlock.config`` and the shared leaves.
"""
