"""What a component is handed and may use: the component base, its context, the HTTP client
(quota, conditional GET, retries, timing), change detection, publish, quality, the raw archive.

May import ``store`` (the component-state record), ``config`` and the shared leaves.
Components import what they use of the daemon from here (``from interlock.kit import
ComponentContext``); modules inside ``kit`` import their siblings directly, never this
package, so that loading it cannot run in a circle.
"""

from __future__ import annotations

from interlock.kit.archive import RawArchive
from interlock.kit.change import ChangePolicy, conditional_headers, same_payload
from interlock.kit.component import Component
from interlock.kit.context import ComponentContext
from interlock.kit.http import FetchResult, HttpClient, parse_retry_after
from interlock.kit.publish import PublishStamp, SnapshotDataset, discard, quarantine
from interlock.kit.quota import QuotaGuard

__all__ = [
    "ChangePolicy",
    "Component",
    "ComponentContext",
    "FetchResult",
    "HttpClient",
    "PublishStamp",
    "QuotaGuard",
    "RawArchive",
    "SnapshotDataset",
    "conditional_headers",
    "discard",
    "parse_retry_after",
    "quarantine",
    "same_payload",
]
