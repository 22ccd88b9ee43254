"""Language codes as MobilityData's gtfs-validator reads them: a well-formed IETF BCP 47
tag, as Java's ``Locale.Builder.setLanguageTag`` accepts it (``en``, ``zh-Hant-TW``,
``es-419``, ``gsw-u-sd-chzh``, ``x-private``, the grandfathered ``i-klingon``); anything
else (``en_US``, ``english!``, ``en-``) is ``invalid_language_code``.

Well-formed only, as Java checks: the subtags are not looked up in the registry.
"""

from __future__ import annotations

import re

_ALNUM = "[A-Za-z0-9]"
_PRIVATE = rf"[xX](?:-{_ALNUM}{{1,8}})+"
# Java's LanguageTag.parse, subtag by subtag: language (with up to three extlangs),
# script, region, variants, extensions (a singleton other than x and its subtags),
# then private use; or private use alone.
_TAG = re.compile(
    rf"(?:[A-Za-z]{{2,8}}(?:-[A-Za-z]{{3}}){{0,3}}"
    r"(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|[0-9]{3}))?"
    rf"(?:-(?:{_ALNUM}{{5,8}}|[0-9]{_ALNUM}{{3}}))*"
    rf"(?:-[0-9A-WYZa-wyz](?:-{_ALNUM}{{2,8}})+)*"
    rf"(?:-{_PRIVATE})?|{_PRIVATE})"
)
# Tags BCP 47 keeps for history; Java maps each to a modern form before parsing.
_GRANDFATHERED = frozenset(
    {
        *("art-lojban", "cel-gaulish", "en-gb-oed", "no-bok", "no-nyn"),
        *("i-ami", "i-bnn", "i-default", "i-enochian", "i-hak", "i-klingon", "i-lux"),
        *("i-mingo", "i-navajo", "i-pwn", "i-tao", "i-tay", "i-tsu"),
        *("sgn-be-fr", "sgn-be-nl", "sgn-ch-de"),
        *("zh-guoyu", "zh-hakka", "zh-min", "zh-min-nan", "zh-xiang"),
    }
)


def language_ok(v: str) -> bool:
    """Whether ``v`` (trimmed, not empty) is a well-formed BCP 47 language tag."""
    return v.lower() in _GRANDFATHERED or _TAG.fullmatch(v) is not None
