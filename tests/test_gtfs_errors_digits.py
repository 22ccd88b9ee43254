"""Numbers take ASCII digits only, as MobilityData's gtfs-validator wants: a non-ASCII
decimal digit (Arabic-Indic "٣", fullwidth U+FF13) is invalid_integer / invalid_float,
never a number. Each case is compared with the gtfs-guru oracle code by code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gtfs_mutate import Case, check, replace

pytest.importorskip("gtfs_guru", reason="gtfs-guru (test extra) is not installed")

SECOND_STOP = "T1,08:10:00,08:10:00,S2,2,1.5"


def _stop(seq: str = "2", dist: str = "1.5") -> dict[str, str | None]:
    return replace("stop_times.txt", SECOND_STOP, f"T1,08:10:00,08:10:00,S2,{seq},{dist}")


CASES = [
    Case("arabic_indic_integer", _stop(seq="\u0663"), {"invalid_integer": 1}),
    Case("fullwidth_integer", _stop(seq="\uff13"), {"invalid_integer": 1}),
    Case("mixed_digits_integer", _stop(seq="1\u0663"), {"invalid_integer": 1}),
    Case("fullwidth_float", _stop(dist="\uff11.5"), {"invalid_float": 1}),
    Case("arabic_indic_float", _stop(dist="\u0661.5"), {"invalid_float": 1}),
    # Near misses: ASCII digits, signs and decimals stay numbers.
    Case("ascii_integer", _stop(seq="+3"), {"invalid_integer": 0}),
    Case("ascii_float", _stop(dist="1.50"), {"invalid_float": 0}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_digits_as_mobilitydata(case: Case, tmp_path: Path) -> None:
    check(case, tmp_path)
