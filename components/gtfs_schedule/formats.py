"""Value formats gtfs-validator checks without dropping the row: URL, email, time zone
and currency (``invalid_url``, ``invalid_email``, ``invalid_timezone``, ``invalid_currency``).

Time zones and currencies follow Java as gtfs-validator calls it (``ZoneId.of``,
``Currency.getInstance``). URLs and emails follow the gtfs-guru oracle: Java's
commons-validator also checks domains against its bundled list of top-level domains,
a moving target that is not reproduced here (so ``http://a.example`` passes).
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable

# Java's java.util.Currency.getAvailableCurrencies() (OpenJDK 17): ISO 4217 codes,
# current and withdrawn, exactly as Currency.getInstance accepts them.
_CURRENCY_CODES = """
    ADP AED AFA AFN ALL AMD ANG AOA ARS ATS AUD AWG AYM AZM AZN BAM BBD BDT BEF BGL BGN BHD
    BIF BMD BND BOB BOV BRL BSD BTN BWP BYB BYN BYR BZD CAD CDF CHE CHF CHW CLF CLP CNY COP
    COU CRC CSD CUC CUP CVE CYP CZK DEM DJF DKK DOP DZD EEK EGP ERN ESP ETB EUR FIM FJD FKP
    FRF GBP GEL GHC GHS GIP GMD GNF GRD GTQ GWP GYD HKD HNL HRK HTG HUF IDR IEP ILS INR IQD
    IRR ISK ITL JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LTL LUF
    LVL LYD MAD MDL MGA MGF MKD MMK MNT MOP MRO MRU MTL MUR MVR MWK MXN MXV MYR MZM MZN NAD
    NGN NIO NLG NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PTE PYG QAR ROL RON RSD RUB RUR RWF
    SAR SBD SCR SDD SDG SEK SGD SHP SIT SKK SLE SLL SOS SRD SRG SSP STD STN SVC SYP SZL THB
    TJS TMM TMT TND TOP TPE TRL TRY TTD TWD TZS UAH UGX USD USN USS UYI UYU UZS VEB VED VEF
    VES VND VUV WST XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XFO XFU XOF XPD XPF XPT XSU XTS
    XUA XXX YER YUM ZAR ZMK ZMW ZWD ZWG ZWL ZWN ZWR"""
CURRENCIES: frozenset[str] = frozenset(_CURRENCY_CODES.split())
# Currency.getDefaultFractionDigits() where it is not 2 (-1: no minor unit, so no
# amount is well formed); gtfs-validator wants an amount's scale to equal it.
_MINOR_UNITS = """
    ADP:0 BEF:0 BHD:3 BIF:0 BYB:0 BYR:0 CLF:4 CLP:0 DJF:0 ESP:0 GNF:0 GRD:0 IQD:3 ISK:0
    ITL:0 JOD:3 JPY:0 KMF:0 KRW:0 KWD:3 LUF:0 LYD:3 MGF:0 OMR:3 PTE:0 PYG:0 ROL:0 RWF:0
    TND:3 TPE:0 TRL:0 UGX:0 UYI:0 VND:0 VUV:0 XAF:0 XAG:-1 XAU:-1 XBA:-1 XBB:-1 XBC:-1
    XBD:-1 XDR:-1 XFO:-1 XFU:-1 XOF:0 XPD:-1 XPF:0 XPT:-1 XSU:-1 XTS:-1 XUA:-1 XXX:-1
