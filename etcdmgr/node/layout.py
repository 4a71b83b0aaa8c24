"""Where a node keeps things under --data-dir (the original's layout)."""

from __future__ import annotations

import base64
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from etcdmgr.util.atomic import write_atomic

log = logging.getLogger(__name__)


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

    def etcd_data(self, cluster_token: str) -> Path:
        return self.root / "data" / cluster_token

    def trashcan(self) -> Path:
        return self.root / "data-trashcan"

    def pki(self, cluster_token: str) -> Path:
        return self.root / "pki" / cluster_token

    def scratch(self) -> Path:
        return self.root / "tmp"

    def peer_id(self) -> str:
        """This node's id: random, URL-safe base64, kept across restarts in `myid`."""
        try:
            existing = self.myid.read_text().strip()
            if existing:
                return existing
        except FileNotFoundError:
            pass
        new_id = "-"
        while not new_id[0].isalnum():  # an id that starts like a flag confuses command lines
            new_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        write_atomic(self.myid, new_id.encode())
        log.info("new node: created peer id %s in %s", new_id, self.myid)
        return new_id

    def move_to_trash(self, cluster_token: str) -> Path | None:
        """Old data dirs are moved aside, never deleted in place."""
        src = self.etcd_data(cluster_token)
        if not src.exists():
            return None
        dest = self.trashcan() / f"{cluster_token}-{time.strftime('%Y%m%dT%H%M%S')}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        src.rename(dest)
        log.info("moved old etcd data %s to %s", src, dest)
        return dest
