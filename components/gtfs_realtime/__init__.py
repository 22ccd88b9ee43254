"""GTFS-realtime feeds: the polling component and the decoding of feeds into table rows.

Imports only ``interlock.kit``, ``interlock.config`` and the shared leaves.
"""
