"""Stand-ins for the upstream servers interlock fetches from, for tests and the demo.

`StandinServer` hosts pluggable sources on 127.0.0.1 with shared fault injection;
`sample_feed` builds the small deterministic Melbourne-like GTFS feed they serve.
"""

from __future__ import annotations

from .ckan import CkanCatalog
from .errors import (
    DuplicateNameError,
    InvalidFaultError,
    ServerStateError,
    StandinError,
    UnknownFaultError,
    UnknownModeError,
    UnknownSourceError,
)
from .faults import Fault, FaultKind, FaultRule, FaultTable
from .gtfs_schedule import GtfsScheduleSource
from .request_log import RequestRecord
from .sample_feed import build_flat_feed, build_mode_feed, build_zip_of_zips, feed_files
from .server import RunState, StandinServer, default_sources
from .source import Publication, Source

__all__ = [
    "CkanCatalog",
    "DuplicateNameError",
    "Fault",
    "FaultKind",
    "FaultRule",
    "FaultTable",
    "GtfsScheduleSource",
    "InvalidFaultError",
    "Publication",
    "RequestRecord",
    "RunState",
    "ServerStateError",
    "Source",
    "StandinError",
    "StandinServer",
    "UnknownFaultError",
    "UnknownModeError",
    "UnknownSourceError",
    "build_flat_feed",
    "build_mode_feed",
    "build_zip_of_zips",
    "default_sources",
    "feed_files",
]
