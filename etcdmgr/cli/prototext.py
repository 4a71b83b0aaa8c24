"""The protobuf text form the original's ctl prints (`member_count:3 etcd_version:"3.4.23"`)."""

from __future__ import annotations

import json

from etcdmgr.model import ClusterSpec
from etcdmgr.model.command import Command


def spec_text(spec: ClusterSpec) -> str:
    return f"member_count:{spec.member_count} etcd_version:{json.dumps(spec.etcd_version)}"


def command_text(cmd: Command) -> str:
    text = f"timestamp:{cmd.timestamp}"
    if cmd.restore_backup is not None:
        rb = cmd.restore_backup
        text += (
            f" restore_backup:<cluster_spec:<{spec_text(rb.cluster_spec)} > backup:{json.dumps(rb.backup)} >"
        )
    return text
