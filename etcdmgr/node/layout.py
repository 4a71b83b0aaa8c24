"""Where a node keeps things under --data-dir (the original's layout).

Paths below the root are built only from checked ids (etcdmgr.model.ids), and the layout itself
refuses any name that is not one plain component, so no value from a peer or a file can point
outside the data dir, whatever checks it went through before.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import ClusterToken, PeerId, new_peer_id, parse_peer_id
from etcdmgr.util.atomic import fsync_dir, make_dirs, write_atomic

log = logging.getLogger(__name__)

MANAGER_PKI = "manager"


def _component(parent: Path, name: str, what: str) -> Path:
    """parent / name, for a name that stays a direct child of parent."""
    if (
        not name
        or name in (".", "..")
        or os.path.isabs(name)
        or any(sep in name for sep in ("/", "\\", "\0"))
    ):
        raise InvalidData(f"{what} {name!r} is not a plain folder name: refused as a path under {parent}")
    return parent / name


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @property
    def myid(self) -> Path:
        return self.root / "myid"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def etcd_pid(self) -> Path:
        return self.root / "etcd.pid"

    def data(self) -> Path:
        return self.root / "data"

    def etcd_data(self, cluster_token: ClusterToken) -> Path:
        return _component(self.data(), cluster_token, "cluster token")

    def trashcan(self) -> Path:
        return self.root / "data-trashcan"

    def pki(self, cluster_token: ClusterToken) -> Path:
        if cluster_token == MANAGER_PKI:
            raise InvalidData(
                f"cluster token {cluster_token!r} is refused: pki/{MANAGER_PKI} holds the manager's keys"
            )
        return _component(self.root / "pki", cluster_token, "cluster token")

    @property
    def manager_pki(self) -> Path:
        """The manager's own certificates (peer API, etcd client)."""
        return self.root / "pki" / MANAGER_PKI

    def scratch(self) -> Path:
        return self.root / "tmp"

    def etcd_data_dirs(self) -> list[str]:
        """Names of the etcd data dirs under data/ (one per cluster token this node was in)."""
        try:
            return sorted(e.name for e in os.scandir(self.data()) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []

    def peer_id(self, given: PeerId | None = None, first: PeerId | None = None) -> PeerId:
        """This node's id, kept across restarts in `myid`: `given` (refused when myid names
        another), else the one in myid, else `first` or a random URL-safe base64 one."""
        try:
            existing = self.myid.read_text().strip()
        except FileNotFoundError:
            existing = ""
        if existing:
            kept = parse_peer_id(existing, str(self.myid))
            if given is not None and given != kept:
                raise InvalidData(
                    f"this node's id is {given}, but {self.myid} names {kept}: "
                    "the data dir belongs to another member"
                )
            return kept
        new_id = given or first or new_peer_id()
        write_atomic(self.myid, new_id.encode())
        log.info("new node: peer id %s, kept in %s", new_id, self.myid)
        return new_id

    def move_to_trash(self, cluster_token: ClusterToken) -> Path | None:
        """Old data dirs are moved aside, never deleted in place (node/trash.py prunes them).
        Blocking: both folders are fsynced, so a crash never brings the data dir back."""
        src = self.etcd_data(cluster_token)
        if not src.exists():
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = _component(self.trashcan(), f"{cluster_token}-{stamp}", "trash name")
        n = 1
        while dest.exists():
            n += 1
            dest = _component(self.trashcan(), f"{cluster_token}-{stamp}-{n}", "trash name")
        make_dirs(dest.parent)
        src.rename(dest)
        os.utime(dest)  # its age in the trash counts from now
        fsync_dir(src.parent)
        fsync_dir(dest.parent)
        log.info("moved old etcd data %s to %s", src, dest)
        return dest
