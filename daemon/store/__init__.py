"""Durable state: the state-store interfaces, their SQLite implementation, the single-instance lock.

``abc`` holds the Protocols, ``sqlite/`` the SQLite store, ``lock`` the lock. May import
``config`` and the leaves. Every read of ``state.sqlite`` goes through this package.
"""
