"""What the peer API server grants before it knows who is calling: connection slots.

Anyone who reaches the port can open connections, so connections and unfinished handshakes
(TLS and websocket upgrade, each cut off after the handshake deadline) are capped per daemon
and per remote address. A flood from one address then costs the daemon a bounded number of file
descriptors and tasks, keeps slots free for its peers, and leaves descriptors for its own state
writes and for restarting etcd. Refusals are logged at most once per REPORT_EVERY seconds each.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass, field

import trio

MAX_CONNECTIONS = 256  # open at once, authenticated or not; a daemon talks to a handful of peers
MAX_HANDSHAKES = 64
MAX_CONNECTIONS_PER_ADDRESS = 32
MAX_HANDSHAKES_PER_ADDRESS = 8
REPORT_EVERY = 10.0


@dataclass
class ConnectionLimits:
    max_connections: int = MAX_CONNECTIONS
    max_handshakes: int = MAX_HANDSHAKES
    max_connections_per_address: int = MAX_CONNECTIONS_PER_ADDRESS
    max_handshakes_per_address: int = MAX_HANDSHAKES_PER_ADDRESS
    _open: Counter[str] = field(default_factory=Counter, init=False)
    _handshaking: Counter[str] = field(default_factory=Counter, init=False)
    _open_total: int = field(default=0, init=False)
    _handshaking_total: int = field(default=0, init=False)

    def admit(self, address: str) -> str | None:
        """Take a connection slot in handshake for address, or say why not (nothing taken)."""
        if self._open_total >= self.max_connections:
            return f"{self.max_connections} connections open"
        if self._handshaking_total >= self.max_handshakes:
            return f"{self.max_handshakes} handshakes in progress"
        if self._open[address] >= self.max_connections_per_address:
            return f"{self.max_connections_per_address} connections open from {address}"
        if self._handshaking[address] >= self.max_handshakes_per_address:
            return f"{self.max_handshakes_per_address} handshakes in progress from {address}"
        self._open[address] += 1
        self._open_total += 1
        self._handshaking[address] += 1
        self._handshaking_total += 1
        return None

    def handshake_done(self, address: str) -> None:
        _decrement(self._handshaking, address)
        self._handshaking_total -= 1

    def release(self, address: str, *, handshaking: bool) -> None:
        """Give back the slot of a connection that ended (still in its handshake or not)."""
        if handshaking:
            self.handshake_done(address)
        _decrement(self._open, address)
        self._open_total -= 1


def _decrement(counter: Counter[str], key: str) -> None:
    counter[key] -= 1
    if counter[key] <= 0:
        del counter[key]  # so the counters never grow with the number of addresses seen


@dataclass
class Throttled:
    """A warning per kind of event at most every `every` seconds, with how many were held back."""

    logger: logging.Logger
    every: float = REPORT_EVERY
    _next: dict[str, float] = field(default_factory=dict, init=False)
    _held: Counter[str] = field(default_factory=Counter, init=False)

    def warn(self, kind: str, message: str, *args: object) -> None:
        now = trio.current_time()
        if now < self._next.get(kind, -math.inf):
            self._held[kind] += 1
            return
        held = self._held.pop(kind, 0)
        suffix = f" (and {held} more like it since the last such line)" if held else ""
        self.logger.warning(message + suffix, *args)
        self._next[kind] = now + self.every
