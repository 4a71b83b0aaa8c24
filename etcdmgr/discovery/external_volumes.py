"""kops' bare-metal layout: the original's `--volume-provider=external`.

The host prepares one folder per etcd volume, `<volumes dir>/<name>/mnt` (`/mnt/disks` by
default); the one folder whose name starts with the volume tag (a prefix such as
`mycluster--main--`) holds this node's data dir, and its name is this node's peer id. Peers are
named by the seeds folder or by `--static-config` (discovery/seeds.py).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import trio

from etcdmgr.model.errors import EtcdmgrError
from etcdmgr.model.ids import PeerId, parse_peer_id

log = logging.getLogger(__name__)

DEFAULT_VOLUMES_DIR = Path("/mnt/disks")
DEFAULT_SEEDS_DIR = Path("/etc/kubernetes/etcd-manager/seeds")
CONTAINER_ROOT = Path("/rootfs")  # where kops mounts the host's / with --containerized


class VolumeError(EtcdmgrError):
    """The external volume cannot be used."""


@dataclass(frozen=True)
class ExternalVolumes:
    root: Path  # the folder holding the volume folders
    prefix: str  # the volume tag: names of this cluster's volume folders start with it


@dataclass(frozen=True)
class Volume:
    peer_id: PeerId
    data_dir: Path


def host_path(path: Path, containerized: bool) -> Path:
    """A host path as this process sees it (the original's volumes.PathFor)."""
    return CONTAINER_ROOT / path.relative_to("/") if containerized else path


def find_volumes(volumes: ExternalVolumes) -> list[Volume]:
    """The volume folders matching the tag, by name (blocking: run it in a thread)."""
    try:
        entries = sorted(os.scandir(volumes.root), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    except OSError as e:
        raise VolumeError(f"cannot read volumes folder {volumes.root}: {e.strerror or e}") from None
    found = []
    for entry in entries:
        mount = Path(entry.path) / "mnt"
        if entry.name.startswith(volumes.prefix) and entry.is_dir() and mount.is_dir():
            found.append(Volume(parse_peer_id(entry.name, f"volume folder {entry.path}"), mount))
    return found


async def wait_for_volume(volumes: ExternalVolumes, poll_interval: float) -> Volume:
    """This node's volume, once its folder exists (the host may mount it after we start)."""
    waiting = False
    while True:
        found = await trio.to_thread.run_sync(find_volumes, volumes)
        if len(found) == 1:
            log.info("external volume %s: data dir %s", found[0].peer_id, found[0].data_dir)
            return found[0]
        if len(found) > 1:
            names = ", ".join(v.peer_id for v in found)
            raise VolumeError(
                f"several volume folders in {volumes.root} start with {volumes.prefix!r}: {names}"
            )
        if not waiting:
            log.info("waiting for a volume folder %s/%s*/mnt", volumes.root, volumes.prefix)
            waiting = True
        await trio.sleep(poll_interval)


def default_route_address() -> str | None:
    """The source address of this host's default route (no packet is sent), or None."""
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.connect((probe, 9))
                address = str(s.getsockname()[0])
        except OSError:
            continue
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None