"""
_FRACTION_DIGITS: dict[str, int] = {
    code: int(digits) for code, digits in (pair.split(":") for pair in _MINOR_UNITS.split())
}

# ZoneId.of's fixed offsets: Z, +h, +hh, +hh:mm, +hhmm, +hh:mm:ss, +hhmmss (to 18:00),
# bare or after UTC, GMT or UT.
_OFFSET = re.compile(
    r"(?:Z|(?:UTC|GMT|UT)(?:[+-](?P<o1>.+))?|[+-](?P<o2>.+))",
)
_OFFSET_BODY = re.compile(r"[0-9]{1,2}|[0-9]{2}:?[0-9]{2}|[0-9]{2}:[0-9]{2}:[0-9]{2}|[0-9]{6}")
# Region ids in the system's tz database that Java's does not hold (EST, MST and HST
# are only aliases there) or that name no region at all.
_NOT_JAVA_REGIONS = frozenset({"EST", "MST", "HST", "Factory", "localtime", "posixrules", "ROC"})
_SYSTEM_V = "AST4 AST4ADT CST6 CST6CDT EST5 EST5EDT HST10 MST7 MST7MDT PST8 PST8PDT YST9 YST9YDT"
_JAVA_ONLY_REGIONS = frozenset(f"SystemV/{z}" for z in _SYSTEM_V.split())
_SPECIAL_SCHEMES = frozenset({"http", "https", "ftp", "ws", "wss"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(.*)", re.DOTALL)
_FORBIDDEN_HOST = re.compile(r"[\x00-\x20#%/:<>?@\[\\\]^|\x7f]")
_MAX_MEMO = 16_384


def _offset_ok(body: str) -> bool:
    if not _OFFSET_BODY.fullmatch(body):
        return False
    digits = body.replace(":", "")
    h = int(digits[:2])  # one or two digits of hours, then minutes, then seconds
    mi, s = int(digits[2:4] or 0), int(digits[4:6] or 0)
    return h <= 18 and mi < 60 and s < 60 and h * 3600 + mi * 60 + s <= 18 * 3600


def timezone_ok(v: str) -> bool:
    """Whether Java's ``ZoneId.of(v)`` accepts ``v`` (a region, or a fixed offset)."""
    m = _OFFSET.fullmatch(v)
    if m is not None:
        body = m["o1"] or m["o2"]
        return body is None or _offset_ok(body)
    if v in _JAVA_ONLY_REGIONS:
        return True
    return v not in _NOT_JAVA_REGIONS and v in _regions()


_REGIONS: frozenset[str] | None = None


def _regions() -> frozenset[str]:
    global _REGIONS
    if _REGIONS is None:
        _REGIONS = frozenset(zoneinfo.available_timezones())
    return _REGIONS


def url_ok(v: str) -> bool:
    """Whether ``v`` is an absolute URL as the oracle's parser takes one: a scheme, and
    for web schemes a host without forbidden characters and a port up to 65535."""
    m = _SCHEME.fullmatch(v)
    if m is None:
        return False
    if m[1].lower() not in _SPECIAL_SCHEMES:
        return True
    rest = m[2].lstrip("/\\")
    authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    host = authority.rpartition("@")[2]
    if host.startswith("["):
        end = host.find("]")
        if end < 0:
            return False
        host, port = host[: end + 1], host[end + 1 :]
        if port and not port.startswith(":"):
            return False
        port = port[1:]
    else:
        host, _, port = host.partition(":")
        if _FORBIDDEN_HOST.search(host):
            return False
    if not host:
        return False
    return not port or (port.isdigit() and port.isascii() and int(port) <= 65535)


def email_ok(v: str) -> bool:
    """Whether ``v`` looks like an address as the oracle checks: one @, no whitespace,
    and a dotted domain that neither starts nor ends with a dot."""
    local, at, domain = v.partition("@")
    if not at or not local or "@" in domain or any(c.isspace() for c in v):
        return False
    return "." in domain and not domain.startswith(".") and not domain.endswith(".")


def currency_ok(v: str) -> bool:
    return v in CURRENCIES


def amount_ok(raw: str, currency: str | None) -> bool:
    """Whether ``raw`` has as many decimals as ``currency``'s minor unit (an unknown
    currency is invalid_currency instead; an exponent is left alone, as gtfs-guru does)."""
    if currency not in CURRENCIES or "e" in raw or "E" in raw:
        return True
    digits = _FRACTION_DIGITS.get(currency, 2)
    _, dot, decimals = raw.partition(".")
    return digits >= 0 and (len(decimals) if dot else 0) == digits


class FormatCheck:
    """A validity test with a bounded memo of the values found valid (feeds repeat them)."""

    def __init__(self, test: Callable[[str], bool]) -> None:
        self._test = test
        self.valid: set[str] = set()

    def __call__(self, v: str) -> bool:
        if self._test(v):
            if len(self.valid) < _MAX_MEMO:
                self.valid.add(v)
            return True
        return False
