"""The node's own etcd state (which cluster, version, quarantine), one file: `state`.

Two forms, told apart by the first byte: JSON (an object, as etcdmgr writes it in a data dir of
its own) and etcd-manager's protobuf (model/state_proto.py), which no JSON document starts like.
A write keeps the form the file already has, so a data dir taken over from etcd-manager stays
one etcd-manager can take back, and a new one stays readable by earlier etcdmgr releases. In the
protobuf form no state is the empty message, as etcd-manager writes it, not a missing file: the
form survives a member that is stopped and joins again.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from etcdmgr.model import EtcdState, InvalidData
from etcdmgr.model.state_proto import state_from_protobuf, state_to_protobuf
from etcdmgr.node.layout import DataLayout
from etcdmgr.util.atomic import fsync_dir, remove_file, write_atomic

log = logging.getLogger(__name__)


def is_protobuf(raw: bytes) -> bool:
    """JSON starts with `{` (after any white space); a protobuf EtcdState starts with the key
    of field 1 to 4 (0x08 to 0x22), or is empty."""
    return not raw.lstrip().startswith(b"{")


def _is_protobuf_file(path: Path) -> bool:
    try:
        return is_protobuf(path.read_bytes())
    except FileNotFoundError:
        return False


def read_state(path: Path) -> EtcdState | None:
    """The state, None when there is none; InvalidData when the file does not validate."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        if is_protobuf(raw):
            state, unknown = state_from_protobuf(raw)
            if unknown:
                log.warning(
                    "state file %s holds fields this release does not know (%s): "
                    "they are dropped when the state next changes",
                    path,
                    ", ".join(unknown),
                )
            return state
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
    """Write (or with None clear) the state file durably, in the form it has (a new file: JSON).
    Blocking: it fsyncs."""
    if _is_protobuf_file(path):
        write_atomic(path, state_to_protobuf(state), mode=0o600)
    elif state is None:
        remove_file(path)
    else:
        write_atomic(path, json.dumps(state.to_json(), indent=2).encode() + b"\n", mode=0o600)


def load_state(layout: DataLayout) -> tuple[EtcdState | None, str | None]:
    """The state file checked against the data dir, and why a node without state is not simply
    empty (None when it is). Blocking: it may rewrite or move the file."""
    try:
        state = read_state(layout.state)
    except InvalidData as e:
        protobuf = _is_protobuf_file(layout.state)
        try:
            problem = f"{e}; moved aside to {set_aside(layout.state).name}"
            if protobuf:
                # The empty message in its place: no state, in the form etcd-manager reads.
                write_atomic(layout.state, state_to_protobuf(None), mode=0o600)
        except OSError as err:
            problem = f"{e}; cannot move it aside: {err.strerror or err}"
        log.error(
            "%s. This node runs no etcd and tells the leader it cannot read its state "
            "(its member is not replaced at once)",
            problem,
        )
        return None, problem
    if state is None:
        leftovers = layout.etcd_data_dirs()
        if leftovers:
            # E.g. a state file set aside at an earlier start: this node is not simply empty.
            problem = f"no state, but etcd data under data/: {', '.join(leftovers)}"
            log.warning("%s; this node tells the leader and waits", problem)
            return None, problem
        log.info("no etcd state: this node is empty and waits for the leader")
        return None, None
    data = layout.etcd_data(state.cluster.cluster_token)
    if not data.exists():
        log.warning(
            "state names cluster %s but its data dir %s is gone: this node is empty",
            state.cluster.cluster_token,
            data,
        )
        write_state(layout.state, None)
        return None, None
    if state.new_cluster:
        # The data exists, so the member was bootstrapped; never bootstrap it again.
        state = state.with_changes(new_cluster=False)
        write_state(layout.state, state)
    log.info(
        "etcd state: member of cluster %s, etcd %s%s%s",
        state.cluster.cluster_token,
        state.etcd_version,
        ", quarantined" if state.quarantined else "",
        "; the state file is etcd-manager's (protobuf) and stays so" if _is_protobuf_file(layout.state) else "",
    )
    return state, None
