"""GTFS-realtime feeds: the polling component and one endpoint's poll, the checks a payload
must pass (``decode``, reading the message's framing with ``frame``), its table rows
(``rows``), written a batch at a time (``batches``) into the append dataset (``dataset``).

Imports only ``interlock.kit``, ``interlock.config`` and the shared leaves.
"""
