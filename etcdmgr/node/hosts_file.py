"""The opt-in managed block of member names in a hosts file.

The marker lines are the ones etcd-manager writes (keyed by cluster name), so a host moved from
it keeps a single block, and the daemons of two clusters on one host (e.g. main and events) each
keep their own block in the same file.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import trio

from etcdmgr.util.atomic import write_atomic

# Anything else (whitespace, '#', newlines) would let a peer-supplied name break the file.
_HOST_NAME = re.compile(r"[A-Za-z0-9._-]+")


def begin_marker(cluster_name: str) -> str:
    return f"# Begin host entries managed by etcd-manager[{cluster_name}] - do not edit"


def end_marker(cluster_name: str) -> str:
    return f"# End host entries managed by etcd-manager[{cluster_name}]"


def member_host_name(member_name: str, dns_suffix: str) -> str:
    """`<member name><suffix>`, with exactly the one dot the original adds when the suffix lacks it."""
    if dns_suffix and not dns_suffix.startswith("."):
        dns_suffix = "." + dns_suffix
    return member_name + dns_suffix


def render_block(entries: Mapping[str, Sequence[str]], *, cluster_name: str) -> str:
    """The managed block, markers included, one `IP<TAB>name` line per pair, sorted as the original sorts."""
    lines: set[str] = set()
    for name, addresses in entries.items():
        if not _HOST_NAME.fullmatch(name):
            raise ValueError(f"invalid host name {name!r}")
        for address in addresses:
            # Canonical form, so equal addresses written differently do not cause a rewrite.
            lines.add(f"{ipaddress.ip_address(address)}\t{name}")
    body = "".join(line + "\n" for line in sorted(lines))
    return f"{begin_marker(cluster_name)}\n{body}{end_marker(cluster_name)}\n"


def update_hosts_text(current: str, entries: Mapping[str, Sequence[str]], *, cluster_name: str) -> str:
    """`current` with our block replaced where it stands (or appended); empty `entries` remove it.

    Other lines are kept byte for byte. A begin marker without an end is taken to run to the end of
    the text (only we write that marker, so what follows is a cut-short block of ours), and a stray
    end marker is dropped, as the original does.
    """
    begin, end = begin_marker(cluster_name), end_marker(cluster_name)
    block = render_block(entries, cluster_name=cluster_name) if entries else ""
    out: list[str] = []
    in_block = placed = False
    for line in current.splitlines(keepends=True):
        key = line.strip()
        if key == begin:
            in_block = True
            if not placed:
                out.append(block)
                placed = True
        elif key == end:
            in_block = False
        elif not in_block:
            out.append(line)
    if not placed and block:
        if out and not out[-1].endswith(("\n", "\r")):
            out[-1] += "\n"
        out.append(block)
    return "".join(out)


async def update_hosts_file(path: Path, entries: Mapping[str, Sequence[str]], *, cluster_name: str) -> bool:
    """Bring our block in `path` up to date; True if the file was written. A missing file is created."""
    return await trio.to_thread.run_sync(_update_sync, path, entries, cluster_name)


def _update_sync(path: Path, entries: Mapping[str, Sequence[str]], cluster_name: str) -> bool:
    try:
        raw = path.read_bytes()
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        raw, mode = b"", 0o644
    # surrogateescape: bytes that are not UTF-8 in other people's lines survive unchanged.
    text = update_hosts_text(raw.decode("utf-8", "surrogateescape"), entries, cluster_name=cluster_name)
    updated = text.encode("utf-8", "surrogateescape")
    if updated == raw:
        return False
    try:
        write_atomic(path, updated, mode)
    except OSError as e:
        # In containers /etc/hosts is usually a bind mount: renaming over it fails with EBUSY (or
        # EXDEV); under systemd's ProtectSystem= only the file itself may be writable (EROFS).
        # Write in place then.
        if e.errno not in (errno.EBUSY, errno.EXDEV, errno.EROFS):
            raise
        _write_in_place(path, updated)
    return True


def _write_in_place(path: Path, data: bytes) -> None:
    # Overwrite then truncate (not truncate then write), so a resolver reading meanwhile never
    # sees an empty file.
    with path.open("r+b") as f:
        f.write(data)
        f.truncate()
        f.flush()
        os.fsync(f.fileno())
