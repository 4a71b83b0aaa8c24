"""The peer API of running daemons under mutual TLS: who is refused, and what survives.

The tester speaks to the daemons as a peer would, with certificates issued through etcdmgr.pki:
from the cluster's own etcd-manager CA (a legitimate peer that is not the leader) or from a
CA of its own (a stranger).
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import msgpack
import pytest
import trio
from harness import Cluster, Daemon, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.codec import MAX_FRAME
from etcdmgr.peer.transport import PeerAuthError, PeerUnreachable, RpcError, open_peer_client
from etcdmgr.peer.ws import TOO_BIG, WebSocket, WebSocketClosed, client_handshake
from etcdmgr.pki import MANAGER_CA, PeerTlsFiles, client_ssl_context, issue_peer_tls_files, load_or_create_ca

pytestmark = [pytest.mark.slow]

VERSION = "3.4.23"
PEER_PORT = 8000  # the daemon's default --peer-port; the harness keeps it
FAST = 1.0  # a refusal must come long before any call timeout
TESTER = "zz-tester"  # sorts after every daemon id but a 1-in-4096 one: never a leader candidate
DAY = timedelta(days=1)


def need_etcd() -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")


def endpoint(d: Daemon) -> PeerEndpoint:
    return PeerEndpoint(d.ip, PEER_PORT)


def peer_certs(c: Cluster, peer_id: str = TESTER, *, pki_dir: Path | None = None) -> PeerTlsFiles:
    """Peer certificates for the tester from the cluster's manager CA, or from another pki dir."""
    ca = load_or_create_ca(pki_dir or c.pki_dir, MANAGER_CA, create=False)
    return issue_peer_tls_files(ca, c.root / "tester" / (pki_dir or c.pki_dir).name, peer_id, DAY)


def foreign_pki(c: Cluster) -> Path:
    """A second, unrelated set of CAs made as an operator would: `etcdmgr pki init`."""
    path = c.root / "foreign-pki"
    subprocess.run(
        [*c.command, "pki", "init", f"--pki-dir={path}"], check=True, capture_output=True, timeout=60
    )
    return path


def wait_serving(d: Daemon) -> None:
    wait_for(f"daemon {d.n}'s peer API", lambda: "peer API listening" in d.log(), timeout=20)


@asynccontextmanager
async def raw_tls(d: Daemon, files: PeerTlsFiles) -> AsyncIterator[tuple[trio.SSLStream[Any], str]]:
    """A TLS stream to d's peer port, and the local host:port the daemon sees it from."""
    tcp = await trio.open_tcp_stream(d.ip, PEER_PORT)
    host, port = tcp.socket.getsockname()[:2]
    stream = trio.SSLStream(tcp, client_ssl_context(files))
    try:
        yield stream, f"{host}:{port}"
    finally:
        await trio.aclose_forcefully(stream)


@asynccontextmanager
async def raw_websocket(d: Daemon, files: PeerTlsFiles) -> AsyncIterator[WebSocket]:
    async with raw_tls(d, files) as (stream, _):
        await stream.do_handshake()
        yield await client_handshake(stream, str(endpoint(d)), 2 * MAX_FRAME)


async def get_info(c: Cluster, d: Daemon, files: PeerTlsFiles, cluster_name: str = "test") -> Any:
    async with open_peer_client(TESTER, cluster_name, client_ssl_context(files)) as client:
        return await client.call(endpoint(d), methods.GET_INFO, {}, expect_peer_id=d.peer_id())


async def in_thread(fn: Callable[[], Any]) -> Any:
    """Blocking harness waits, off the trio loop."""
    return await trio.to_thread.run_sync(fn)


# --- 1. a stranger's certificate ----------------------------------------------------------------


