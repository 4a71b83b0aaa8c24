"""`daemon` operations flags: the metrics port (the original's name), its address, log format and level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.goflags import parse
from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.ops.logs import LogFormat


def config(tmp_path: Path, *extra: str) -> DaemonConfig:
    argv = [
        "--cluster-name=test",
        f"--backup-store=file://{tmp_path}/store",
        f"--data-dir={tmp_path}/data",
        "--insecure",
        "--etcd-insecure",
        *extra,
    ]
    return daemon_cmd.config_from_args(parse(daemon_cmd.USAGE, "daemon", argv), {})


def test_defaults_metrics_off_text_logs_at_info(tmp_path: Path) -> None:
    c = config(tmp_path)
    assert (c.metrics_port, c.metrics_address, c.log_format, c.log_level) == (
        None,
        None,
        LogFormat.TEXT,
        logging.INFO,
    )


def test_the_originals_metrics_flag_in_its_go_spelling(tmp_path: Path) -> None:
    c = config(tmp_path, "-etcd-manager-metrics-port=8082", "--address=127.0.0.5")
    assert (c.metrics_port, c.metrics_address) == (8082, None)  # on --address
    c = config(tmp_path, "--etcd-manager-metrics-port=8082", "--metrics-address=127.0.0.9")
    assert c.metrics_address == "127.0.0.9"
    c = config(tmp_path, "--log-format=json", "--log-level=warning")
    assert (c.log_format, c.log_level) == (LogFormat.JSON, logging.WARNING)


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        ("--etcd-manager-metrics-port=http", "--etcd-manager-metrics-port must be a port number"),
        ("--etcd-manager-metrics-port=70000", "--etcd-manager-metrics-port must be a port number"),
        ("--metrics-address=localhost", "--metrics-address"),
        ("--log-format=xml", "--log-format must be text or json, got 'xml'"),
        ("--log-level=loud", "--log-level: log level must be one of debug, info, warning, error"),
    ],
)
def test_bad_values_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, says: str
) -> None:
    argv = ["--cluster-name=test", f"--backup-store=file://{tmp_path}/s", "--insecure", "--etcd-insecure", flag]
    assert daemon_cmd.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("etcdmgr daemon: ") and says in err and err.count("\n") == 1, err
