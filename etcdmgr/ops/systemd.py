"""sd_notify: tell systemd (Type=notify) that the daemon is ready, alive, or stopping.

A datagram to the unix socket named by NOTIFY_SOCKET; without it (not run by systemd) every
call does nothing. No library: the protocol is one datagram of `KEY=value` lines.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, MutableMapping

log = logging.getLogger(__name__)

VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
_environ: dict[str, str] = {}


def adopt_environment(environ: MutableMapping[str, str] = os.environ) -> None:
    """Move systemd's variables out of the environment into this module, as sd_notify's
    unset_environment does: children must not notify in the daemon's name (etcd speaks
    sd_notify too, and systemd would log each of its messages as refused)."""
    for name in VARIABLES:
        value = environ.pop(name, None)
        if value is not None:
            _environ[name] = value


def under_systemd(environ: Mapping[str, str] | None = None) -> bool:
    return "NOTIFY_SOCKET" in (_environ if environ is None else environ)


def notify(message: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `message` (e.g. "READY=1"); False when not under systemd or it could not be sent."""
    name = (_environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    address = "\0" + name[1:] if name.startswith("@") else name  # @: an abstract socket
    if not address.startswith(("/", "\0")):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)  # on the event loop: never wait for a full receiver
            sock.sendto(message.encode(), address)
    except OSError as e:
        log.warning("cannot notify systemd at %s: %s", name, e.strerror or e)
        return False
    return True


def watchdog_seconds(environ: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """The watchdog timeout systemd set for this process (WatchdogSec=), or None."""
    env = _environ if environ is None else environ
    usec, owner = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None  # meant for another process (e.g. a wrapper that started us)
    if not usec.isdigit() or int(usec) == 0:
        return None
    return int(usec) / 1e6
