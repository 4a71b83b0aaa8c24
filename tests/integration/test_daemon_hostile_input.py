"""Hostile or broken input reaching running daemons: a leader's hostile values through the real
peer API, and a state file that no longer reads.

The tester is a peer with a certificate from the cluster's own CA and an id that starts with '-'
(as the original's ids may), so it sorts below every id a daemon makes: it serves pings, the
daemon accepts it as its leader, and its mutating calls carry the right token. Whatever it
sends, the daemon must not touch any path outside its data dir. The hostile paths point into
the test's tmp folder ("/etc" is a folder there, named by its absolute path). The calls are
written as plain maps, as any release of the protocol sends them.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
import trio
from fs_snapshot import tree_snapshot
from harness import Cluster, wait_for

from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.codec import Request
from etcdmgr.peer.transport import RpcError, open_peer_client, serve_peers
from etcdmgr.pki import client_ssl_context, server_ssl_context

from .test_daemon_security import PEER_PORT, VERSION, endpoint, in_thread, need_etcd, peer_certs, wait_serving

pytestmark = [pytest.mark.slow]

LEADER = "-leader"
TOKEN = "_leader-token"


async def test_a_leader_cannot_make_a_daemon_touch_paths_outside_its_data_dir(
    make_cluster: Callable[..., Cluster],
) -> None:
    c = make_cluster(1, tls=True)
    d = c[1]
    victim = c.root / "etc"
    victim.mkdir(parents=True)
    (victim / "passwd").write_text("root:x:0:0\n")
    (d.data_dir / "x").mkdir(parents=True)  # what data/../x names
    c.start()
    await in_thread(lambda: wait_serving(d))

    files = peer_certs(c, LEADER)
    me = PeerEndpoint(f"{c.block}.9", PEER_PORT)
    pings_sent, pings = trio.open_memory_channel[None](100)

    async def serve(request: Request, caller: str | None) -> Any:
        if request.method != methods.PING:
            raise RpcError("unknown-method", request.method)
        pings_sent.send_nowait(None)
        return {"peerId": LEADER, "known": {}}

    with trio.fail_after(60):
        async with (
            trio.open_nursery() as nursery,
            open_peer_client(LEADER, "test", client_ssl_context(files)) as client,
        ):
            await nursery.start(serve_peers, serve, me.ip, me.port, server_ssl_context(files))

            numbers = itertools.count(1)  # a leader numbers its mutating calls (peer/election.py)

            async def call(method: str, args: dict[str, Any]) -> Any:
                seq = next(numbers) if method in methods.MUTATING else None
                return await client.call(
                    endpoint(d), method, args, expect_peer_id=d.peer_id(), token=TOKEN, seq=seq
                )

            # Announce ourselves as any peer does; once the daemon reaches us, we lead it.
            await call(methods.PING, {"endpoints": [me.to_json()], "known": {}})
            for _ in range(2):  # the answer to the first one has reached it when the second comes
                await pings.receive()
            notice = {"leaderId": LEADER, "token": TOKEN, "view": [LEADER, d.peer_id()]}
            assert await call(methods.LEADER_NOTIFICATION, notice) == {
                "accepted": True,
                "reason": "",
            }

            before = tree_snapshot(c.root, skip_logs=True)
            node = d.peer_id()
            own = (await call(methods.GET_INFO, {}))["node"]
            for token in (str(victim), "../x", "a/b", "", ".."):
                for phase in ("PREPARE", "INITIAL_CLUSTER"):
                    join = {"phase": phase, "clusterToken": token, "nodes": [own], "etcdVersion": "3.4.23",
                            "quarantined": True}  # fmt: skip
                    with pytest.raises(RpcError) as refused:
                        await call(methods.JOIN_CLUSTER, join)
                    assert refused.value.code == "bad-request", (token, phase, refused.value)
                    assert "JoinCluster: field 'clusterToken'" in refused.value.message
                restore = {"backup": "2019-01-14T15:26:45Z-000001", "clusterToken": token, "nodes": [own],
                           "etcdVersion": "3.4.23"}  # fmt: skip
                with pytest.raises(RpcError) as refused:
                    await call(methods.DO_RESTORE, restore)
                assert refused.value.code == "bad-request", (token, refused.value)
                assert "DoRestore: field 'clusterToken'" in refused.value.message

            # A token like the original's, starting with '-', is a plain name and goes through.
            for phase in ("PREPARE", "CANCEL_PREPARE"):
                join = {"phase": phase, "clusterToken": "-Ab3xYz9Q", "nodes": [own], "etcdVersion": "3.4.23",
                        "quarantined": True}  # fmt: skip
                assert await call(methods.JOIN_CLUSTER, join) == {}
            info = await call(methods.GET_INFO, {})
            nursery.cancel_scope.cancel()

    assert (info["peerId"], info["etcdState"]) == (node, None)
    assert tree_snapshot(c.root, skip_logs=True) == before, "nothing changed on disk"
    assert (victim / "passwd").read_text() == "root:x:0:0\n"
    assert not (d.data_dir / "data").exists() and not (d.data_dir / "data-trashcan").exists()
    assert d.running
    assert f"refused JoinCluster from {LEADER}: JoinCluster: field 'clusterToken'" in d.log()


def test_a_corrupt_state_file_keeps_the_member_until_replace_after(
    make_cluster: Callable[..., Cluster],
) -> None:
    need_etcd()
    replace_after = 12.0
    c = make_cluster(3, extra_args=[f"--replace-after={replace_after:.0f}s"])
    c.configure(3, VERSION)
    c.start()
    before = {m["name"]: m["id"] for m in c.wait_members(3)}
    c.put("hello", "world")

    leader = min(c.daemons, key=lambda d: d.peer_id())
    node = max(c.daemons, key=lambda d: d.peer_id())
    node.stop()
    stopped = time.monotonic()
    seen = len(leader.log())
    (node.data_dir / "state").write_bytes(b'{"cluster": {"clusterToken": "../x"')  # cut short
    node.start()

    wait_for(
        "the leader to hear of the unreadable state",
        lambda: "cannot read its state (" in leader.log()[seen:],
        30,
    )
    members = c.members()
    assert members is not None and before[node.peer_id()] in {m["id"] for m in members}, "kept for now"
    assert list(node.data_dir.glob("state.invalid-*")), "moved aside"

    # Once unhealthy for --replace-after, the member is replaced, and the node joins afresh.
    after = {m["name"]: m["id"] for m in c.wait_members(3, timeout=120)}
    assert time.monotonic() - stopped >= replace_after
    assert after[node.peer_id()] != before[node.peer_id()]
    assert "came back with an empty data dir" not in leader.log()[seen:]
    assert "cannot read its state and its member has been unhealthy for" in leader.log()[seen:]
    assert c.get("hello", node.n) == "world"
