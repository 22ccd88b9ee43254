"""The shipped JSON Schema, and its complaints turned into messages a person can act on.

Each message names the JSON path and the bad value and says what is allowed; an
unknown key gets a "did you mean" from the allowed ones. A component's own
``settings_schema`` is checked the same way, with resolved secrets masked.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from interlock import secrets


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema shipped beside the configs (``config/orchestration.schema.json``)."""
    text = resources.files("interlock.config").joinpath("orchestration.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or '' when none is close."""
    hint = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def json_path(parts: Iterable[Any]) -> str:
    """``$.a.b[0]`` for the path parts ``("a", "b", 0)``."""
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(doc: Any) -> list[str]:
    """Everything the shipped schema says is wrong with ``doc``, one message each."""
    return _messages(jsonschema.Draft202012Validator(schema()), doc, "$")


def _messages(validator: Any, doc: Any, prefix: str, *, keys_only: bool = False) -> list[str]:
    """One message per problem, under ``prefix``: an unknown key gets a did-you-mean."""
    problems = []
    for err in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        where = prefix + json_path(err.absolute_path)[1:]
        unknown_keys = err.validator == "additionalProperties" and isinstance(err.instance, dict)
        if keys_only and not unknown_keys:
            continue
        if unknown_keys:
            allowed = sorted(err.schema.get("properties", {}))
            unknown = sorted(set(err.instance) - set(allowed))
            for key in unknown:
                problems.append(
                    f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}; "
                    f"allowed: {', '.join(allowed)}"
                )
        else:
            problems.append(f"{where}: {err.message}")
    return problems


def settings_problems(
    cls: type, where: str, settings: Any, *, keys_only: bool = False
) -> list[str]:
    """Validate a component's own settings against its class's ``settings_schema``.

    ``keys_only`` (a secret is missing, so placeholders stand where values go) reports
    only unknown keys, which no value can explain.
    """
    own = getattr(cls, "settings_schema", None)
    if not own:
        return []
    known = secrets.known_secrets()
    out = []
    validator = jsonschema.Draft202012Validator(own)
    for message in _messages(validator, settings, f"{where}.settings", keys_only=keys_only):
        for secret in known:  # a resolved secret must not reach the terminal
            message = message.replace(secret, "***")
        out.append(message)
    return out
