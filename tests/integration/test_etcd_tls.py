"""Real etcd clusters with https peer and client URLs and client-certificate auth on both, with
certificates from etcdmgr.pki.etcd_tls and the CAs of `etcdmgr pki init`."""

from __future__ import annotations

import shutil
import socket
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio
from etcd_helpers import START_TIMEOUT, binaries_or_skip

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdUnavailable
from etcdmgr.etcd.http import V2Node
from etcdmgr.etcd.launch import EtcdLaunch
from etcdmgr.etcd.process import EtcdProcess
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model.tls import ClientTLS
from etcdmgr.pki import CLIENTS_CA, PEERS_CA
from etcdmgr.pki.etcd_tls import EtcdNodeTls, issue_etcd_node_certs, needs_reissue

pytestmark = [pytest.mark.etcd, pytest.mark.slow]
DAY = timedelta(days=1)
PEER_PORT, CLIENT_PORT = 2380, 4001


def peer_url(ip: str) -> str:
    return f"https://{ip}:{PEER_PORT}"


def client_url(ip: str) -> str:
    return f"https://{ip}:{CLIENT_PORT}"


def init_pki(pki: Path) -> Path:
    assert pki_main(["init", f"--pki-dir={pki}"]) == 0
    return pki


def operator_cert(pki: Path, out: Path, name: str = "operator") -> ClientTLS:
    """A client certificate as an operator gets it: `etcdmgr pki client-cert`."""
    assert pki_main(["client-cert", f"--pki-dir={pki}", f"--name={name}", f"--out={out}"]) == 0
    return ClientTLS(out / "ca.crt", out / f"{name}.crt", out / f"{name}.key")


def issue(
    pki: Path, root: Path, name: str, ip: str, duration: timedelta = DAY, now: datetime | None = None
) -> EtcdNodeTls:
    return issue_etcd_node_certs(
        pki, root / name / "pki", name, [peer_url(ip)], [client_url(ip)], ip, duration, now=now
    )


def tls_launch(
    binaries: EtcdBinaries, root: Path, name: str, ip: str, cluster: dict[str, str], tls: EtcdNodeTls
) -> EtcdLaunch:
    return EtcdLaunch(
        name=name,
        binaries=binaries,
        data_dir=root / name / "data",
        listen_peer_urls=[peer_url(ip)],
        advertise_peer_urls=[peer_url(ip)],
        listen_client_urls=[client_url(ip)],
        advertise_client_urls=[client_url(ip)],
        initial_cluster={n: [peer_url(a)] for n, a in cluster.items()},
        initial_cluster_token="tls-token",
        peer_tls=tls.peer,
        client_tls=tls.client,
    )


@dataclass
class TlsCluster:
    launches: list[EtcdLaunch]
    tls: list[EtcdNodeTls]
    procs: list[EtcdProcess]
    stack: AsyncExitStack

    def manager(self, i: int | None = None) -> EtcdClient:
        """The client of the first member's manager, for member i or all of them."""
        urls = [u for n, m in enumerate(self.launches) if i in (None, n) for u in m.advertise_client_urls]
        return EtcdClient(urls, self.launches[0].binaries, self.tls[0].manager)

    async def start(self, i: int) -> None:
        member = self.launches[i]
        self.procs[i] = await self.stack.enter_async_context(
            await EtcdProcess.start(member, member.data_dir.parent / "log")
        )

    async def wait_healthy(self, i: int) -> None:
        with trio.fail_after(START_TIMEOUT):
            await self.procs[i].wait_healthy(self.manager(i))


@asynccontextmanager
async def tls_cluster(
    binaries: EtcdBinaries, root: Path, pkis: Sequence[Path], cluster: dict[str, str]
) -> AsyncIterator[TlsCluster]:
    """Members named and addressed by cluster, member i with certificates from pkis[i]; every
    member started before any is waited for, since a new cluster needs a quorum to be healthy.
    Every process is stopped on exit."""
    tls = [issue(pki, root, name, ip) for pki, (name, ip) in zip(pkis, cluster.items(), strict=True)]
    launches = [
        tls_launch(binaries, root, name, ip, cluster, t)
        for (name, ip), t in zip(cluster.items(), tls, strict=True)
    ]
    async with AsyncExitStack() as stack:
        c = TlsCluster(launches, tls, [], stack)
        for member in launches:
            c.procs.append(
                await stack.enter_async_context(
                    await EtcdProcess.start(member, member.data_dir.parent / "log")
                )
            )
        for i in range(len(launches)):
            await c.wait_healthy(i)
        yield c


def served_cert(ip: str, tls: ClientTLS) -> bytes:
    """The certificate etcd's client port presents now (DER)."""
    assert tls.cert is not None and tls.key is not None
    ctx = ssl.create_default_context(cafile=str(tls.ca))
    ctx.load_cert_chain(str(tls.cert), str(tls.key))
    with (
        socket.create_connection((ip, CLIENT_PORT), timeout=5) as sock,
        ctx.wrap_socket(sock, server_hostname=ip) as s,
    ):
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return der


async def refused(endpoint: str, binaries: EtcdBinaries, tls: ClientTLS) -> None:
    # etcdctl retries a refused handshake until its deadline; a get that is served takes a
    # few hundredths of a second, so 3 s tells the two apart without waiting the default 10.
    client = EtcdClient([endpoint], binaries, tls, timeout=3)
    assert not await client.endpoint_health(endpoint)
    with trio.fail_after(10), pytest.raises(EtcdUnavailable):
        await client.get("k")


