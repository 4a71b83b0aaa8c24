"""Go-style durations ("15m", "1h30m", "168h") and the original's retention form ("7d", "2y").

Go's time.ParseDuration counts nanoseconds; timedelta counts microseconds, so values are
rounded to the microsecond. Like Go, the range is limited to what fits in an int64 of nanoseconds.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction

from etcdmgr.model.errors import InvalidData

_NS_PER_UNIT = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_MAX_NS = 2**63 - 1
_TERM_RE = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_HUMAN_RE = re.compile(r"([+-]?[0-9]+)([dy])")


def parse_duration(text: str) -> timedelta:
    """Parse a duration exactly as Go's time.ParseDuration does; raise InvalidData otherwise."""
    s = text
    sign = 1
    if s[:1] in ("-", "+"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    if not s:
        raise InvalidData(f"invalid duration {text!r}")
    total = Fraction(0)
    while s:
        m = _TERM_RE.match(s)
        assert m is not None  # every part of the pattern is optional
        whole, frac, unit = m.group(1), m.group(2), m.group(3)
        if not whole and not frac:
            raise InvalidData(f"invalid duration {text!r}")
        if not unit:
            raise InvalidData(f"missing unit in duration {text!r} (use ns, us, ms, s, m or h)")
        if unit not in _NS_PER_UNIT:
            raise InvalidData(f"unknown unit {unit!r} in duration {text!r} (use ns, us, ms, s, m or h)")
        value = Fraction(int(whole or "0"))
        if frac:
            value += Fraction(int(frac), 10 ** len(frac))
        total += value * _NS_PER_UNIT[unit]
        s = s[m.end() :]
    nanos = int(total)
    if nanos > _MAX_NS:
        raise InvalidData(f"duration {text!r} is too large")
    return timedelta(microseconds=round(Fraction(sign * nanos, 1000)))


def parse_human_duration(text: str) -> timedelta:
    """The original's retention form: "<int>d" (24h days), "<int>y" (365-day years), else a Go duration."""
    m = _HUMAN_RE.fullmatch(text)
    if m:
        days = int(m.group(1)) * (365 if m.group(2) == "y" else 1)
        return timedelta(days=days)
    return parse_duration(text)


MAX_SETTING = timedelta(days=100 * 365)


def parse_setting(text: str, field: str, *, days_and_years: bool = False) -> timedelta:
    """A Go duration for an interval, timeout or lifetime: positive, and at most a century
    (`days_and_years`: also the original's 90d and 2y, as its lifetimes take them)."""
    try:
        value = parse_human_duration(text) if days_and_years else parse_duration(text)
    except InvalidData as e:
        raise InvalidData(f"{field}: {e}") from None
    if not timedelta(0) < value <= MAX_SETTING:
        raise InvalidData(f"{field}: {text!r} should be positive and at most {MAX_SETTING.days // 365} years")
    return value
