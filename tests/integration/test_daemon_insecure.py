"""--insecure daemons: never on a network address by accident, and even on loopback a caller
that claims to lead is refused unless this daemon reaches it by its own pings.

No traffic is ever sent to a non-loopback address: the refusal comes before anything is bound.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from harness import ROOT, Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.transport import Plaintext, RpcError, open_peer_client

pytestmark = [pytest.mark.slow]

VERSION = "3.4.23"
PEER_PORT = 8000
FAKE = "-0fake-leader"  # a valid id lower than any a daemon makes (those never start with '-')


def endpoint(d: Daemon) -> PeerEndpoint:
    return PeerEndpoint(d.ip, PEER_PORT)


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await trio.to_thread.run_sync(fn)


def test_an_insecure_daemon_on_a_network_address_refuses_to_start(tmp_path: Path) -> None:
    start = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "etcdmgr.py"),
            "daemon",
            "--insecure",
            "--etcd-insecure",
            "--address=10.11.12.13",
            "--cluster-name=test",
            f"--backup-store=file://{tmp_path}/store",
            f"--data-dir={tmp_path}/data",
            f"--discovery-store=file://{tmp_path}/discovery",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("etcdmgr daemon: --insecure on --address=10.11.12.13:")
    assert "--insecure-allow-network" in lines[0]
    assert not (tmp_path / "data").exists() and not (tmp_path / "discovery").exists(), "nothing started"
    assert time.monotonic() - start < 30


def test_the_network_override_is_logged_loudly(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(1, extra_args=["--insecure-allow-network"])
    c.start()
    d = c[1]
    wait_for("the warning", lambda: "WARNING etcdmgr: --insecure-allow-network: the peer API" in d.log(), 20)
    wait_for("the listening line", lambda: "peer API listening" in d.log(), 10)
    line = next(x for x in d.log().splitlines() if "peer API listening" in x)
    assert "WARNING" in line and "INSECURE: plain websockets from anyone on the network" in line


async def test_an_insecure_daemon_refuses_a_leader_it_never_pinged(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1)  # --insecure --etcd-insecure on 127.x: the demo's set-up
    c.configure(1, VERSION)
    c.start()
    await in_thread(partial(c.wait_members, 1, timeout=60))
    d = c[1]
    await in_thread(partial(wait_for, "the daemon to lead itself", lambda: "following leader" in d.log(), 20))
    state_before = (d.data_dir / "state").read_bytes()
    nowhere = PeerEndpoint(f"{c.block}.99", PEER_PORT)  # loopback, nobody listens: pings fail

    async with open_peer_client(FAKE, "test", None, plaintext=Plaintext.LOOPBACK) as fake:

        async def call(method: str, args: dict[str, Any], token: str | None = None) -> Any:
            return await fake.call(endpoint(d), method, args, expect_peer_id=None, token=token)

        # It introduces itself, as a daemon would, and then claims to lead.
        pong = await call(methods.PING, {"endpoints": [nowhere.to_json()], "known": {}})
        assert pong["peerId"] == d.peer_id()
        notification = {"leaderId": FAKE, "token": "evil", "view": [FAKE, d.peer_id()]}
        for _ in range(2):  # at once, and after the daemon had time to ping it
            answer = await call(methods.LEADER_NOTIFICATION, notification)
            assert answer == {"accepted": False, "reason": f"leader {FAKE} is not a healthy peer here"}
            await trio.sleep(3)
        for method, args in [
            (methods.STOP_ETCD, {}),
            (methods.RECONFIGURE, {"quarantined": True}),
            (methods.JOIN_CLUSTER, {"phase": "PREPARE", "clusterToken": "hijack"}),
        ]:
            with pytest.raises(RpcError) as refused:
                await call(method, args, token="evil")
            assert refused.value.code == "stale-token", (method, refused.value)

    assert (d.data_dir / "state").read_bytes() == state_before
    assert c.healthy(d)
    assert f"refused StopEtcd from {FAKE}" in d.log()
    assert "following leader -0fake" not in d.log()
