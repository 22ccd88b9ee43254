"""Secret placeholders in configuration values, the registry of resolved secrets, and the mask.

Shipped configs never hold a secret literally: they say ``${ENV_VAR}`` or
``${credential:NAME}`` (a file in ``$CREDENTIALS_DIRECTORY``, as systemd's
``LoadCredential=`` provides). Every value resolved here is remembered, and
:func:`mask` hides it (and any ``signature=`` query value) in text from outside:
errors, reasons, stored history and notifications all pass through it.
"""

from __future__ import annotations

import functools
import json
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

_PLACEHOLDER = re.compile(r"\$\{(?:(credential):)?([A-Za-z_][A-Za-z0-9_.-]*)\}")

_lock = threading.Lock()
# Replaced, never mutated: every log line reads it, so reading must not take a lock.
_known: frozenset[str] = frozenset()


def remember(value: str) -> None:
    """Register a secret value so log output masks it (short values are ignored)."""
    global _known
    if len(value) >= 4 and value not in _known:
        with _lock:
            _known = _known | {value}


def forget_all_but(keep: frozenset[str]) -> None:
    """Drop every registered secret not in ``keep`` (tests restore the registry with it)."""
    global _known
    with _lock:
        _known = _known & keep


@functools.lru_cache(maxsize=8)
def longest_first(known: frozenset[str]) -> tuple[str, ...]:
    """``known`` ordered so a secret is replaced before any secret it contains."""
    return tuple(sorted(known, key=len, reverse=True))


def known_secrets() -> frozenset[str]:
    """The secret values resolved so far in this process."""
    return _known


MASK = "***"
# A signed request's signature lets anyone replay that request: PTV's ``signature=<hex>``.
_SIGNATURE = re.compile(r"(?i)(\bsignature=)[^&\s\"'<>#]+")


@functools.lru_cache(maxsize=8)
def _spellings(known: frozenset[str]) -> tuple[str, ...]:
    """Each secret as sent and as quoted in a URL or a JSON string, longest first."""
    forms = set(known)
    for secret in known:
        forms.add(quote(secret, safe=""))
        forms.add(json.dumps(secret)[1:-1])
    return longest_first(frozenset(forms))


def mask(text: str) -> str:
    """``text`` with every resolved secret and every ``signature=`` value replaced by ``***``.

    Longest first, as the log redactor does: a secret that extends another must not
    leave its tail behind.
    """
    known = _known
    if known:
        for secret in _spellings(known):
            if secret in text:
                text = text.replace(secret, MASK)
    if "ignature=" in text or "IGNATURE=" in text:
        text = _SIGNATURE.sub(r"\1" + MASK, text)
    return text


def mask_all(value: Any) -> Any:
    """``value`` with :func:`mask` applied to every string in it (lists and dicts walked)."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {mask_all(key): mask_all(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_all(item) for item in value]
    return value


def _lookup(kind: str | None, name: str, env: Mapping[str, str]) -> str | None:
    if kind == "credential":
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            return None
        path = Path(directory) / name
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError:
            return None
    return env.get(name)


def describe(kind: str | None, name: str) -> str:
    """How an operator supplies the secret a placeholder names."""
    if kind == "credential":
        return (
            f"credential {name!r} was not found in $CREDENTIALS_DIRECTORY; "
            f"add LoadCredential={name}:/path/to/file to the service"
        )
    return f"environment variable {name!r} is not set; set it (e.g. in an EnvironmentFile=)"


def resolve(value: Any, env: Mapping[str, str] | None = None) -> tuple[Any, list[str]]:
    """Replace placeholders in ``value`` (recursively); return it and the problems found.

    A placeholder with no value is left as it was and produces one problem line (one
    per secret, however many places use it), so the caller can disable just the
    component that needs it.
    """
    env = os.environ if env is None else env
    missing: list[str] = []

    def sub(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, name = match.group(1), match.group(2)
            found = _lookup(kind, name, env)
            if found is None:
                problem = describe(kind, name)
                if problem not in missing:  # one line per secret, however often it is used
                    missing.append(problem)
                return match.group(0)
            remember(found)
            return found

        return _PLACEHOLDER.sub(one, text)

    def walk(node: Any) -> Any:
        if isinstance(node, str):
            return sub(node)
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, dict):
            return {key: walk(item) for key, item in node.items()}
        return node

    return walk(value), missing
