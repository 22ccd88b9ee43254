"""Reading one admin request line: JSON that Python can hold, an object, a command, and
arguments of the types each command declares.

Everything a client can send ends here as an AdminRequestError with a stable code
(``invalid_json``, ``invalid_request``, ``unknown_command``, ``invalid_argument``)
and a message naming the field, what it was and what it must be; nothing a client
sends reaches a handler with a type the handler did not declare.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from typing import Any

from interlock.errors import AdminRequestError

#: Deeper than any request needs (two levels) and far from the parser's recursion limit.
MAX_DEPTH = 32
#: Keys every request may carry besides its command's own arguments.
ENVELOPE = frozenset({"command", "id"})

#: Argument kinds a command may declare; ``null`` always means "not given".
STRING, BOOLEAN, INTEGER, NAMES = "string", "boolean", "integer", "names"
Arguments = Mapping[str, str]


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, as messages say it ("list", "object", "string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]!r} is out of range for a double")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in item)
    return False


def request_id(request: Any) -> Any:
    """The request's ``id`` to echo (None when there is none or no object to hold one)."""
    return request.get("id") if isinstance(request, dict) else None


def decode(line: bytes) -> Any:
    """The JSON value of one line. Raises AdminRequestError("invalid_json")."""
    try:
        request = json.loads(line, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise AdminRequestError(
            "invalid_json",
            f"the request is nested too deeply to read; a request needs at most {MAX_DEPTH} "
            "levels of lists and objects",
        ) from None
    except UnicodeDecodeError as exc:
        raise AdminRequestError(
            "invalid_json", f"the request is not UTF-8 text (byte {exc.start} is not)"
        ) from None
    except json.JSONDecodeError as exc:
        raise AdminRequestError("invalid_json", f"the request is not valid JSON: {exc}") from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        reason = str(exc).split(";")[0].split(":")[0]
        raise AdminRequestError(
            "invalid_json", f"the request holds a number JSON cannot carry ({reason})"
        ) from None
    return request


def envelope(request: Any, commands: Collection[str]) -> dict[str, Any]:
    """``request`` if it is an object, not too deep, naming one of ``commands``.

    Raises AdminRequestError (invalid_request, unknown_command).
    """
    if not isinstance(request, dict):
        raise AdminRequestError(
            "invalid_request",
            f'a request is a JSON object like {{"command": "status"}}, not {json_type(request)}',
        )
    if _deeper_than(request, MAX_DEPTH):
        raise AdminRequestError(
            "invalid_request", f"the request is nested deeper than {MAX_DEPTH} levels"
        )
    command = request.get("command")
    if not isinstance(command, str):
        raise AdminRequestError(
            "invalid_request",
            f'\'command\' must be a string, not {json_type(command)}; e.g. {{"command": "status"}}',
        )
    if command not in commands:
        known = ", ".join(sorted(commands))
        raise AdminRequestError(
            "unknown_command", f"unknown command {command[:80]!r}; known: {known}"
        )
    return request


def check_arguments(request: Mapping[str, Any], arguments: Arguments) -> None:
    """Refuse an argument ``arguments`` does not name, or one of the wrong type."""
    command = request["command"]
    for key, value in request.items():
        if key in ENVELOPE:
            continue
        kind = arguments.get(key)
        if kind is None:
            takes = ", ".join(arguments) if arguments else "no arguments"
            raise AdminRequestError(
                "invalid_argument",
                f"unknown argument {key[:80]!r} for {command!r}; it takes: {takes}",
            )
        if value is None or _is(kind, value):
            continue
        what = {NAMES: "a list of names (strings)", INTEGER: "an integer"}.get(kind, f"a {kind}")
        raise AdminRequestError(
            "invalid_argument", f"{key!r} must be {what}, not {json_type(value)}"
        )


def _is(kind: str, value: Any) -> bool:
    if kind == STRING:
        return isinstance(value, str)
    if kind == BOOLEAN:
        return isinstance(value, bool)
    if kind == INTEGER:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
