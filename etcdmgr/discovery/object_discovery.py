"""Discovery through an object-store prefix (S3, GCS, Azure Blob): one object per node named by
its peer id, holding the same record as the file:// folder (discovery/records.py), so the
original's VFS discovery in a bucket reads the same way.

A poll is one LIST of the objects directly under the prefix (deeper ones are no records, as
folders in the discovery folder are none); a record is fetched again only when its ETag changed. A node whose own record
disappeared (a lifecycle rule, an emptied bucket) writes it again at its next poll. Records that
cannot be read are skipped with one warning each, as in the folder.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import trio

from etcdmgr.discovery.records import MAX_RECORD, DiscoveryError, record_bytes, record_endpoints
from etcdmgr.model.errors import EtcdmgrError, InvalidData
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.store.deadline import DEFAULT_TIMEOUT, THREADS, in_thread
from etcdmgr.store.layout import check_component
from etcdmgr.store.object_client import Meta, ObjectClient
from etcdmgr.store.object_config import ObjectSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


class ObjectDiscovery:
    """Publish this node and poll for the others under the prefix of ``settings``."""

    def __init__(self, settings: ObjectSettings, timeout: float = DEFAULT_TIMEOUT) -> None:
        if timeout <= 0:
            raise ValueError("a discovery timeout must be positive")
        self.url = settings.location.url
        self.timeout = timeout
        self._client = ObjectClient(settings, "discovery store")
        self._limiter = trio.CapacityLimiter(THREADS)
        self._records: dict[str, tuple[str, list[PeerEndpoint]]] = {}  # key -> (etag, endpoints)
        self._mine: tuple[str, bytes] | None = None  # our own record: written again if it goes

    async def _run(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        def too_slow(limit: float) -> DiscoveryError:
            return DiscoveryError(f"discovery store {self.url} did not answer within {limit:g}s ({what})")

        try:
            return await in_thread(lambda: self._limiter, self.timeout, too_slow, fn, *args)
        except EtcdmgrError as e:
            if isinstance(e, DiscoveryError):
                raise
            raise DiscoveryError(str(e)) from None

    async def publish(self, peer_id: PeerId, endpoints: list[PeerEndpoint]) -> None:
        key = self._key(peer_id)
        self._mine = (key, record_bytes(peer_id, endpoints))
        await self._write(*self._mine)

    async def _write(self, key: str, data: bytes) -> Meta:
        """Write our own record; its endpoints are known without reading it back."""
        etag = await self._run("publishing", self._client.put, key, data) or ""
        self._records[key] = (etag, record_endpoints(data, f"{self.url}/{key}"))
        return Meta(etag, len(data))

    async def withdraw(self, peer_id: PeerId) -> None:
        key = self._key(peer_id)
        await self._run("withdrawing a record", self._client.delete, [key])
        self._records.pop(key, None)
        if self._mine is not None and self._mine[0] == key:
            self._mine = None

    async def poll(self) -> dict[PeerId, list[PeerEndpoint]]:
        """Peer id -> endpoints of every readable record ({} while there are none)."""
        listed = await self._run("polling", self._client.list_top, "")
        if self._mine is not None and self._mine[0] not in listed:
            log.info("discovery record %s/%s has gone: writing it again", self.url, self._mine[0])
            listed[self._mine[0]] = await self._write(*self._mine)
        found: dict[PeerId, list[PeerEndpoint]] = {}
        for key, meta in sorted(listed.items()):
            where = f"{self.url}/{key}"
            try:
                peer_id = parse_peer_id(key, "object name")
                if meta.size > MAX_RECORD:
                    raise InvalidData(f"larger than {MAX_RECORD} bytes")
                cached = self._records.get(key)
                if cached is None or not meta.etag or cached[0] != meta.etag:
                    got = await self._run("reading a record", self._client.get, key)
                    if got is None:
                        continue  # withdrawn since the listing
                    cached = (got[1], record_endpoints(got[0], where))
                    self._records[key] = cached
                found[peer_id] = cached[1]
            except InvalidData as e:
                log.warning("skipping discovery record %s: %s", where, e)
        for gone in set(self._records) - set(listed):
            del self._records[gone]
        return found

    def _key(self, peer_id: PeerId) -> str:
        try:
            return check_component(peer_id, "peer id")
        except EtcdmgrError as e:
            raise DiscoveryError(str(e)) from None
