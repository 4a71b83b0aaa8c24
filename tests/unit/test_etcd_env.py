"""build_env: what etcd is started with, and who wins over the parent's ETCD_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.etcd._tool import classify
from etcdmgr.etcd.errors import EtcdError, EtcdMemberNotFound, EtcdTransient, EtcdUnavailable
from etcdmgr.etcd.launch import EtcdLaunch, build_env, format_initial_cluster, ignored_parent_env
from etcdmgr.etcd.versions import EtcdBinaries
from etcdmgr.model.tls import TLSFiles


def _launch(version: str = "3.4.23", **kw: object) -> EtcdLaunch:
    b = EtcdBinaries(version, Path("/x/etcd"), Path("/x/etcdctl"), None)
    base: dict[str, object] = dict(
        name="m1",
        binaries=b,
        data_dir=Path("/d/data/tok"),
        listen_peer_urls=["http://127.0.0.1:2380"],
        advertise_peer_urls=["http://127.0.0.1:2380"],
        listen_client_urls=["http://127.0.0.1:4001", "http://127.0.0.1:4002"],
        advertise_client_urls=["http://127.0.0.1:4001"],
        initial_cluster={"m1": ["http://127.0.0.1:2380"], "m2": ["http://127.0.0.2:2380", "http://x:2380"]},
        initial_cluster_token="tok",
    )
    base.update(kw)
    return EtcdLaunch(**base)  # type: ignore[arg-type]


def test_defaults() -> None:
    env = build_env(_launch(), {"PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert env["ETCD_NAME"] == "m1"
    assert env["ETCD_DATA_DIR"] == "/d/data/tok"
    assert env["ETCD_LISTEN_CLIENT_URLS"] == "http://127.0.0.1:4001,http://127.0.0.1:4002"
    assert env["ETCD_INITIAL_CLUSTER"] == (
        "m1=http://127.0.0.1:2380,m2=http://127.0.0.2:2380,m2=http://x:2380"
    )
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    assert env["ETCD_INITIAL_CLUSTER_TOKEN"] == "tok"
    assert env["ETCD_ENABLE_V2"] == "true"
    assert env["ETCD_LOGGER"] == "zap"
    assert "ETCD_FORCE_NEW_CLUSTER" not in env
    assert not any(k.startswith(("ETCD_CERT", "ETCD_PEER")) for k in env)


def test_parent_etcd_variables_win_except_managed_ones() -> None:
    parent = {
        "ETCD_ENABLE_V2": "false",
        "ETCD_QUOTA_BACKEND_BYTES": "8589934592",
        "ETCD_LOGGER": "capnslog",
        "ETCD_LISTEN_METRICS_URLS": "http://127.0.0.1:9999",
        "ETCD_LISTEN_CLIENT_URLS": "http://0.0.0.0:4001",  # would break quarantine
        "ETCD_INITIAL_CLUSTER_STATE": "existing",
        "ETCD_CONFIG_FILE": "/etc/etcd.yaml",  # etcd would ignore all our variables
        "ETCD_DISCOVERY": "https://discovery.example",
    }
    env = build_env(_launch(listen_metrics_urls=["http://127.0.0.1:8081"]), parent)
    assert env["ETCD_ENABLE_V2"] == "false"
    assert env["ETCD_QUOTA_BACKEND_BYTES"] == "8589934592"
    assert env["ETCD_LOGGER"] == "capnslog"
    assert env["ETCD_LISTEN_METRICS_URLS"] == "http://127.0.0.1:9999"
    assert env["ETCD_LISTEN_CLIENT_URLS"] == "http://127.0.0.1:4001,http://127.0.0.1:4002"
    assert env["ETCD_INITIAL_CLUSTER_STATE"] == "new"
    assert "ETCD_CONFIG_FILE" not in env and "ETCD_DISCOVERY" not in env
    assert ignored_parent_env(parent) == [
        "ETCD_CONFIG_FILE",
        "ETCD_DISCOVERY",
        "ETCD_INITIAL_CLUSTER_STATE",
        "ETCD_LISTEN_CLIENT_URLS",
    ]


@pytest.mark.parametrize(
    ("version", "enable_v2", "v2", "logger"),
    [
        ("3.3.25", True, "true", None),
        ("3.3.25", False, "false", None),  # 3.3 serves v2 by default: say no explicitly
        ("3.4.23", True, "true", "zap"),
        ("3.5.30", True, "true", "zap"),
        ("3.6.0", True, None, "zap"),  # 3.6 has no v2 (and no such variable)
    ],
)
def test_version_dependent(version: str, enable_v2: bool, v2: str | None, logger: str | None) -> None:
    env = build_env(_launch(version, enable_v2=enable_v2), {})
    assert env.get("ETCD_ENABLE_V2") == v2
    assert env.get("ETCD_LOGGER") == logger


def test_tls_and_force_new_cluster() -> None:
    peer = TLSFiles(Path("/p/me.crt"), Path("/p/me.key"), Path("/p/ca.crt"))
    client = TLSFiles(Path("/c/s.crt"), Path("/c/s.key"), Path("/c/ca.crt"), client_cert_auth=False)
    parent = {"ETCD_PEER_CERT_FILE": "/elsewhere.crt"}
    env = build_env(_launch(peer_tls=peer, client_tls=client, force_new_cluster=True), parent)
    assert env["ETCD_PEER_CERT_FILE"] == "/p/me.crt"
    assert env["ETCD_PEER_TRUSTED_CA_FILE"] == "/p/ca.crt"
    assert env["ETCD_PEER_CLIENT_CERT_AUTH"] == "true"
    assert env["ETCD_CERT_FILE"] == "/c/s.crt"
    assert env["ETCD_CLIENT_CERT_AUTH"] == "false"
    assert env["ETCD_FORCE_NEW_CLUSTER"] == "true"


def test_format_initial_cluster_empty() -> None:
    assert format_initial_cluster({}) == ""


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("etcdserver: unhealthy cluster", EtcdTransient),
        ("etcdserver: too many learner members in cluster", EtcdTransient),
        ("etcdserver: can only promote a learner member which is in sync with leader", EtcdTransient),
        ("etcdserver: re-configuration failed due to not enough started members", EtcdTransient),
        ("context deadline exceeded", EtcdUnavailable),
        ("dial tcp 127.0.0.1:4001: connect: connection refused", EtcdUnavailable),
        ("etcdserver: member not found", EtcdMemberNotFound),
        ("etcdserver: Peer URLs already exists", EtcdError),
    ],
)
def test_classify(message: str, kind: type[EtcdError]) -> None:
    assert classify(message) is kind
