"""Figures of a member's keyspace at one revision, measured alike on the live member when a
backup is taken and on a restore of it (etcdmgr.model.checks says why these figures)."""

from __future__ import annotations

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError
from etcdmgr.model.checks import KeyspaceFigures


def compacted(error: EtcdError) -> bool:
    return "compacted" in str(error)


async def measure(client: EtcdClient, endpoint: str, revision: int) -> KeyspaceFigures:
    """The key count and `hashkv` of ``endpoint`` at ``revision``; only the revision when the
    member already compacted past it (nothing is left there to compare)."""
    try:
        keys = await client.count_keys(endpoint, revision)
        digest, compact_revision = await client.hash_kv(endpoint, revision)
    except EtcdError as e:
        if compacted(e):
            return KeyspaceFigures(revision)
        raise
    # etcd answers -1 when the member never compacted.
    return KeyspaceFigures(revision, keys, digest, compact_revision if compact_revision >= 0 else None)