async def test_a_peer_from_another_ca_is_refused_at_once_and_never_admitted(
    make_cluster: Callable[..., Cluster],
) -> None:
    need_etcd()
    c = make_cluster(4, tls=True)
    foreign = foreign_pki(c)
    # The fourth daemon is configured like the others, but trusts and is trusted by another CA.
    c[4].args = [f"--pki-dir={foreign}" if a.startswith("--pki-dir=") else a for a in c[4].args]
    c.configure(3, VERSION)
    c.start(1, 2, 3)
    members = await in_thread(partial(c.wait_members, 3, timeout=90, on=[1, 2, 3]))
    await in_thread(partial(c.put, "before", "stranger"))

    # A stranger's client certificate (it trusts our CA, so the refusal is the daemon's own).
    stranger = replace(peer_certs(c, pki_dir=foreign), ca_bundle=c.pki_dir / f"{MANAGER_CA}.crt")
    async with raw_tls(c[1], stranger) as (stream, me):
        start = time.perf_counter()
        with pytest.raises((trio.BrokenResourceError, WebSocketClosed)):
            # TLS 1.3 lets the client finish first; the refusal shows on the upgrade.
            await stream.do_handshake()
            await client_handshake(stream, str(endpoint(c[1])), MAX_FRAME)
        assert time.perf_counter() - start < FAST
    await in_thread(
        partial(wait_for, "the refusal in the log", lambda: f"refused connection from {me}" in c[1].log(), 5)
    )
    line = next(x for x in c[1].log().splitlines() if f"refused connection from {me}" in x)
    assert "CERTIFICATE" in line.upper(), line

    start = time.perf_counter()
    with pytest.raises((PeerAuthError, PeerUnreachable), match="certificate"):
        await get_info(c, c[1], stranger)
    assert time.perf_counter() - start < FAST

    # A whole daemon from the other CA: discovery names it to everyone, and the leader is asked
    # for a fourth member, yet nobody may talk to it, so it is never admitted.
    c.start(4)
    c.configure(4, VERSION)
    stranger_id = await in_thread(partial(wait_for, "the stranger's id", lambda: c[4].peer_id(), 20))

    def members_know_the_stranger() -> bool:
        return all(stranger_id in d.log() for d in c.daemons[:3])

    def leader_wants_a_fourth() -> bool:
        return any("3 of 4 members; no idle peer to add" in d.log() for d in c.daemons[:3])

    await in_thread(partial(wait_for, "the members to learn of the stranger", members_know_the_stranger, 20))
    await in_thread(partial(wait_for, "the leader to want a fourth member", leader_wants_a_fourth, 30))
    await trio.sleep(4)  # two more leader cycles
    assert not (c[4].data_dir / "state").exists(), "the stranger never got etcd state"
    assert all(d.running for d in c.daemons), "every daemon, the stranger included, still runs"
    after = await in_thread(partial(c.wait_members, 3, timeout=20, on=[1, 2, 3]))
    assert {m["id"] for m in after} == {m["id"] for m in members}
    assert await in_thread(partial(c.get, "before", 3)) == "stranger"
    assert "refused connection from" in c[4].log(), "the stranger refused the members' pings too"


# --- 2. another cluster's name ------------------------------------------------------------------


async def test_a_request_for_another_cluster_is_refused_and_logged(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(1, tls=True)
    c.start()
    await in_thread(partial(wait_serving, c[1]))
    files = peer_certs(c)

    with pytest.raises(RpcError) as refused:
        await get_info(c, c[1], files, cluster_name="prod")
    assert refused.value.code == "wrong-cluster"
    await in_thread(
        partial(
            wait_for,
            "the refusal in the log",
            lambda: f"refused GetInfo from {TESTER}: cluster 'prod' is not ours ('test')" in c[1].log(),
            5,
        )
    )
    assert (await get_info(c, c[1], files))["clusterName"] == "test"


# --- 3. the leadership token --------------------------------------------------------------------


async def test_mutating_calls_without_the_leaders_token_are_refused_and_etcd_keeps_running(
    make_cluster: Callable[..., Cluster],
) -> None:
    need_etcd()
    c = make_cluster(1, tls=True)
    c.configure(1, VERSION)
    c.start()
    await in_thread(partial(c.wait_members, 1, timeout=60))
    d = c[1]
    await in_thread(
        partial(wait_for, "the daemon to follow itself", lambda: "following leader" in d.log(), 20)
    )
    state_before = (d.data_dir / "state").read_bytes()

    # A legitimate peer (our CA, our cluster) that is not the leader it follows.
    files = peer_certs(c)
    calls: list[tuple[str, dict[str, Any]]] = [
        (methods.STOP_ETCD, {}),
        (methods.RECONFIGURE, {"quarantined": True}),
        (methods.JOIN_CLUSTER, {"phase": "PREPARE", "clusterToken": "hijack"}),
    ]
    async with open_peer_client(TESTER, "test", client_ssl_context(files)) as client:
        for method, args in calls:
            for token in (None, "guessed-token"):
                with pytest.raises(RpcError) as refused:
                    await client.call(endpoint(d), method, args, expect_peer_id=d.peer_id(), token=token)
                assert refused.value.code == "stale-token", (method, token, refused.value)
                assert "following" in refused.value.message
        info = await client.call(endpoint(d), methods.GET_INFO, {}, expect_peer_id=d.peer_id())
    assert info["etcdRunning"] is True
    assert (d.data_dir / "state").read_bytes() == state_before
    assert c.healthy(d)
    for method, _ in calls:
        assert f"refused {method} from {TESTER}: stale leadership token" in d.log()
    assert await in_thread(partial(c.wait_members, 1, timeout=10))


# --- 4. a restarted peer and the leader ---------------------------------------------------------


def test_a_restarted_peer_does_not_stall_the_leader(make_cluster: Callable[..., Cluster]) -> None:
    need_etcd()
    c = make_cluster(3, tls=True)
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3, timeout=90)
    c.put("k", "v")

    # The highest id never leads, and it is the member a shrink removes first.
    restarted = max(c.daemons, key=lambda d: d.peer_id())
    others = [d.n for d in c.daemons if d is not restarted]
    restarted.stop()
    restarted_at = len(restarted.log())
    restarted.start()
    c.wait_members(3, timeout=60)

    # Both changes need a mutating call to the restarted node: StopEtcd, then JoinCluster.
    c.configure(2, VERSION)
    c.wait_members(2, timeout=60, on=others)
    wait_for("the restarted node to leave etcd", lambda: not (restarted.data_dir / "state").exists(), 20)
    c.configure(3, VERSION)
    c.wait_members(3, timeout=60)
    assert c.get("k", restarted.n) == "v"
    since_restart = restarted.log()[restarted_at:]
    assert "refused" not in since_restart, "the leader never sent a call the restarted node refused"