@pytest.mark.parametrize(
    ("version", "ips"),
    [
        ("3.5.30", ("127.0.88.1", "127.0.88.2", "127.0.88.3")),
        ("3.4.23", ("127.0.88.4", "127.0.88.5", "127.0.88.6")),
    ],
)
async def test_tls_cluster_and_rolling_reissue(
    tmp_path: Path, version: str, ips: tuple[str, str, str]
) -> None:
    binaries = binaries_or_skip(version)
    pki = init_pki(tmp_path / "pki")
    cluster = dict(zip(("m1", "m2", "m3"), ips, strict=True))
    started = time.monotonic()
    async with tls_cluster(binaries, tmp_path, [pki] * 3, cluster) as c:
        print(f"etcd {version}: 3-member TLS cluster healthy after {time.monotonic() - started:.2f} s")
        manager_tls = c.tls[0].manager
        operator = EtcdClient([client_url(ips[1])], binaries, operator_cert(pki, tmp_path / "operator"))
        await operator.put("k", "v")
        assert await c.manager(2).get("k") == "v"
        assert sorted(m.name for m in await c.manager().member_list()) == ["m1", "m2", "m3"]
        await operator.load_v2([V2Node("/x", "y", None)])  # the v2 API over https with a client cert
        assert await operator.dump_v2() == [V2Node("/x", "y", None)]

        ca_only = ClientTLS(pki / f"{CLIENTS_CA}.crt")
        await refused(client_url(ips[0]), binaries, ca_only)
        foreign = operator_cert(init_pki(tmp_path / "foreign"), tmp_path / "foreign-operator")
        # Trusts our servers, but presents a certificate from another CA.
        foreign_client = ClientTLS(ca_only.ca, foreign.cert, foreign.key)
        await refused(client_url(ips[0]), binaries, foreign_client)

        # Reissue and restart one member at a time: the other two keep serving meanwhile.
        for i, (name, ip) in enumerate(cluster.items()):
            before = served_cert(ip, manager_tls)
            issue(pki, tmp_path, name, ip)
            await c.procs[i].stop()
            others = EtcdClient([client_url(a) for a in ips if a != ip], binaries, manager_tls)
            await others.put("k", f"during {name}")
            t0 = time.monotonic()
            await c.start(i)
            await c.wait_healthy(i)
            print(f"etcd {version}: {name} healthy {time.monotonic() - t0:.2f} s after its restart")
            assert served_cert(ip, manager_tls) != before
            assert await c.manager(i).get("k") == f"during {name}"


async def test_short_lived_certificates_are_due_after_two_thirds(tmp_path: Path) -> None:
    binaries = binaries_or_skip("3.5.30")
    pki = init_pki(tmp_path / "pki")
    name, ip = "m1", "127.0.88.7"
    # 30 s certificates issued 24 s ago: more than two thirds of their life are gone, and they
    # expire 6 s from now (time enough for etcd to start), while etcd still serves them.
    issued = datetime.now(UTC) - timedelta(seconds=24)
    lifetime = timedelta(seconds=30)
    tls = issue(pki, tmp_path, name, ip, lifetime, now=issued)
    member = tls_launch(binaries, tmp_path, name, ip, {name: ip}, tls)
    manager = EtcdClient([client_url(ip)], binaries, tls.manager)
    async with await EtcdProcess.start(member, tmp_path / name / "log") as proc:
        with trio.fail_after(START_TIMEOUT):
            await proc.wait_healthy(manager)
        urls = ([peer_url(ip)], [client_url(ip)])
        files = (pki, tmp_path / name / "pki", name, *urls, ip)
        assert needs_reissue(*files, now=issued + timedelta(seconds=19)) is None
        assert "expiring" in (needs_reissue(*files, now=issued + timedelta(seconds=21)) or "")

        # etcd reads its certificate files again for new connections: no restart needed.
        before = served_cert(ip, tls.manager)
        issue(pki, tmp_path, name, ip)
        assert served_cert(ip, tls.manager) != before
        assert needs_reissue(*files) is None
        expired = issued + lifetime + timedelta(seconds=1)
        await trio.sleep(max(0.0, (expired - datetime.now(UTC)).total_seconds()))
        await manager.put("k", "served after the first certificates expired")


async def test_ca_files_with_old_and_new_certificates(tmp_path: Path) -> None:
    """Mid-rotation: every CA file trusts the old and the new CA certificate; m1 and m2 still
    sign with the old key, m3 already with the new one. The members and clients of either
    signer work together."""
    binaries = binaries_or_skip("3.5.30")
    old, new = init_pki(tmp_path / "old"), init_pki(tmp_path / "new")
    old_key = shutil.copytree(old, tmp_path / "old-key")
    for ca in (PEERS_CA, CLIENTS_CA):
        both = (old / f"{ca}.crt").read_bytes() + (new / f"{ca}.crt").read_bytes()
        (old_key / f"{ca}.crt").write_bytes(both)
    new_key = shutil.copytree(old_key, tmp_path / "new-key")
    for ca in (PEERS_CA, CLIENTS_CA):
        shutil.copyfile(new / f"{ca}.key", new_key / f"{ca}.key")

    cluster = {"m1": "127.0.88.8", "m2": "127.0.88.9", "m3": "127.0.88.10"}
    async with tls_cluster(binaries, tmp_path, [old_key, old_key, new_key], cluster) as c:
        by_old = operator_cert(old_key, tmp_path / "op-old")
        by_new = operator_cert(new_key, tmp_path / "op-new")
        for i, ip in enumerate(cluster.values()):
            for n, tls in enumerate((by_old, by_new)):
                await EtcdClient([client_url(ip)], binaries, tls).put(f"k{i}{n}", "v")
        assert len(await c.manager(2).get_prefix("k")) == 6
