"""Discovery through a shared folder, as etcd-manager's VFS discovery does it.

Each node writes ``<dir>/<peer id>`` holding what Go's encoding/json makes of its record:
compact, e.g. {"id":"<id>","endpoints":[{"ip":"127.0.0.1","port":8000}]}, no trailing
newline. Readers key records by file name, as the original does, and skip files they cannot
read or parse, or whose name is no peer id, with one warning each, so one bad file never hides
the other peers.

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

from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.model.fields import as_dict, listed, nested
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store.codec import decode_json, encode_go_json
from etcdmgr.store.file_store import DEFAULT_TIMEOUT, THREADS
from etcdmgr.store.layout import check_component
from etcdmgr.store.urls import local_path
from etcdmgr.util.atomic import remove_file, write_atomic

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_RECORD = 64 * 1024  # a record is about 100 bytes; anything this big is not one


class DiscoveryError(EtcdmgrError):
    """The discovery folder cannot be used at all."""


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
        try:
            with trio.fail_after(self.timeout):
                return await trio.to_thread.run_sync(fn, *args, abandon_on_cancel=True, limiter=self._limiter)
        except trio.TooSlowError:
            raise DiscoveryError(
                f"discovery folder {self.root} did not answer within {self.timeout:g}s ({what}); "
                "is its mount hung?"
            ) from None

    async def publish(self, peer_id: PeerId, endpoints: list[PeerEndpoint]) -> None:
        path = self._path(peer_id)
        doc = {"id": peer_id, "endpoints": [e.to_json() for e in endpoints]}
        try:
            # Readable by all: the record is no secret and peers may run as other users.
            await self._run("publishing", write_atomic, path, encode_go_json(doc), 0o644)
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
                found[peer_id] = _endpoints(decode_json(_read_record(path), str(path)))
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


def _endpoints(doc: object) -> list[PeerEndpoint]:
    what = "discovery record"
    return list(listed(as_dict(doc, what), "endpoints", nested(PeerEndpoint.from_json), what))
