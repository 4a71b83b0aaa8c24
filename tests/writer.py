"""A client that keeps writing unique keys while a test disturbs the cluster, and checks them.

Each write goes to the members in turn until one acknowledges it, for up to `patience`
seconds, as a client with the whole endpoint list would; a write that no member took in that
time is a failed write.
"""

from __future__ import annotations

import ssl
import threading
import time
import urllib.error
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

from harness import http


@dataclass
class Writer:
    urls: Sequence[str]
    prefix: str = "w"
    interval: float = 0.05
    patience: float = 10.0
    context: ssl.SSLContext | None = None
    acked: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    longest_wait: float = 0.0  # the longest time one write took to be acknowledged
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Writer:
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(self.patience + 5)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            key = f"{self.prefix}{n:06d}"
            started = time.monotonic()
            if self._write(key, started + self.patience):
                self.acked.append(key)
                self.longest_wait = max(self.longest_wait, time.monotonic() - started)
            else:
                self.failed.append(key)
            n += 1
            self._stop.wait(self.interval)

    def _write(self, key: str, deadline: float) -> bool:
        turn = 0
        while time.monotonic() < deadline:
            url = self.urls[turn % len(self.urls)]
            turn += 1
            try:
                http("PUT", f"{url}/v2/keys/{key}", {"value": key}, timeout=2, context=self.context)
                return True
            except (OSError, ValueError):
                time.sleep(0.05)
        return False

    def missing(self, url: str) -> list[str]:
        """Acknowledged keys that a quorum read from `url` does not find."""
        lost = []
        for key in self.acked:
            try:
                http("GET", f"{url}/v2/keys/{key}?quorum=true", timeout=5, context=self.context)
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
                lost.append(key)
        return lost
