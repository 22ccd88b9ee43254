"""Data Vic patronage: the two CKAN-sourced components beside the cleaning of the real
files' quirks, parsing and the SQLite dataset. Imports only ``interlock.kit``,
``interlock.config`` and the shared leaves.
"""
