"""docs/systemd: the unit waits for the daemon's own readiness and watchdog, and its command line,
filled in from the environment file, is one the daemon accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.goflags import parse
from etcdmgr.ops.logs import LogFormat

DOCS = Path(__file__).resolve().parents[2] / "docs" / "systemd"


def unit_settings() -> dict[str, str]:
    """The unit's Key=value lines (continuations joined; each key appears once here)."""
    text = re.sub(r"\\\n\s*", " ", (DOCS / "etcdmgr.service").read_text())
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", "["))]
    settings = dict(line.split("=", 1) for line in lines)
    assert len(settings) == len(lines), "a key set twice"
    return settings


def env_file() -> dict[str, str]:
    lines = [line for line in (DOCS / "etcdmgr.env").read_text().splitlines() if line and line[0] != "#"]
    return dict(line.split("=", 1) for line in lines)


def test_the_unit_is_notify_with_a_watchdog_and_lets_the_daemon_stop_its_etcd() -> None:
    unit = unit_settings()
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "main"
    assert unit["WatchdogSec"] and unit["Restart"] == "on-failure"
    assert unit["KillMode"] == "mixed", "SIGTERM to the daemon only: it stops etcd itself"
    assert unit["EnvironmentFile"] == "/etc/default/etcdmgr"
    assert "AF_UNIX" in unit["RestrictAddressFamilies"], "NOTIFY_SOCKET is a unix socket"
    assert unit["ProtectSystem"] == "strict" and unit["NoNewPrivileges"] == "true"


def test_the_command_line_filled_in_from_the_environment_file_is_accepted() -> None:
    env = env_file()
    command = unit_settings()["ExecStart"]
    # systemd: ${VAR} is one word, $VAR is split at spaces.
    words = shlex.split(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], command))
    argv = [w2 for w in words for w2 in (env[w[1:]].split() if w.startswith("$") else [w])]
    assert argv[:2] == ["/usr/local/bin/etcdmgr", "daemon"]
    config = daemon_cmd.config_from_args(parse(daemon_cmd.USAGE, "daemon", argv[2:]), {})
    assert (config.cluster_name, config.address, config.metrics_port) == ("main", "10.0.0.1", 8082)
    assert config.log_format is LogFormat.JSON
    # An empty metrics port in the environment file turns the port off.
    off = [a for a in argv[2:] if not a.startswith("--etcd-manager-metrics-port")]
    off.append("--etcd-manager-metrics-port=")
    assert daemon_cmd.config_from_args(parse(daemon_cmd.USAGE, "daemon", off), {}).metrics_port is None
