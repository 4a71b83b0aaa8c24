"""The node's own etcd state (which cluster, version, quarantine), one JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from etcdmgr.model import EtcdState, InvalidData
from etcdmgr.util.atomic import write_atomic


def read_state(path: Path) -> EtcdState | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return EtcdState.from_json(json.loads(raw))
    except (ValueError, InvalidData) as e:
        raise InvalidData(f"state file {path} is corrupt: {e}") from None


def write_state(path: Path, state: EtcdState | None) -> None:
    if state is None:
        path.unlink(missing_ok=True)
        return
    write_atomic(path, json.dumps(state.to_json(), indent=2).encode() + b"\n", mode=0o600)
