"""Checks of ``change_detection`` beyond what the JSON Schema can say."""

from __future__ import annotations

import hashlib
from typing import Any

from interlock.config.schema import did_you_mean

ALGORITHMS = tuple(sorted(hashlib.algorithms_guaranteed))


def problems(section: Any) -> list[str]:
    """An unknown ``methods.file_hash.algorithm`` (one hashlib guarantees is allowed)."""
    methods = section.get("methods") if isinstance(section, dict) else None
    file_hash = methods.get("file_hash") if isinstance(methods, dict) else None
    algorithm = file_hash.get("algorithm") if isinstance(file_hash, dict) else None
    if not isinstance(algorithm, str) or algorithm in ALGORITHMS:
        return []
    return [
        f"$.change_detection.methods.file_hash.algorithm: {algorithm!r} is not a hash "
        f"algorithm{did_you_mean(algorithm, list(ALGORITHMS))}; allowed: {', '.join(ALGORITHMS)}"
    ]
