"""sd_notify: tell systemd (Type=notify) that the daemon is ready, alive, or stopping.

A datagram to the unix socket named by NOTIFY_SOCKET; without it (not run by systemd) every
call does nothing. No library: the protocol is one datagram of `KEY=value` lines.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify(message: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. "READY=1"); False when not under systemd or it could not be sent."""
    address = environ.get("NOTIFY_SOCKET", "")
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    elif not address.startswith("/"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # on the event loop: never wait for a full receiver
            sock.sendto(message.encode(), address)
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", environ["NOTIFY_SOCKET"], e.strerror or e)
        return False
    return True


def watchdog_seconds(environ: Mapping[str, str] = os.environ, pid: int | None = None) -> float | None:
    """The watchdog timeout systemd set for this process (WatchdogSec=), or None."""
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None  # meant for another process (e.g. a wrapper that started us)
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1e6
