"""Peers named by address alone: `--peers`, the nodes of `--static-config`, a seeds folder.

Nothing here knows an id: each address is pinged with the id unknown (peer/gossip.py) and the
peer's id is learned from its answer. Host names (kops names its static nodes by DNS name) are
resolved at each poll; a seeds folder (kops' `/etc/kubernetes/etcd-manager/seeds`) holds one
empty file per peer, named by its IP address, and is read at each poll. Every poll runs under
the discovery deadline, in worker threads.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

import trio

from etcdmgr.discovery.records import DiscoveryError
from etcdmgr.model.errors import InvalidData
from etcdmgr.model.peer import PeerEndpoint
from etcdmgr.model.values import parse_port

log = logging.getLogger(__name__)

MAX_SEEDS = 256  # as many as the peer directory holds
_HOST_NAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)


@dataclass(frozen=True)
class SeedAddress:
    """An IP address or a host name, and a port (None: the daemon's own peer port)."""

    host: str
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _host(text: str, field: str) -> str:
    if _is_ip(text) or _HOST_NAME.fullmatch(text):
        return text
    raise InvalidData(f"{field}: {text[:80]!r} is neither an IP address nor a host name")


def parse_seed_address(text: str, field: str) -> SeedAddress:
    """`10.0.0.1`, `10.0.0.1:8000`, `::1`, `[::1]:8000`, `node0.example.com[:8000]`."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not _is_ip(host) or (rest and not rest.startswith(":")):
            raise InvalidData(f"{field}: {text[:80]!r} is not [IPv6]:PORT")
        return SeedAddress(host, parse_port(rest[1:], field) if rest else None)
    if _is_ip(text):
        return SeedAddress(text)
    host, sep, port = text.rpartition(":")
    if sep and ":" not in host:
        return SeedAddress(_host(host, field), parse_port(port, field))
    return SeedAddress(_host(text, field))


def parse_peers(text: str, field: str = "--peers") -> tuple[SeedAddress, ...]:
    """A comma separated list of addresses (empty items skipped)."""
    seeds = tuple(parse_seed_address(item, field) for item in text.split(",") if item.strip())
    if len(seeds) > MAX_SEEDS:
        raise InvalidData(f"{field}: more than {MAX_SEEDS} addresses")
    return seeds


class SeedSource:
    """The endpoints to ping with the id unknown: fixed addresses, and the files of a seeds folder."""

    def __init__(
        self, addresses: tuple[SeedAddress, ...], folder: Path | None, default_port: int, timeout: float
    ) -> None:
        self.addresses = addresses
        self.folder = folder
        self.default_port = default_port
        self.timeout = timeout
        self._ignored: set[str] = set()  # seed file names reported once as not an address

    def describe(self) -> str:
        parts = [", ".join(map(str, self.addresses))] if self.addresses else []
        if self.folder is not None:
            parts.append(f"the files of {self.folder}")
        return "; ".join(parts)

    async def poll(self) -> list[PeerEndpoint]:
        """Every endpoint named now (host names resolved; an unresolvable name is skipped with a
        warning). Raises DiscoveryError when the seeds folder cannot be read."""
        found: list[PeerEndpoint] = []
        for seed in self.addresses:
            port = seed.port or self.default_port
            found += [PeerEndpoint(ip, port) for ip in await self._resolve(seed.host)]
        if self.folder is not None:
            try:
                with trio.fail_after(self.timeout):
                    names = await trio.to_thread.run_sync(_list_folder, self.folder, abandon_on_cancel=True)
            except trio.TooSlowError:
                raise DiscoveryError(
                    f"seeds folder {self.folder} did not answer within {self.timeout:g}s"
                ) from None
            except OSError as e:
                raise DiscoveryError(f"cannot read seeds folder {self.folder}: {e.strerror or e}") from None
            for name in names:
                if _is_ip(name):
                    found.append(PeerEndpoint(str(ipaddress.ip_address(name)), self.default_port))
                elif name not in self._ignored:
                    self._ignored.add(name)
                    log.warning("ignoring seed file %s: its name is not an IP address", self.folder / name)
        return list(dict.fromkeys(found))[:MAX_SEEDS]

    async def _resolve(self, host: str) -> list[str]:
        if _is_ip(host):
            return [host]
        try:
            with trio.fail_after(self.timeout):
                infos = await trio.socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (trio.TooSlowError, OSError) as e:
            log.warning("cannot resolve peer address %s: %s", host, e if str(e) else "no answer in time")
            return []
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _list_folder(folder: Path) -> list[str]:
    # Regular files only (the original skips folders); hidden files are editors' leftovers.
    return sorted(e.name for e in os.scandir(folder) if not e.name.startswith(".") and e.is_file())
