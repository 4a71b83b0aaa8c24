"""etcd-manager's `state` file: read from bytes protoc encoded, written back byte for byte, and
kept in its form by every write a node makes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from etcdmgr.model import EtcdCluster, EtcdNode, EtcdState, InvalidData
from etcdmgr.model.state_proto import state_from_protobuf, state_to_protobuf
from etcdmgr.node.layout import DataLayout
from etcdmgr.node.state_file import load_state, read_state, write_state
from etcdmgr.util.protowire import WireError, encode_varint, iter_fields, read_varint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "etcd_manager"
ALL = (
    "state-kops",
    "state-new",
    "takeover-quarantined",
    "takeover-lifted",
    "takeover-three",
    "takeover-three-upgraded",
)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.pb").read_bytes()


def decoded(name: str) -> EtcdState:
    state, unknown = state_from_protobuf(fixture(name))
    assert unknown == []
    assert state is not None
    return state


def test_a_kops_members_state_reads_field_by_field() -> None:
    state = decoded("state-kops")
    assert state.cluster.cluster_token == "etcd-cluster-token-etcd"
    assert state.etcd_version == "3.5.30"
    assert not state.quarantined and not state.new_cluster
    assert [n.name for n in state.cluster.nodes] == ["etcd-a", "etcd-b", "etcd-c"]
    b = state.cluster.nodes[1]
    assert b.peer_urls == ("https://etcd-b.internal.minimal.example.com:2380",)
    assert b.client_urls == ("https://etcd-b.internal.minimal.example.com:4001",)
    assert b.quarantined_client_urls == ("https://etcd-b.internal.minimal.example.com:3994",)
    assert b.tls_enabled


def test_a_new_clusters_first_state_reads_with_ids_that_start_with_a_dash() -> None:
    state = decoded("state-new")
    assert state.new_cluster and state.quarantined
    assert state.cluster.cluster_token == "Gp3lM0ZuQ3-vWc8p1x9QJw"
    (node,) = state.cluster.nodes
    assert node.name == "-4kT0bX2s9QnLr1mV7cZpA"
    assert not node.tls_enabled
    assert state.etcd_version == "3.4.23"


@pytest.mark.parametrize("name", ALL)
def test_every_state_encodes_to_the_bytes_protoc_wrote(name: str) -> None:
    assert state_to_protobuf(decoded(name)) == fixture(name)


def test_lifting_the_quarantine_encodes_as_protoc_encodes_the_lifted_state() -> None:
    lifted = decoded("takeover-quarantined").with_changes(quarantined=False)
    assert state_to_protobuf(lifted) == fixture("takeover-lifted")


def test_the_empty_message_the_original_writes_for_a_stopped_member_is_no_state() -> None:
    assert state_from_protobuf(b"") == (None, [])
    assert state_to_protobuf(None) == b""


def test_unknown_fields_are_skipped_and_named() -> None:
    # Field 9 (a string) and field 10 (a varint) appended: what a newer original might write.
    data = fixture("takeover-lifted") + b"\x4a\x02hi" + b"\x50\x07"
    state, unknown = state_from_protobuf(data)
    assert state == decoded("takeover-lifted")
    assert unknown == ["EtcdState field 9", "EtcdState field 10"]


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (fixture("takeover-lifted")[:-3], "claims 6 bytes; 3 remain"),
        (b"\x12\x80", "varint cut short"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "longer than 10 bytes"),
        (b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", "exceeds 64 bits"),
        (b"\x00\x00", "field number 0"),
        (b"\x0b\x0c", "wire type 3"),
        (b"\x08\x02", "'new_cluster' is 2, not a bool"),
        (b"\x0a\x00", "'new_cluster' has wire type 2, expected 0"),
        (b"\x1a\x013\x1a\x013", "'etcd_version' appears twice"),
        (b"\x12\x04\x2a\x02\xff\xfe", "EtcdCluster.cluster_token is not UTF-8"),
        (b"\x12\x02\x2a\x00\x1a\x053.5.0", "cluster_token"),
    ],
)
def test_malformed_state_is_refused(data: bytes, error: str) -> None:
    with pytest.raises(InvalidData, match=error.replace("(", r"\(")):
        state_from_protobuf(data)


def test_values_go_through_the_same_parsers_as_json() -> None:
    bad_url = EtcdState(EtcdCluster("t", (EtcdNode("a", peer_urls=("x",)),)), "3.5.30")
    with pytest.raises(InvalidData, match=r"EtcdNode\.peer_urls"):
        state_from_protobuf(state_to_protobuf(bad_url))
    twice = EtcdState(EtcdCluster("t", (EtcdNode("a"), EtcdNode("a"))), "3.5.30")
    with pytest.raises(InvalidData, match="names a member twice"):
        state_from_protobuf(state_to_protobuf(twice))


def test_varints_round_trip_at_their_limits() -> None:
    for n in (0, 1, 127, 128, 300, 2**32, 2**64 - 1):
        assert read_varint(encode_varint(n), 0) == (n, len(encode_varint(n)))
    with pytest.raises(WireError):
        encode_varint(-1)
    with pytest.raises(WireError):
        list(iter_fields(b"\x0d\x00\x00"))  # fixed32 cut short


# --- the file: its form is kept -----------------------------------------------------------------


def test_a_node_keeps_writing_etcd_managers_form_in_a_data_dir_taken_over(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.state.write_bytes(fixture("takeover-quarantined"))
    (tmp_path / "data" / "takeover-token").mkdir(parents=True)
    state, problem = load_state(layout)
    assert problem is None and state == decoded("takeover-quarantined")
    write_state(layout.state, state.with_changes(quarantined=False))
    assert layout.state.read_bytes() == fixture("takeover-lifted")
    # Stopped (the leader moved the member away): the empty message, as the original writes it.
    write_state(layout.state, None)
    assert layout.state.read_bytes() == b"" and read_state(layout.state) is None
    # Joined again later: still the original's form.
    write_state(layout.state, state)
    assert layout.state.read_bytes() == fixture("takeover-quarantined")


def test_a_data_dir_of_etcdmgrs_own_stays_json(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    state = decoded("takeover-lifted")
    write_state(layout.state, state)
    assert json.loads(layout.state.read_bytes())["cluster"]["clusterToken"] == "takeover-token"
    assert read_state(layout.state) == state
    write_state(layout.state, None)
    assert not layout.state.exists()


def test_a_new_cluster_flag_is_cleared_in_the_originals_form(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.state.write_bytes(fixture("state-new"))
    (tmp_path / "data" / "Gp3lM0ZuQ3-vWc8p1x9QJw").mkdir(parents=True)
    state, _ = load_state(layout)
    assert state is not None and not state.new_cluster
    assert state_from_protobuf(layout.state.read_bytes())[0] == state


def test_a_corrupt_protobuf_state_is_set_aside(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.state.write_bytes(b"\x12\x80")
    state, problem = load_state(layout)
    assert state is None and problem is not None and "corrupt" in problem
    assert [p.name.startswith("state.invalid-") for p in tmp_path.iterdir() if p.name != "state"] == [True]
    # The empty message in its place keeps the form: the member joins again in it.
    assert layout.state.read_bytes() == b""
    assert load_state(layout) == (None, None)
    write_state(layout.state, decoded("takeover-lifted"))
    assert layout.state.read_bytes() == fixture("takeover-lifted")


def test_a_corrupt_json_state_is_set_aside_and_leaves_no_state(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path)
    layout.state.write_bytes(b"{not json")
    state, problem = load_state(layout)
    assert state is None and problem is not None and "corrupt" in problem
    assert not layout.state.exists()
