"""The JSON forms of commands and backup meta, and the store's byte encoders."""

from __future__ import annotations

import pytest

from etcdmgr.model.backup import BackupInfo
from etcdmgr.model.cluster import ClusterSpec
from etcdmgr.model.command import Command, RestoreBackup
from etcdmgr.model.errors import InvalidData
from etcdmgr.store.codec import decode_json, encode_go_json, encode_proto_json

SPEC = ClusterSpec(member_count=3, etcd_version="3.4.13")
BACKUP = "2024-01-01T00:00:00Z-000001"
COMMAND = "2024-01-01T00:00:00Z-000000"


def test_command_round_trip_keeps_int64_as_string() -> None:
    cmd = Command(name=COMMAND, timestamp=1704067200, restore_backup=RestoreBackup(SPEC, BACKUP))
    doc = cmd.to_json()
    assert doc == {
        "timestamp": "1704067200",
        "restoreBackup": {"clusterSpec": {"memberCount": 3, "etcdVersion": "3.4.13"}, "backup": BACKUP},
    }
    assert Command.from_json(doc, COMMAND) == cmd


def test_command_without_restore() -> None:
    assert Command.from_json({"timestamp": "5"}) == Command(name=None, timestamp=5)
    assert Command(name=None, timestamp=0).to_json() == {}


def test_backup_info_meta_has_only_the_original_fields() -> None:
    info = BackupInfo("3.4.13", 1704067200, SPEC, checksums={"etcd.backup.gz": "ab" * 32})
    # The original's readers reject unknown fields: checksums must stay out of the meta.
    assert info.to_json() == {
        "etcdVersion": "3.4.13",
        "timestamp": "1704067200",
        "clusterSpec": {"memberCount": 3, "etcdVersion": "3.4.13"},
    }
    assert BackupInfo.from_json(info.to_json()) == BackupInfo("3.4.13", 1704067200, SPEC)
    assert BackupInfo("", 0).to_json() == {}


@pytest.mark.parametrize(
    "doc",
    [[], {"timestamp": "soon"}, {"restoreBackup": {"clusterSpec": {"memberCount": "x"}}}],
)
def test_bad_commands_raise_invalid_data(doc: object) -> None:
    with pytest.raises(InvalidData):
        Command.from_json(doc)


def test_backup_info_ignores_unknown_fields() -> None:
    assert BackupInfo.from_json({"etcdVersion": "3.5.9", "future": 1}) == BackupInfo("3.5.9", 0)


def test_proto_json_encoding_is_jsonpb_indented_without_defaults() -> None:
    encoded = encode_proto_json({"memberCount": 0, "etcdVersion": "3.5.9", "nested": {"a": ""}})
    assert encoded == b'{\n  "etcdVersion": "3.5.9"\n}'


def test_go_json_encoding_is_compact() -> None:
    assert encode_go_json({"timestamp": 1, "x": [1, 2]}) == b'{"timestamp":1,"x":[1,2]}'


def test_decode_json_names_the_source() -> None:
    with pytest.raises(InvalidData, match="somewhere: not valid JSON"):
        decode_json(b"\xff", "somewhere")