# --- 5. garbage on the wire ---------------------------------------------------------------------


@dataclass
class Target:
    cluster: Cluster
    daemon: Daemon
    files: PeerTlsFiles


@pytest.fixture
def target(make_cluster: Callable[..., Cluster]) -> Target:
    c = make_cluster(1, tls=True)
    c.start()
    wait_serving(c[1])
    return Target(c, c[1], peer_certs(c))


small_values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | st.lists(st.integers(-3, 3) | st.text(max_size=3), max_size=3)
    | st.dictionaries(st.text(max_size=5), st.integers(-5, 5) | st.text(max_size=3), max_size=3)
)
arg_keys = st.sampled_from(
    ["phase", "clusterToken", "nodes", "etcdVersion", "quarantined", "backup", "leaderId", "token", "view",
     "endpoints", "known"]
)  # fmt: skip
frames = st.one_of(
    st.binary(max_size=300),
    st.dictionaries(
        st.sampled_from(["v", "id", "method", "cluster", "token", "from", "args"]), small_values
    ).map(partial(msgpack.packb, use_bin_type=True)),
    # Well-formed envelopes that reach the daemon's handler with odd arguments.
    st.fixed_dictionaries(
        {
            "v": st.just(1),
            "id": st.integers(0, 2**63 - 1),
            "method": st.sampled_from([*sorted(methods.MUTATING), methods.PING, methods.GET_INFO,
                                       methods.LEADER_NOTIFICATION, "Nope"]),
            "cluster": st.just("test") | st.text(max_size=4),
            "token": st.none() | st.text(max_size=4),
            "from": st.just(TESTER) | st.text(max_size=4),
            "args": st.dictionaries(arg_keys, small_values, max_size=4),
        }
    ).map(partial(msgpack.packb, use_bin_type=True)),
)  # fmt: skip


async def test_oversized_frames_close_the_connection_and_the_daemon_answers_on(target: Target) -> None:
    async with raw_websocket(target.daemon, target.files) as ws:
        await ws.send(b"\x00" * (MAX_FRAME + 1))
        with pytest.raises(WebSocketClosed) as closed, trio.fail_after(5):
            await ws.receive()
        assert closed.value.code == TOO_BIG
    info = await get_info(target.cluster, target.daemon, target.files)
    assert info["peerId"] == target.daemon.peer_id()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(to_send=st.lists(frames, min_size=1, max_size=6))
async def test_fuzzed_frames_never_crash_or_wedge_a_daemon(target: Target, to_send: list[bytes]) -> None:
    d = target.daemon
    with trio.fail_after(10):
        async with raw_websocket(d, target.files) as ws:
            for frame in to_send:
                try:
                    await ws.send(frame)
                except WebSocketClosed:
                    break  # the daemon hung up on an earlier frame: allowed
            with trio.move_on_after(0.1), contextlib.suppress(WebSocketClosed):
                while True:
                    await ws.receive()
        info = await get_info(target.cluster, d, target.files)
    assert info["peerId"] == d.peer_id()
    assert d.running
    assert not (d.data_dir / "state").exists(), "no fuzzed call changed anything"
