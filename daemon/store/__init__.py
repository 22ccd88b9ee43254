"""Durable state: the state-store interface, its SQLite implementation, the single-instance lock.

May import ``config`` and the leaves. Every read of ``state.sqlite`` goes through this package.
"""
