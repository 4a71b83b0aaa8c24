"""The container way (deploy/): the Dockerfile and the static pod manifest, checked as files (no
container runtime here): the image provides what the manifest runs, and the manifest's command
line is one the daemon takes, with kops' layout under /rootfs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from etcdmgr.cli import daemon_cmd
from etcdmgr.cli.goflags import parse
from etcdmgr.cli.main import ALIASES

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"


def manifest_list(text: str, key: str) -> list[str]:
    """The items of the YAML list under `key:` (one `- item` a line)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{key}:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    items = []
    for line in lines[start + 1 :]:
        stripped = line.strip()
        if not stripped.startswith("- ") or len(line) - len(line.lstrip()) < indent:
            break
        items.append(stripped[2:])
    return items


def test_the_image_runs_the_file_under_the_original_names() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+", dockerfile, re.M)
    assert "COPY dist/etcdmgr.pyz /usr/local/bin/etcdmgr.pyz" in dockerfile
    for name in ALIASES:  # etcd-manager and etcd-manager-ctl
        assert f"/usr/local/bin/{name}" in dockerfile
    assert 'ENTRYPOINT ["/usr/local/bin/etcd-manager"]' in dockerfile
    # etcd where the daemon looks for it: /opt/etcd-v<VERSION>/
    assert re.search(r"/opt/etcd-v\d+\.\d+\.\d+/", dockerfile)


def test_the_static_pod_runs_a_command_line_the_daemon_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The address is the host's default route's (hostNetwork); this test host may have none.
    monkeypatch.setattr(daemon_cmd, "default_route_address", lambda: "10.0.0.1")
    pod = (DEPLOY / "etcd-manager-static-pod.yaml").read_text()
    assert "hostNetwork: true" in pod
    assert manifest_list(pod, "command") == ["/usr/local/bin/etcd-manager"]
    args = manifest_list(pod, "args")
    config = daemon_cmd.config_from_args(
        parse(daemon_cmd.USAGE, "daemon", args, repeatable=daemon_cmd.REPEATABLE), {}
    )
    assert config.external_volumes is not None
    assert config.external_volumes.root == Path("/rootfs/mnt/disks"), "the host's / is mounted at /rootfs"
    assert config.seeds_dir == Path("/rootfs/etc/kubernetes/etcd-manager/seeds")
    assert f"mountPath: {config.pki_dir}" in pod, "the CAs are mounted where the daemon looks by default"
    assert "mountPath: /rootfs" in pod
    assert config.hosts_file == Path("/etc/hosts") and config.address == "10.0.0.1"
    assert config.backup_store.startswith("file:///mnt/disks/backups")
    assert "mountPath: /mnt/disks/backups" in pod
