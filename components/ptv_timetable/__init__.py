"""The PTV Timetable API v3: the component beside request signing, the signed client,
the reply model and the SQLite store. Imports only ``interlock.kit``, ``interlock.config``
and the shared leaves.
"""
