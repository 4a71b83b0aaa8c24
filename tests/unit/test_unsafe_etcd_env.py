"""ETCD_* settings that weaken etcd's durability or safety stop the daemon before it starts,
in one line, unless --allow-unsafe-etcd-env accepts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from etcdmgr.cli import daemon_cmd
from etcdmgr.daemon import run
from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.etcd.launch import unsafe_parent_env


def test_which_settings_weaken_etcd() -> None:
    assert unsafe_parent_env(
        {
            "ETCD_UNSAFE_NO_FSYNC": "true",
            "ETCD_STRICT_RECONFIG_CHECK": "false",
            "ETCD_FORCE_NEW_CLUSTER": "1",
            "ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION": "True",
            "ETCD_UNSAFE_SOMETHING_NEW": "yes",  # not a Go boolean: counted as set
            "ETCD_QUOTA_BACKEND_BYTES": "8589934592",
            "PATH": "/bin",
        }
    ) == [
        "ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION=True",
        "ETCD_FORCE_NEW_CLUSTER=1",
        "ETCD_STRICT_RECONFIG_CHECK=false",
        "ETCD_UNSAFE_NO_FSYNC=true",
        "ETCD_UNSAFE_SOMETHING_NEW=yes",
    ]
    # Spelled out the safe way round, they are fine; so is every other ETCD_* setting.
    assert (
        unsafe_parent_env(
            {
                "ETCD_UNSAFE_NO_FSYNC": "false",
                "ETCD_STRICT_RECONFIG_CHECK": "true",
                "ETCD_FORCE_NEW_CLUSTER": "0",
                "ETCD_EXPERIMENTAL_PEER_SKIP_CLIENT_SAN_VERIFICATION": "F",
                "ETCD_EXPERIMENTAL_INITIAL_CORRUPT_CHECK": "true",
                "ETCD_EXPERIMENTAL_WATCH_PROGRESS_NOTIFY_INTERVAL": "5s",
                "ETCD_ENABLE_V2": "false",
            }
        )
        == []
    )
    assert unsafe_parent_env({"ETCD_STRICT_RECONFIG_CHECK": ""}) == ["ETCD_STRICT_RECONFIG_CHECK="]


def args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "--cluster-name=test",
        f"--backup-store=file://{tmp_path}/store",
        f"--data-dir={tmp_path}/data",
        f"--discovery-store=file://{tmp_path}/discovery",
        "--insecure",
        "--etcd-insecure",
        *extra,
    ]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[DaemonConfig]:
    """The configs the daemon would have run with (it is not run here)."""
    configs: list[DaemonConfig] = []

    def run_daemon(config: DaemonConfig) -> int:
        configs.append(config)
        return 0

    monkeypatch.setattr(run, "run_daemon", run_daemon)
    return configs


def test_the_daemon_refuses_them_in_one_line_naming_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    started: list[DaemonConfig],
) -> None:
    monkeypatch.setenv("ETCD_UNSAFE_NO_FSYNC", "true")
    monkeypatch.setenv("ETCD_STRICT_RECONFIG_CHECK", "false")
    assert daemon_cmd.main(args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(
        "etcdmgr daemon: ETCD_STRICT_RECONFIG_CHECK=false, ETCD_UNSAFE_NO_FSYNC=true would weaken etcd's "
        "durability or safety"
    ), err
    assert "--allow-unsafe-etcd-env" in err
    assert started == [] and not (tmp_path / "data").exists()


def test_the_override_lets_the_daemon_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[DaemonConfig]
) -> None:
    monkeypatch.setenv("ETCD_UNSAFE_NO_FSYNC", "true")
    assert daemon_cmd.main(args(tmp_path, "--allow-unsafe-etcd-env")) == 0
    [config] = started
    assert config.allow_unsafe_etcd_env and config.etcd_env["ETCD_UNSAFE_NO_FSYNC"] == "true"
