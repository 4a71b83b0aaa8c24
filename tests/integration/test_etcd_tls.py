"""A real etcd with https peer and client URLs and client-certificate auth."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
import trio
from etcd_helpers import binaries_or_skip, launch, running

from etcdmgr.etcd.client import ClientTLS, EtcdClient, V2Node
from etcdmgr.etcd.errors import EtcdUnavailable
from etcdmgr.etcd.process import TLSFiles
from etcdmgr.pki import CLIENTS_CA, PEERS_CA, issue_leaf, load_or_create_ca

pytestmark = pytest.mark.etcd
DAY = timedelta(days=1)


async def test_tls_member(tmp_path: Path) -> None:
    binaries = binaries_or_skip("3.5.30")
    ip = "127.0.55.41"
    pki = tmp_path / "pki"
    peers_ca = load_or_create_ca(pki, PEERS_CA, create=True)
    clients_ca = load_or_create_ca(pki, CLIENTS_CA, create=True)
    # Outgoing loopback connections come from 127.0.0.1: peer certs name it too.
    ips = [ip, "127.0.0.1"]
    peer_cert, peer_key = issue_leaf(peers_ca, pki / "m1", "me", "m1", [], ips, True, True, DAY)
    server_cert, server_key = issue_leaf(clients_ca, pki / "m1", "server", "m1", [], ips, True, True, DAY)
    cert, key = issue_leaf(clients_ca, pki / "client", "client", "etcdmgr", [], [], False, True, DAY)

    peer, client_url = f"https://{ip}:2380", f"https://{ip}:4001"
    member = dataclasses.replace(
        launch(binaries, tmp_path, "m1", ip),
        listen_peer_urls=[peer],
        advertise_peer_urls=[peer],
        listen_client_urls=[client_url],
        advertise_client_urls=[client_url],
        initial_cluster={"m1": [peer]},
        peer_tls=TLSFiles(peer_cert, peer_key, peers_ca.cert_path),
        client_tls=TLSFiles(server_cert, server_key, clients_ca.cert_path),
    )
    client = EtcdClient([client_url], binaries, ClientTLS(clients_ca.cert_path, cert, key))
    async with running(member, healthy=False) as proc:
        with trio.fail_after(30):
            await proc.wait_healthy(client)
        await client.put("k", "v")
        assert await client.get("k") == "v"
        [m] = await client.member_list()
        assert m.peer_urls == (peer,) and m.client_urls == (client_url,)
        await client.load_v2([V2Node("/x", "y", None)])
        assert await client.dump_v2() == [V2Node("/x", "y", None)]

        anonymous = EtcdClient([client_url], binaries, ClientTLS(clients_ca.cert_path))
        assert not await anonymous.endpoint_health(client_url)
        with trio.fail_after(5), pytest.raises(EtcdUnavailable):
            await anonymous.get("k")
