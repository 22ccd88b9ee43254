"""The built-in ingestion components, one subpackage per source, plus the stand-in servers.

A component imports only ``interlock.kit``, ``interlock.config`` and the shared leaves.
"""
