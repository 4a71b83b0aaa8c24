"""File discovery: the original's record format, round trips and bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.discovery import DiscoveryError, FileDiscovery
from etcdmgr.model.peer import PeerEndpoint

EP = [PeerEndpoint("127.0.0.1", 8000), PeerEndpoint("10.0.0.1", 8001)]


async def test_publish_writes_what_the_original_writes(tmp_path: Path) -> None:
    d = FileDiscovery(f"file://{tmp_path}/disco")
    await d.publish("peer-A_1", EP[:1])
    data = (tmp_path / "disco" / "peer-A_1").read_bytes()
    assert data == b'{"id":"peer-A_1","endpoints":[{"ip":"127.0.0.1","port":8000}]}'


async def test_round_trip_and_withdraw(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    a, b = FileDiscovery(url), FileDiscovery(url)
    await a.publish("a", EP)
    await b.publish("b", EP[1:])
    assert await a.poll() == {"a": EP, "b": EP[1:]}
    await b.publish("b", [])  # republishing replaces the record
    await a.withdraw("a")
    await a.withdraw("a")  # already gone: fine
    assert await b.poll() == {"b": []}


async def test_reads_records_the_original_wrote(tmp_path: Path) -> None:
    (tmp_path / "x").write_bytes(b'{"id":"x","endpoints":[{"ip":"127.0.0.2","port":8000}]}')
    (tmp_path / "y").write_bytes(b'{"id":"y","endpoints":null}')  # Go's nil slice
    assert await FileDiscovery(str(tmp_path)).poll() == {"x": [PeerEndpoint("127.0.0.2", 8000)], "y": []}


async def test_bad_files_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    d = FileDiscovery(f"file://{tmp_path}")
    await d.publish("good", EP[:1])
    (tmp_path / "truncated").write_bytes(b'{"id":"trunc')
    (tmp_path / "wrong").write_bytes(b'{"endpoints":[{"ip":"1.2.3.4","port":"http"}]}')
    (tmp_path / ".good.abc.tmp").write_bytes(b"half-written temp file")
    (tmp_path / "subdir").mkdir()
    assert await d.poll() == {"good": EP[:1]}
    skipped = sorted(r.getMessage().split(":")[0] for r in caplog.records)
    assert skipped == [
        f"skipping discovery record {tmp_path}/truncated",
        f"skipping discovery record {tmp_path}/wrong",
    ]


async def test_missing_folder_polls_empty(tmp_path: Path) -> None:
    assert await FileDiscovery(f"file://{tmp_path}/not-yet").poll() == {}


@pytest.mark.parametrize("peer_id", ["", "..", "../x", "a/b", ".hidden"])
async def test_bad_peer_ids_refused(tmp_path: Path, peer_id: str) -> None:
    with pytest.raises(DiscoveryError, match="peer id"):
        await FileDiscovery(f"file://{tmp_path}").publish(peer_id, EP)


@pytest.mark.parametrize("url", ["", "gs://bucket/disco", "file://relative", "disco"])
def test_bad_urls_refused(url: str) -> None:
    with pytest.raises(DiscoveryError, match="discovery"):
        FileDiscovery(url)
