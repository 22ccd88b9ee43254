"""The component interface: what the scheduler runs and every ingestion component implements.

A component is constructed with its name and settings and run once per due time
with a :class:`~interlock.kit.context.ComponentContext`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from interlock.outcome import Outcome

if TYPE_CHECKING:
    from interlock.kit.context import ComponentContext


@runtime_checkable
class Component(Protocol):
    """An ingestion component: constructed with its name and settings, run per due time."""

    settings_schema: ClassVar[dict[str, Any] | None]

    async def run(self, ctx: ComponentContext) -> Outcome:
        """Fetch, check, parse, validate and publish; raise to fail."""
        ...
