"""GTFS schedule library: safe zip opening, streaming validation and SQLite loading.

Synchronous by design (it runs in a worker thread); the entry point is
:func:`components.gtfs.loader.load_feed`.
"""
