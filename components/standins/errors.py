"""Every exception type the stand-in servers raise, one per failure mode.

The stand-ins are test infrastructure, so they do not share the daemon's error tree.
"""

from __future__ import annotations


class StandinError(Exception):
    """Base of every error the stand-in servers raise on purpose."""


class UnknownModeError(StandinError, ValueError):
    """A sample feed was asked for a transport mode folder it does not model."""


class UnknownSourceError(StandinError, LookupError):
    """A control command named a source the server was not started with."""


class DuplicateNameError(StandinError, ValueError):
    """Two sources, or two CKAN datasets, were given the same name."""


class UnknownFaultError(StandinError, ValueError):
    """A fault name is not one of the faults the server can inject."""


class InvalidFaultError(StandinError, ValueError):
    """A fault's target, `times` or parameters cannot be used."""


class ServerStateError(StandinError, RuntimeError):
    """The server was used in a state that does not allow it (e.g. after close)."""
