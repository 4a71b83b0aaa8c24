"""An insecure cluster moved to peer TLS one daemon at a time, as the README says, with etcd
serving writes throughout: first every daemon restarts with --pki-dir --peer-tls=prefer (etcd
moves to https in the same round), then every daemon restarts with peer TLS on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import trio
from harness import Cluster, Daemon, wait_for

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.model import PeerEndpoint
from etcdmgr.peer import methods
from etcdmgr.peer.transport import PeerUnreachable, Plaintext, open_peer_client

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
API_PORT = 8000
MAX_GAP = 5.0  # seconds without a successful write: a restart, and maybe a raft election


def insecure(args: list[str]) -> list[str]:
    plain = [a.replace("https://", "http://") for a in args if not a.startswith("--pki-dir=")]
    return [*plain, "--insecure", "--etcd-insecure"]


@dataclass
class Writer:
    """Writes a new key every 0.1 s through whichever member answers; records the longest gap."""

    cluster: Cluster
    written: list[str] = field(default_factory=list)
    longest_gap: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        last = time.monotonic()
        n = 0
        while not self.stop.is_set():
            key = f"w{n:05d}"
            if any(self.cluster._try_put(d, key, "v", self.cluster.context) for d in self.cluster.daemons):
                self.written.append(key)
                n += 1
                now = time.monotonic()
                self.longest_gap = max(self.longest_gap, now - last)
                last = now
            time.sleep(0.1)


def restart(c: Cluster, d: Daemon, args: list[str], scheme: str) -> int:
    """Restart d with args, then wait until the leader follows up (its member on https, every
    member healthy); returns where its new log starts."""
    d.stop()
    d.args, d.scheme = args, scheme
    start = len(d.log())
    d.start()
    wait_for(f"daemon {d.n} to follow a leader again", lambda: "following leader" in d.log()[start:], 60)
    wait_for(
        f"member {d.n} registered with https peer URLs",
        lambda: any(m["peerURLs"] == [f"https://{d.ip}:2380"] for m in c.members() or []),
        timeout=90,
    )
    c.wait_members(3, timeout=90)
    return start


def test_an_insecure_cluster_moves_to_peer_tls_one_daemon_at_a_time(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3, tls=True)  # for the CAs; the daemons start insecure
    # The last daemon to move has the lowest id, so it leads round 1 without credentials for the
    # members that moved to https: it must take their own nodes' word for their health.
    for d, peer_id in zip(c.daemons, ("c-moves-first", "b-moves-second", "a-moves-last"), strict=True):
        d.data_dir.mkdir(parents=True, exist_ok=True)
        (d.data_dir / "myid").write_text(peer_id)
    secure = {d.n: d.args for d in c.daemons}
    for d in c.daemons:
        d.args, d.scheme = insecure(d.args), "http"
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)
    c.put("before", "move")

    writer = Writer(c)
    thread = threading.Thread(target=writer.run, daemon=True)
    thread.start()
    try:
        for d in c.daemons:  # round 1: serve both, call with TLS first
            start = restart(c, d, [*secure[d.n], "--peer-tls=prefer"], "https")
            assert "(peer TLS prefer)" in d.log()[start:]
        assert all(m["peerURLs"][0].startswith("https://") for m in c.members() or [])
        assert any("over a plain websocket until it speaks TLS" in d.log() for d in c.daemons), (
            "daemons moving to TLS called the insecure ones over plain websockets"
        )
        for d in c.daemons:  # round 2: mutual TLS only
            start = restart(c, d, secure[d.n], "https")
            assert "(peer TLS on)" in d.log()[start:]
    finally:
        writer.stop.set()
        thread.join()

    assert writer.longest_gap < MAX_GAP, f"etcd took no write for {writer.longest_gap:.1f}s"
    assert len(writer.written) > 100
    assert c.get("before", 1) == "move"
    assert all(c.get(k, 2) == "v" for k in (writer.written[0], writer.written[-1]))
    for d in c.daemons:
        assert "refused connection" not in d.log(), "no daemon ever refused another"
    trio.run(no_plain_websocket_is_taken, c)


async def no_plain_websocket_is_taken(c: Cluster) -> None:
    async with open_peer_client("zz-tester", "test", None, plaintext=Plaintext.LOOPBACK) as plain:
        for d in c.daemons:
            with pytest.raises(PeerUnreachable):
                await plain.call(PeerEndpoint(d.ip, API_PORT), methods.GET_INFO, {}, expect_peer_id=None)
