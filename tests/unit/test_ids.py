"""The validation boundary's parsers: what the original, kops and we write is accepted; any value
that could act as a path, a flag or a second field is refused with an error naming the field."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import (
    new_cluster_token,
    new_leader_token,
    new_peer_id,
    parse_backup_name,
    parse_cluster_name,
    parse_cluster_token,
    parse_command_name,
    parse_leader_token,
    parse_peer_id,
)
from etcdmgr.model.values import parse_etcd_version, parse_member_count, parse_url
from etcdmgr.store import FileStore

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "original_store"

ID_PARSERS = [parse_peer_id, parse_cluster_token, parse_leader_token, parse_cluster_name]

# The original's ids and tokens are URL-safe base64 (they may start with '-' or '_'); kops names
# ids after volumes; etcd-manager clusters are named like etcd-main.
GOOD_IDS = ["-Ab3xYz9Q", "_x0-abcd", "etcd-a", "etcd-main", "aGVsbG8gd29ybGQhIQ", "a.b", "x" * 128]
# Paths, flags' separators, whitespace and the like; "/etc" is only ever parsed, never used.
HOSTILE_IDS: list[Any] = [
    "/etc",
    "../x",
    "a/b",
    "",
    "..",
    ".",
    "a\\b",
    "a b",
    "a\n",
    "a\0b",
    "x" * 129,
    "é",
    "a=b",
    "a,b",
    None,
    5,
    b"etcd-a",
    ["etcd-a"],
]


@pytest.mark.parametrize("parse", ID_PARSERS)
@pytest.mark.parametrize("value", GOOD_IDS)
def test_ids_the_original_and_kops_write_are_accepted(parse: Any, value: str) -> None:
    assert parse(value, "field") == value


@pytest.mark.parametrize("parse", ID_PARSERS)
@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_ids_are_refused_naming_the_field(parse: Any, value: Any) -> None:
    with pytest.raises(InvalidData, match=r"^JoinCluster: field 'clusterToken': "):
        parse(value, "JoinCluster: field 'clusterToken'")


def test_our_new_ids_and_tokens_parse_and_our_peer_ids_never_start_like_a_flag() -> None:
    for _ in range(2000):
        peer_id = new_peer_id()
        assert parse_peer_id(peer_id, "id") == peer_id
        assert peer_id[0].isalnum()
        assert parse_cluster_token(new_cluster_token(), "token")
        assert parse_leader_token(new_leader_token(), "token")


def test_store_names_are_the_rfc3339_seq_form() -> None:
    for name in ("2019-01-14T15:26:45Z-000001", "2019-01-14T15:30:00Z-000000", "2024-02-29T23:59:59Z-1"):
        assert parse_backup_name(name, "backup") == name
        assert parse_command_name(name, "command") == name
    for bad in ("b", "../2019-01-14T15:26:45Z-000001", "2019-13-01T00:00:00Z-000001",
                "2019-01-14T15:26:45-000001", "2019-01-14T15:26:45Z-", "2019-01-14T15:26:45Z-000001/x",
                "2019-01-14T15:26:45Z-0000000001", ""):  # fmt: skip
        with pytest.raises(InvalidData, match=r"^NAME: .* is not a backup name"):
            parse_backup_name(bad, "NAME")


def test_etcd_versions_are_exactly_x_y_z() -> None:
    assert parse_etcd_version("3.4.23", "v") == "3.4.23"
    for bad in ("", "garbage", "v3.4.23", "3.4", "3.4.23-rc.0", " 3.4.23", "3.4.23\n", 3.4, None):
        with pytest.raises(InvalidData, match=r"^etcdVersion: "):
            parse_etcd_version(bad, "etcdVersion")


def test_member_counts_are_positive_and_bounded() -> None:
    # Go writes int64 as a string.
    assert [parse_member_count(n, "n") for n in (1, 3, 99, "5")] == [1, 3, 99, 5]
    for bad in (0, -1, 100, 10**30, True, "x", "--5", 3.0, None):
        with pytest.raises(InvalidData, match=r"^memberCount: "):
            parse_member_count(bad, "memberCount")


def test_etcd_urls_cannot_smuggle_a_second_member_or_flag() -> None:
    for good in ("http://127.0.0.1:2380", "https://etcd-a.internal:2380", "https://[::1]:2380/"):
        assert parse_url(good, "url") == good
    for bad in ("http://a:2380,b=http://evil:2380", "ftp://a:1", "http://a:2380/path", "http://a:99999",
                "http:// a:2380", "a:2380", "http://a:2380?x=1", ""):  # fmt: skip
        with pytest.raises(InvalidData, match=r"^peerUrls: "):
            parse_url(bad, "peerUrls")


async def test_the_originals_store_reads_through_the_boundary(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES, tmp_path / "store")
    store = FileStore(tmp_path / "store", f"file://{tmp_path}/store")
    spec = await store.read_spec()
    assert spec is not None and (spec.member_count, spec.etcd_version) == (3, "3.4.13")
    listing = await store.list_commands()
    assert listing.broken == {}
    [command] = listing.commands
    assert command.name == "2019-01-14T15:30:00Z-000000"
    assert command.restore_backup is not None
    assert command.restore_backup.backup == "2019-01-14T15:26:45Z-000001"
    assert await store.list_backups() == ["2019-01-14T15:26:45Z-000001"]
    assert (await store.read_backup_info(command.restore_backup.backup)).etcd_version == "3.4.13"
