"""A seed address is asked who it is over mutual TLS: the id it answers with is learned only when
its certificate names that id too (real TLS on loopback, no etcd)."""

from __future__ import annotations

import itertools
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from certs import peer_files

from etcdmgr.model import PeerEndpoint
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import PingAnswer
from etcdmgr.peer.directory import PeerDirectory
from etcdmgr.peer.gossip import ping_seed
from etcdmgr.peer.rpc_client import PeerCaller
from etcdmgr.peer.transport import Request, open_peer_client, serve_peers
from etcdmgr.pki import client_ssl_context, server_ssl_context

SERVER_ID = PeerId("srv-seed")
CLIENT_ID = PeerId("cli-seeker")
_hosts = itertools.count()


def next_host() -> str:
    return f"127.0.1.{next(_hosts) % 240 + 10}"


def answering_as(peer_id: str) -> Any:
    async def handler(req: Request, caller: str | None) -> Any:
        return PingAnswer(peer_id=PeerId(peer_id), known={}).to_wire()

    return handler


@pytest.mark.parametrize(("answers_as", "learned"), [(SERVER_ID, True), ("srv-impostor", False)])
async def test_a_seed_is_learned_only_under_the_id_its_certificate_names(
    nursery: trio.Nursery, tmp_path: Path, answers_as: str, learned: bool
) -> None:
    server = server_ssl_context(peer_files(tmp_path, SERVER_ID))
    client = client_ssl_context(peer_files(tmp_path, CLIENT_ID))
    host = next_host()
    port = await nursery.start(partial(serve_peers, answering_as(answers_as), host, 0, server))
    seed = PeerEndpoint(host, port)
    directory = PeerDirectory(CLIENT_ID, (PeerEndpoint("127.0.1.1", 8000),), 4.0)
    directory.set_seeds([seed])
    async with open_peer_client(CLIENT_ID, "test", client) as peer_client:
        await ping_seed(directory, PeerCaller(peer_client, directory), seed, 2.0)
    assert (answers_as in directory.records) is learned
    assert directory.healthy() == sorted([CLIENT_ID, *([SERVER_ID] if learned else [])])
    assert directory.due_seeds() == [], "asked again only later, whatever the answer"
