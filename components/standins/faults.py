"""Which fault, if any, the next request gets: the rules set on command.

A rule targets a path prefix ("/gtfs/") or a source name ("gtfs_schedule") and
wears out after `times` requests. Pure bookkeeping; `fault_injection` does the I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from .errors import InvalidFaultError, UnknownFaultError


class FaultKind(enum.StrEnum):
    """The misbehaviours a stand-in can put on instead of its normal answer."""

    STATUS_500 = "status_500"
    STATUS_429 = "status_429"
    SLOW = "slow"
    TRUNCATE = "truncate"
    WRONG_CONTENT_TYPE = "wrong_content_type"
    CORRUPT_ZIP = "corrupt_zip"
    ECHO_REQUEST = "echo_request"


# Accepted parameters per fault, with their defaults:
# - status_429: retry_after, seconds sent in Retry-After (rounded up to a whole number).
# - slow: delay, seconds before the response starts; chunk_size > 0 sends the body in
#   chunks of that many bytes with chunk_delay seconds between them.
# - truncate: keep_bytes, bytes of the body sent before the connection is closed; when
#   unset (-1), fraction of the body is sent. Never the whole body.
# - corrupt_zip: size, bytes of garbage sent.
# - echo_request: status, the error status of a page that quotes the request back
#   (its query and headers, credentials included), as a careless gateway's does.
FAULT_PARAMS: Mapping[FaultKind, Mapping[str, float]] = {
    FaultKind.STATUS_500: {},
    FaultKind.STATUS_429: {"retry_after": 1},
    FaultKind.SLOW: {"delay": 1.0, "chunk_size": 0, "chunk_delay": 0.0},
    FaultKind.TRUNCATE: {"fraction": 0.5, "keep_bytes": -1},
    FaultKind.WRONG_CONTENT_TYPE: {},
    FaultKind.CORRUPT_ZIP: {"size": 2048},
    FaultKind.ECHO_REQUEST: {"status": 403},
}


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault to apply to one request, its parameters completed with defaults."""

    kind: FaultKind
    target: str
    params: Mapping[str, float]


@dataclass(kw_only=True)
class FaultRule:
    """A fault set on a target; `remaining` None means until cleared."""

    target: str
    kind: FaultKind
    remaining: int | None
    params: Mapping[str, float] = field(default_factory=dict)

    def matches(self, path: str, sources: Collection[str]) -> bool:
        if self.target.startswith("/"):
            return path.startswith(self.target)
        return self.target in sources

    def as_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "fault": str(self.kind),
            "remaining": self.remaining,
            "params": dict(self.params),
        }


def parse_fault(name: str) -> FaultKind:
    try:
        return FaultKind(name)
    except ValueError:
        known = ", ".join(kind.value for kind in FaultKind)
        raise UnknownFaultError(f"unknown fault {name!r}; known faults: {known}") from None


def complete_params(kind: FaultKind, given: Mapping[str, object]) -> dict[str, float]:
    """Check `given` against the fault's parameters and fill in the defaults."""
    accepted = FAULT_PARAMS[kind]
    params = dict(accepted)
    for key, value in given.items():
        if key not in accepted:
            known = ", ".join(accepted) or "none"
            raise InvalidFaultError(
                f"fault {kind.value!r} has no parameter {key!r}; its parameters: {known}"
            )
        # bool is an int subclass, but `delay=True` is a mistake rather than 1 second.
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidFaultError(
                f"fault {kind.value!r} parameter {key!r} must be a number >= 0, got {value!r}"
            )
        params[key] = value
    return params


class FaultTable:
    """The faults currently set; shared by every source of a server.

    One rule per target (setting a target again replaces its rule). When several
    rules match a request, the most recently set one applies.
    """

    def __init__(self) -> None:
        self._rules: list[FaultRule] = []

    @property
    def rules(self) -> list[FaultRule]:
        """The rules still active, oldest first."""
        return list(self._rules)

    def set(
        self, target: str, fault: FaultKind | str, *, times: int | None = 1, **params: object
    ) -> FaultRule:
        """Apply `fault` to the next `times` requests for `target` (None: until cleared).

        `target` is a path prefix when it starts with "/", else a source name.
        """
        kind = fault if isinstance(fault, FaultKind) else parse_fault(fault)
        if not target:
            raise InvalidFaultError("a fault needs a target: a path prefix or a source name")
        if times is not None and (isinstance(times, bool) or times < 1):
            raise InvalidFaultError(
                f"fault {kind.value!r} times must be 1 or more, or None for until cleared; "
                f"got {times!r}"
            )
        rule = FaultRule(
            target=target, kind=kind, remaining=times, params=complete_params(kind, params)
        )
        self._rules = [r for r in self._rules if r.target != target] + [rule]
        return rule

    def clear(self, target: str | None = None) -> int:
        """Remove every rule, or only `target`'s; return how many were removed."""
        before = len(self._rules)
        self._rules = [r for r in self._rules if target is not None and r.target != target]
        return before - len(self._rules)

    def take(self, path: str, sources: Collection[str]) -> Fault | None:
        """The fault for a request to `path` owned by `sources`, using up one of its times."""
        for rule in reversed(self._rules):
            if not rule.matches(path, sources):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules = [r for r in self._rules if r is not rule]
            return Fault(kind=rule.kind, target=rule.target, params=rule.params)
        return None
