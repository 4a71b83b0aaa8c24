"""Values other than identifiers, parsed where they enter: etcd versions, member counts, the
URLs etcd is started with, and peer endpoints' addresses and ports (see ids.py for names)."""

from __future__ import annotations

import ipaddress
import re
from typing import NewType
from urllib.parse import urlsplit

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.fields import parse_int

EtcdVersion = NewType("EtcdVersion", str)

VERSION_RE = re.compile(r"(\d{1,4})\.(\d{1,4})\.(\d{1,4})")
MAX_MEMBER_COUNT = 99  # etcd itself advises 7 at most; anything near this bound is a typo
MAX_URL = 256
MAX_UNIX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the last second datetime can hold
MAX_UNIX_NANOS = 2**63 - 1  # Go's int64
# Characters that would change the meaning of etcd's comma-separated flags (name=url,...).
_URL_FORBIDDEN = re.compile(r"[\s,=;\"'\\]")


def parse_etcd_version(value: object, field: str) -> EtcdVersion:
    """Exactly X.Y.Z: what the store, the state file and peers carry (no 'v', no suffix)."""
    if not isinstance(value, str) or not VERSION_RE.fullmatch(value):
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise InvalidData(f"{field}: etcd version {shown[:40]} is not of the form X.Y.Z")
    return EtcdVersion(value)


def parse_member_count(value: object, field: str) -> int:
    return parse_int(value, field, low=1, high=MAX_MEMBER_COUNT)


def parse_url(value: object, field: str) -> str:
    """An etcd peer or client URL: http(s)://host:port, nothing after the port but '/'."""
    if not isinstance(value, str):
        raise InvalidData(f"{field}: should be a URL (a string), got {type(value).__name__}")
    problem = None
    if len(value) > MAX_URL or _URL_FORBIDDEN.search(value):
        problem = f"longer than {MAX_URL} characters or holds whitespace, ',', '=' or quotes"
    else:
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018  # raises ValueError for a bad port
        except ValueError as e:
            problem = str(e)
        else:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problem = "should be http:// or https:// and a host"
            elif parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
                problem = "should be only a scheme, host and port"
    if problem:
        raise InvalidData(f"{field}: {value[:80]!r} is not a usable etcd URL: {problem}")
    return value


def parse_unix_seconds(value: object, field: str) -> int:
    return parse_int(value, field, low=0, high=MAX_UNIX_SECONDS)


def parse_unix_nanos(value: object, field: str) -> int:
    return parse_int(value, field, low=0, high=MAX_UNIX_NANOS)


MAX_SECONDS = 100 * 365 * 86400.0  # a century: any duration or age this program records


def parse_seconds(value: object, field: str) -> float:
    """A duration in seconds: a finite, non-negative number of at most a century."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidData(f"{field}: should be a number of seconds, got {type(value).__name__}")
    if not 0 <= value <= MAX_SECONDS:  # NaN fails both comparisons
        raise InvalidData(f"{field}: {value!r} is not a number of seconds in [0, {MAX_SECONDS:.0f}]")
    return float(value)


def parse_ip(value: object, field: str) -> str:
    """An IP address literal (peer endpoints name addresses, as the original's records do)."""
    if not isinstance(value, str) or len(value) > 64:
        raise InvalidData(f"{field}: should be an IP address")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidData(f"{field}: {value!r} is not an IP address") from None
    return value


def parse_port(value: object, field: str) -> int:
    return parse_int(value, field, low=1, high=65535)
