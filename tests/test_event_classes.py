"""Every event class is a frozen, keyword-only dataclass, the ones that add no field to
their base included (they inherit its generated methods, see ``events._same_fields``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from interlock import events as ev

FINISHED = [
    ev.ComponentSucceeded,
    ev.ComponentUnchanged,
    ev.ComponentFailed,
    ev.ComponentTimedOut,
    ev.ComponentCancelled,
    ev.ComponentNotStarted,
]


def finished(cls: type[ev.ComponentFinished], **extra: Any) -> ev.ComponentFinished:
    return cls(
        run_id="r1",
        component="c",
        status="ok",
        reason=None,
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_s=1.5,
        **extra,
    )


@pytest.mark.parametrize("cls", FINISHED, ids=lambda c: c.__name__)
def test_a_terminal_event_is_a_frozen_dataclass_of_its_own_name(
    cls: type[ev.ComponentFinished],
) -> None:
    e = finished(cls, records=3)
    assert dataclasses.is_dataclass(e)
    assert [f.name for f in dataclasses.fields(e)] == [
        f.name for f in dataclasses.fields(ev.ComponentFinished)
    ]
    assert repr(e).startswith(f"{cls.__name__}(at=")
    assert e.to_dict()["event"] == e.name
    assert e.to_dict()["records"] == 3
    for attempt in ("records", "not_a_field"):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(e, attempt, 4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(e, "records")
    copy = dataclasses.replace(e, records=5)
    assert type(copy) is cls and copy.records == 5
    assert e == dataclasses.replace(e) and hash(e) == hash(dataclasses.replace(e))
    with pytest.raises(TypeError):
        cls("r1", "c")  # type: ignore[call-arg, arg-type]  # keyword-only, as its base


def test_terminal_events_of_different_kinds_are_not_equal() -> None:
    same = {
        f.name: getattr(finished(ev.ComponentFailed), f.name)
        for f in dataclasses.fields(ev.ComponentFailed)
    }
    assert ev.ComponentFailed(**same) != ev.ComponentSucceeded(**same)
    assert len({cls.__name__ for cls in FINISHED}) == len({finished(c).name for c in FINISHED})
