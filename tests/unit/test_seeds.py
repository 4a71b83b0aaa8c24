"""Peers named by address alone: seed addresses in the directory and gossip, where they come from
(--peers, a seeds folder, host names), kops' external volume folders, and the static config's
control of the spec and of the created marker."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from etcdmgr.discovery.external_volumes import ExternalVolumes, find_volumes, host_path, wait_for_volume
from etcdmgr.discovery.file_discovery import DiscoveryError
from etcdmgr.discovery.seeds import SeedAddress, SeedSource
from etcdmgr.model import PeerEndpoint
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import PeerId
from etcdmgr.peer.calls import PingAnswer
from etcdmgr.peer.directory import PeerDirectory, Source
from etcdmgr.peer.gossip import ping_seed
from etcdmgr.peer.methods import PING
from etcdmgr.store import FileStore
from etcdmgr.store.static_control import NEW_CLUSTER_MARKER, StaticControl

ME = PeerId("m-me")
MINE = PeerEndpoint("127.0.0.1", 8000)


def at(n: int) -> PeerEndpoint:
    return PeerEndpoint(f"127.0.0.{n}", 8000)


def directory() -> PeerDirectory:
    return PeerDirectory(ME, (MINE,), 4.0)


async def test_a_seed_is_pinged_until_a_healthy_peer_answers_there(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    d.set_seeds([MINE, at(2), at(3), at(2)])
    assert d.due_seeds() == [at(2), at(3)], "our own address is no seed; duplicates count once"

    d.seed_answered(at(2), PeerId("p-two"))
    assert d.healthy() == [ME, "p-two"], "its answer is our own ping: verified at once"
    assert d.records["p-two"].source is Source.PEER
    assert d.due_seeds() == [at(3)], "a healthy peer answers at 2: no need to ask who is there"

    await trio.sleep(5)  # p-two went silent: ask again who answers at its address
    assert at(2) in d.due_seeds()


async def test_a_host_back_under_a_new_id_at_a_seed_replaces_its_old_self(
    autojump_clock: trio.testing.MockClock,
) -> None:
    d = directory()
    d.set_seeds([at(2)])
    d.seed_answered(at(2), PeerId("p-old"))
    await trio.sleep(5)
    d.seed_answered(at(2), PeerId("p-wiped"))
    assert set(d.records) == {"p-wiped"}


async def test_a_seed_answer_never_moves_a_peer_healthy_elsewhere() -> None:
    d = directory()
    d.learn(PeerId("p-real"), (at(2),), Source.DISCOVERY)
    d.ping_ok(PeerId("p-real"), (at(2),))
    d.set_seeds([at(9)])
    d.seed_answered(at(9), PeerId("p-real"))  # someone at 9 claims to be p-real
    assert d.endpoints_of("p-real") == (at(2),)


async def test_our_own_address_under_another_name_is_left_alone() -> None:
    d = directory()
    d.set_seeds([PeerEndpoint("127.0.0.9", 8000)])
    d.seed_answered(PeerEndpoint("127.0.0.9", 8000), ME)
    assert d.due_seeds() == [] and set(d.records) == set()


async def test_a_silent_seed_is_pinged_ever_less_often(autojump_clock: trio.testing.MockClock) -> None:
    d = directory()
    d.set_seeds([at(2)])
    pinged = 0
    for _ in range(120):
        if d.due_seeds():
            pinged += 1
            d.seed_failed(at(2), "connection refused")
        await trio.sleep(1)
    assert 5 <= pinged <= 10, pinged
    d.set_seeds([at(2), at(3)])
    assert d.due_seeds() == [at(3)], "a seed listed again keeps its retry time"


class FakeClient:
    """Answers pings at each endpoint under a fixed id; `flip` answers the second ping otherwise."""

    def __init__(self, ids: dict[PeerEndpoint, str], flip: bool = False) -> None:
        self.ids = ids
        self.flip = flip
        self.calls: list[tuple[PeerEndpoint, str | None]] = []

    async def call(
        self, endpoint: PeerEndpoint, method: str, args: Any, *, expect_peer_id: str | None, **_: Any
    ) -> Any:
        assert method == PING
        self.calls.append((endpoint, expect_peer_id))
        if endpoint not in self.ids:
            raise OSError("connection refused")
        answer = self.ids[endpoint] + ("-other" if self.flip and expect_peer_id else "")
        return PingAnswer(peer_id=PeerId(answer), known={PeerId("p-heard"): (at(7),)}).to_wire()


class FakeCaller:
    def __init__(self, client: FakeClient) -> None:
        self.client = client


async def test_gossip_asks_a_seed_who_it_is_then_checks_that_id() -> None:
    d = directory()
    d.set_seeds([at(2), at(3)])
    client = FakeClient({at(2): "p-two"})
    for endpoint in d.due_seeds():
        await ping_seed(d, FakeCaller(client), endpoint, 1.0)  # type: ignore[arg-type]
    assert client.calls.count((at(2), None)) == 1
    assert (at(2), "p-two") in client.calls, (
        "asked again expecting the id: with TLS the certificate must name it"
    )
    assert d.healthy() == [ME, "p-two"]
    assert "p-heard" in d.records and not d.records[PeerId("p-heard")].verified, "what it knows is a hint"
    assert d.due_seeds() == [], "3 did not answer: asked again later"


async def test_a_seed_that_changes_its_answer_is_not_learned() -> None:
    d = directory()
    d.set_seeds([at(2)])
    await ping_seed(d, FakeCaller(FakeClient({at(2): "p-two"}, flip=True)), at(2), 1.0)  # type: ignore[arg-type]
    assert "p-two" not in d.records and "p-two-other" not in d.records


async def test_seed_source_reads_addresses_names_and_a_seeds_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "seeds"
    folder.mkdir()
    for name in ("10.0.0.1", "10.0.0.2", "not-an-ip", ".hidden"):
        (folder / name).touch()
    (folder / "10.0.0.3").mkdir()  # the original skips folders
    source = SeedSource((SeedAddress("127.0.0.5", 9000), SeedAddress("localhost")), folder, 8000, 5.0)
    with caplog.at_level(logging.WARNING):
        found = await source.poll()
        await source.poll()
    assert found[0] == PeerEndpoint("127.0.0.5", 9000)
    assert PeerEndpoint("127.0.0.1", 8000) in found, "localhost resolved"
    assert found[-2:] == [PeerEndpoint("10.0.0.1", 8000), PeerEndpoint("10.0.0.2", 8000)]
    assert caplog.text.count("not-an-ip") == 1, "reported once"

    with pytest.raises(DiscoveryError, match="cannot read seeds folder"):
        await SeedSource((), tmp_path / "missing", 8000, 5.0).poll()
    unresolvable = SeedSource((SeedAddress("no-such-host.invalid"),), None, 8000, 5.0)
    assert await unresolvable.poll() == []


async def test_the_external_volume_folder_gives_the_data_dir_and_the_id(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    volumes = ExternalVolumes(tmp_path / "disks", "c--main--")
    assert find_volumes(volumes) == []
    (tmp_path / "disks" / "c--events--0" / "mnt").mkdir(parents=True)
    (tmp_path / "disks" / "c--main--0").mkdir()  # not mounted yet: no mnt folder

    async def mount_later() -> None:
        await trio.sleep(12)
        (tmp_path / "disks" / "c--main--0" / "mnt").mkdir()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(mount_later)
        volume = await wait_for_volume(volumes, 5.0)
    assert volume.peer_id == "c--main--0" and volume.data_dir == tmp_path / "disks" / "c--main--0" / "mnt"
    assert trio.current_time() >= 12

    (tmp_path / "disks" / "c--main--1" / "mnt").mkdir(parents=True)
    with pytest.raises(Exception, match="several volume folders"):
        await wait_for_volume(volumes, 5.0)
    assert host_path(Path("/mnt/disks"), True) == Path("/rootfs/mnt/disks")


async def test_a_static_config_fixes_the_spec_and_keeps_the_created_marker_on_the_leaders_disk(
    tmp_path: Path,
) -> None:
    store = FileStore(tmp_path / "store", f"file://{tmp_path}/store")
    spec = ClusterSpec(member_count=3, etcd_version="3.5.21")
    data = tmp_path / "data"
    data.mkdir()
    control = StaticControl(store, spec, data)
    assert await control.read_spec() == spec
    await control.write_spec(ClusterSpec(member_count=1, etcd_version="3.4.23"))
    assert await control.read_spec() == spec and await store.read_spec() is None

    assert await control.read_created() == 0, "without the marker file the cluster counts as created"
    assert not await control.create_created_marker(1)
    (data / NEW_CLUSTER_MARKER).touch()
    assert await control.read_created() is None, "the operator asks for a new cluster"
    assert await control.create_created_marker(1), "the one claim"
    assert not (data / NEW_CLUSTER_MARKER).exists()
    assert not await control.create_created_marker(1)

    assert (await control.list_commands()).commands == []
    with pytest.raises(Exception, match="takes no commands"):
        await control.add_command(None)  # type: ignore[arg-type]
    assert await control.list_backups() == []


def test_bad_volume_folder_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "c--main--a b" / "mnt").mkdir(parents=True)
    with pytest.raises(InvalidData):
        find_volumes(ExternalVolumes(tmp_path, "c--main--"))
