"""Three real members on three loopback addresses: grow by member add (learner + promote from
3.4), shrink by member remove."""

from __future__ import annotations

from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path

import pytest
from etcd_helpers import binaries_or_skip, client_url, launch, peer_url, retry_transient, running

from etcdmgr.etcd.client import EtcdClient
from etcdmgr.etcd.errors import EtcdError, EtcdMemberNotFound
from etcdmgr.etcd.versions import supports_learners

pytestmark = [pytest.mark.etcd, pytest.mark.slow]


@pytest.mark.parametrize(
    ("version", "ips"),
    [
        ("3.5.30", ("127.0.55.11", "127.0.55.12", "127.0.55.13")),
        ("3.3.25", ("127.0.55.14", "127.0.55.15", "127.0.55.16")),
    ],
)
async def test_grow_and_shrink(tmp_path: Path, version: str, ips: tuple[str, str, str]) -> None:
    binaries = binaries_or_skip(version)
    learner = supports_learners(version)
    names = ["m1", "m2", "m3"]
    first = EtcdClient([client_url(ips[0])], binaries)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(running(launch(binaries, tmp_path, "m1", ips[0])))
        await first.put("k", "v")

        for i in (1, 2):
            name, ip = names[i], ips[i]
            added = await retry_transient(partial(first.member_add, name, [peer_url(ip)], learner=learner))
            assert (added.name, added.peer_urls, added.is_learner) == (name, (peer_url(ip),), learner)
            cluster = dict(zip(names[: i + 1], ips, strict=False))
            member = launch(binaries, tmp_path, name, ip, cluster=cluster, state="existing")
            await stack.enter_async_context(running(member))
            if learner:
                with pytest.raises(EtcdError):
                    await first.member_add("m9", [peer_url("127.0.55.19")], learner=True)  # one at a time
                await retry_transient(partial(first.member_promote, added.id))

        members = await first.member_list()
        assert sorted(m.name for m in members) == names
        assert not any(m.is_learner for m in members)
        third = EtcdClient([client_url(ips[2])], binaries)
        assert await third.get("k") == "v"

        m3 = next(m for m in members if m.name == "m3")
        await retry_transient(lambda: first.member_remove(m3.id))
        assert sorted(m.name for m in await first.member_list()) == ["m1", "m2"]
        with pytest.raises(EtcdMemberNotFound):
            await first.member_remove(m3.id)
        all_three = EtcdClient([client_url(ip) for ip in ips], binaries)
        assert await all_three.get("k") == "v"  # any serving endpoint answers
