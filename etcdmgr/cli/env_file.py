"""`--env-file`: KEY=VALUE lines read into the environment, as the original reads them.

Blank lines and lines starting with `#` are skipped; the key is trimmed, the value is kept as
written after the first `=` (no quotes are removed); keys are [A-Za-z_][A-Za-z0-9_]*.
"""

from __future__ import annotations

import re
from pathlib import Path

from etcdmgr.model.errors import EtcdmgrError

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_ENV_FILE = 1 << 20


class EnvFileError(EtcdmgrError):
    """The env file cannot be read, or a line of it is not KEY=VALUE."""


def parse_env_file(text: str, path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        key = key.strip()
        if not eq:
            raise EnvFileError(f"env file {path} line {number}: missing '='")
        if not _KEY.fullmatch(key):
            raise EnvFileError(f"env file {path} line {number}: invalid key {key[:40]!r}")
        values[key] = value
    return values


def read_env_file(path: Path) -> dict[str, str]:
    try:
        with path.open("rb") as f:
            data = f.read(MAX_ENV_FILE + 1)
    except OSError as e:
        raise EnvFileError(f"cannot read env file {path}: {e.strerror or e}") from None
    if len(data) > MAX_ENV_FILE:
        raise EnvFileError(f"env file {path} is larger than {MAX_ENV_FILE} bytes")
    try:
        return parse_env_file(data.decode(), str(path))
    except UnicodeDecodeError:
        raise EnvFileError(f"env file {path} is not UTF-8 text") from None
