"""The node's own etcd state (which cluster, version, quarantine), one JSON file."""

from __future__ import annotations

import json
import time
from pathlib import Path

from etcdmgr.model import EtcdState, InvalidData
from etcdmgr.util.atomic import fsync_dir, write_atomic


def read_state(path: Path) -> EtcdState | None:
    """The state, None when there is none; InvalidData when the file does not validate."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return EtcdState.from_json(json.loads(raw))
    except (ValueError, InvalidData) as e:
        raise InvalidData(f"state file {path} is corrupt: {e}") from None


def set_aside(path: Path) -> Path:
    """Rename a state file that does not validate to `<name>.invalid-<UTC time>`: it is never
    used, and kept for whoever looks into it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = path.with_name(f"{path.name}.invalid-{stamp}")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.invalid-{stamp}-{n}")
    path.rename(dest)
    fsync_dir(path.parent)
    return dest


def write_state(path: Path, state: EtcdState | None) -> None:
    if state is None:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json.dumps(state.to_json(), indent=2).encode() + b"\n", mode=0o600)
