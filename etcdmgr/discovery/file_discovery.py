"""Discovery through a shared folder, as etcd-manager's VFS discovery does it.

Each node writes ``<dir>/<peer id>`` holding its record (discovery/records.py). Readers skip
files they cannot read or parse, or whose name is no peer id, with one warning each, so one bad
file never hides the other peers.

Every call has a deadline (``timeout``) and runs in a worker thread abandoned when it outlives
it, so a hung mount makes a poll fail (DiscoveryError) rather than freeze the daemon.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

from etcdmgr.discovery.records import MAX_RECORD, DiscoveryError, record_bytes, record_endpoints
from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store.deadline import DEFAULT_TIMEOUT, THREADS, in_thread
from etcdmgr.store.layout import check_component
from etcdmgr.store.urls import local_path
from etcdmgr.util.atomic import remove_file, write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")


class FileDiscovery:
    """Publish this node and poll for the others in the folder of a file:// URL."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("a discovery timeout must be positive")
        self.url = url
        self.root = local_path(url, "discovery", DiscoveryError)
        self.timeout = timeout
        self._limiter = trio.CapacityLimiter(THREADS)
        self._seen = False  # the folder existed once: its absence is then reported

    async def _run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        def too_slow(limit: float) -> DiscoveryError:
            return DiscoveryError(
                f"discovery folder {self.root} did not answer within {limit:g}s ({what}); is its mount hung?"
            )

        return await in_thread(lambda: self._limiter, self.timeout, too_slow, fn, *args)

    async def publish(self, peer_id: PeerId, endpoints: list[PeerEndpoint]) -> None:
        path = self._path(peer_id)
        try:
            # Readable by all: the record is no secret and peers may run as other users.
            await self._run("publishing", write_atomic, path, record_bytes(peer_id, endpoints), 0o644)
        except OSError as e:
            raise DiscoveryError(f"cannot publish discovery record {path}: {e.strerror or e}") from None

    async def withdraw(self, peer_id: PeerId) -> None:
        path = self._path(peer_id)
        try:
            await self._run("withdrawing a record", remove_file, path)
        except OSError as e:
            raise DiscoveryError(f"cannot remove discovery record {path}: {e.strerror or e}") from None

    async def poll(self) -> dict[PeerId, list[PeerEndpoint]]:
        """Peer id -> endpoints of every readable record ({} while the folder does not exist yet;
        DiscoveryError once it has gone away)."""
        return await self._run("polling", self._poll)

    def _poll(self) -> dict[PeerId, list[PeerEndpoint]]:
        try:
            # Regular files only: a FIFO or device would block the read.
            names = sorted(
                e.name for e in os.scandir(self.root) if not e.name.startswith(".") and e.is_file()
            )
        except FileNotFoundError:
            if self._seen:
                raise DiscoveryError(
                    f"discovery folder {self.root} has gone away (it existed before); "
                    "peers already known are kept"
                ) from None
            return {}
        except OSError as e:
            raise DiscoveryError(f"cannot list discovery folder {self.root}: {e.strerror or e}") from None
        self._seen = True
        found: dict[PeerId, list[PeerEndpoint]] = {}
        for name in names:
            path = self.root / name
            try:
                peer_id = parse_peer_id(name, "file name")
                found[peer_id] = record_endpoints(_read_record(path), str(path))
            except (OSError, InvalidData) as e:
                log.warning("skipping discovery record %s: %s", path, e)
        return found

    def _path(self, peer_id: PeerId) -> Path:
        try:
            return self.root / check_component(peer_id, "peer id")
        except EtcdmgrError as e:
            raise DiscoveryError(str(e)) from None


def _read_record(path: Path) -> bytes:
    with path.open("rb") as f:
        data = f.read(MAX_RECORD + 1)
    if len(data) > MAX_RECORD:
        raise InvalidData(f"larger than {MAX_RECORD} bytes")
    return data

