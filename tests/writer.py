"""A client that keeps writing unique keys while a test disturbs the cluster, and checks them.

Each write goes to the members in turn until one acknowledges it, for up to `patience`
seconds, as a client with the whole endpoint list would; a write that no member took in that
time is a failed write.
"""

from __future__ import annotations

import base64
import json
import random
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from email.message import Message
from types import TracebackType
from typing import Any

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


# --- acknowledged writes over v3 and v2, and reads that must never go back in time ----------------

V3_PREFIX = "soak/v3/"  # v3 keys (through etcd's JSON gateway)
V2_DIR = "soakv2"  # v2 keys live under /soakv2/
GATEWAYS = ("/v3", "/v3beta")  # 3.4 and 3.5 serve /v3; 3.3 only /v3beta


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def request(
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: dict[str, str] | None = None,
    timeout: float,
    context: ssl.SSLContext | None = None,
) -> tuple[Any, Message]:
    """One HTTP call; its JSON answer and headers. HTTP errors and timeouts raise (OSError)."""
    data = None
    req = urllib.request.Request(url, method=method)
    if json_body is not None:
        data = json.dumps(json_body).encode()
        req.add_header("Content-Type", "application/json")
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, data=data, timeout=timeout, context=context) as resp:
        return json.loads(resp.read() or b"null"), resp.headers


class Gateway:
    """etcd's v3 JSON gateway on each member, under the path the member's version serves (an
    in-place version change may move it: a 404 switches to the other path)."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.context = context
        self._path: dict[str, str] = {}
        self._lock = threading.Lock()

    def post(self, url: str, call: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
        with self._lock:
            path = self._path.get(url, GATEWAYS[0])
        try:
            answer, _ = request(
                "POST", f"{url}{path}/{call}", json_body=body, timeout=timeout, context=self.context
            )
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            path = GATEWAYS[1 - GATEWAYS.index(path)]
            with self._lock:
                self._path[url] = path
            answer, _ = request(
                "POST", f"{url}{path}/{call}", json_body=body, timeout=timeout, context=self.context
            )
        if not isinstance(answer, dict):
            raise ValueError(f"{call}: not a JSON object: {answer!r}")
        return answer


def revision(answer: dict[str, Any]) -> int:
    return int(answer.get("header", {}).get("revision", 0))


def v3_range_end(prefix: str) -> str:
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


@dataclass(frozen=True)
class Ack:
    key: str
    api: str  # "v3" or "v2"
    at: float  # time.monotonic() of the acknowledgement
    revision: int  # v3: the store revision of the put; v2: X-Etcd-Index


@dataclass
class AckWriter:
    """Writes a unique key every `interval`, alternately through the v3 gateway and the v2 API
    (`v2=False`: v3 only), to any member, as a client with the endpoint list would: each write
    starts at the next member in turn and, when that one has not answered within `hedge`
    seconds, is sent to the next one too (a put of the same key and value twice is harmless);
    the first acknowledgement counts. A member that failed is tried last for `cooldown` seconds,
    doubled at each failure in a row up to `max_cooldown`. A write that no member acknowledged
    within `patience` is failed (maybe applied)."""

    urls: Sequence[str]
    gateway: Gateway = field(default_factory=Gateway)
    interval: float = 0.05
    timeout: float = 2.0
    hedge: float = 0.25
    patience: float = 10.0
    cooldown: float = 2.0
    max_cooldown: float = 30.0
    v2: bool = True
    acks: list[Ack] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    _bad_until: dict[str, float] = field(default_factory=dict)
    _failures: dict[str, int] = field(default_factory=dict)  # failures in a row, per member
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> AckWriter:
        # Enough workers for every member's call of a few writes, as hung calls hold theirs.
        self._pool = ThreadPoolExecutor(max_workers=4 * len(self.urls), thread_name_prefix="put")
        self._thread = threading.Thread(target=self._run, name="ack-writer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.patience + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            api = "v2" if self.v2 and n % 2 else "v3"
            key = f"{V2_DIR}/{n:07d}" if api == "v2" else f"{V3_PREFIX}{n:07d}"
            ack = self._write(key, api, n, time.monotonic() + self.patience)
            if ack is None:
                self.failed.append(key)
            else:
                self.acks.append(ack)
            n += 1
            self._stop.wait(self.interval)

    def _order(self, n: int) -> list[str]:
        now = time.monotonic()
        turn = [self.urls[(n + i) % len(self.urls)] for i in range(len(self.urls))]
        return sorted(turn, key=lambda url: self._bad_until.get(url, 0.0) > now)  # stable: good ones first

    def _write(self, key: str, api: str, n: int, deadline: float) -> Ack | None:
        assert self._pool is not None
        while time.monotonic() < deadline and not self._stop.is_set():
            pending: dict[Future[int], str] = {}
            for url in self._order(n):
                pending[self._pool.submit(self._put, url, key, api)] = url
                if ack := self._first_ack(pending, key, api, self.hedge):
                    return ack
            if ack := self._first_ack(pending, key, api, max(0.0, deadline - time.monotonic())):
                return ack
            time.sleep(0.05)
        return None

    def _first_ack(self, pending: dict[Future[int], str], key: str, api: str, wait_for: float) -> Ack | None:
        """Wait up to `wait_for` for one of the pending calls to acknowledge; calls that failed
        leave `pending` and mark their member bad."""
        until = time.monotonic() + wait_for
        while pending:
            done, _ = wait(pending, timeout=max(0.0, until - time.monotonic()), return_when=FIRST_COMPLETED)
            if not done:
                return None
            for future in done:
                url = pending.pop(future)
                if future.exception() is None:
                    self._failures[url] = 0
                    return Ack(key, api, time.monotonic(), future.result())
                failures = self._failures[url] = self._failures.get(url, 0) + 1
                self._bad_until[url] = time.monotonic() + min(
                    self.cooldown * 2 ** (failures - 1), self.max_cooldown
                )
        return None

    def _put(self, url: str, key: str, api: str) -> int:
        if api == "v3":
            answer = self.gateway.post(url, "kv/put", {"key": b64(key), "value": b64(key)}, self.timeout)
            return revision(answer)
        _, headers = request(
            "PUT",
            f"{url}/v2/keys/{key}",
            form={"value": key},
            timeout=self.timeout,
            context=self.gateway.context,
        )
        return int(headers["X-Etcd-Index"])


@dataclass(frozen=True)
class StaleRead:
    at: float
    url: str
    what: str


@dataclass
class MonotonicReader:
    """Linearizable reads (serializable=false) from a random member every `interval`, each
    checked against what was known before it started: its revision is never below that of an
    earlier read or of an acknowledged v3 put, it counts at least the v3 keys acknowledged so
    far, and the last acknowledged v2 key is found by a quorum read."""

    urls: Sequence[str]
    writer: AckWriter
    rng: random.Random
    interval: float = 0.2
    timeout: float = 1.0
    reads: int = 0
    stale: list[StaleRead] = field(default_factory=list)
    max_revision: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MonotonicReader:
        self._thread = threading.Thread(target=self._run, name="monotonic-reader", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 2 + 5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            url = self.rng.choice(self.urls)
            acks = list(self.writer.acks)
            v3 = [a for a in acks if a.api == "v3"]
            v2 = [a for a in acks if a.api == "v2"]
            floor = max([self.max_revision, *(a.revision for a in v3)])
            try:
                self._check_v3(url, floor, len(v3))
                if v2:
                    self._check_v2(url, v2[-1].key)
            except (OSError, ValueError, KeyError):
                continue  # an unanswered read says nothing about staleness

    def _check_v3(self, url: str, floor: int, acked: int) -> None:
        body = {"key": b64(V3_PREFIX), "range_end": b64(v3_range_end(V3_PREFIX)), "count_only": True}
        answer = self.writer.gateway.post(url, "kv/range", body, self.timeout)
        rev, count = revision(answer), int(answer.get("count", 0))
        self.reads += 1
        if rev < floor:
            self.stale.append(StaleRead(time.monotonic(), url, f"revision {rev} < {floor} already seen"))
        if count < acked:
            self.stale.append(StaleRead(time.monotonic(), url, f"{count} v3 keys < {acked} acknowledged"))
        self.max_revision = max(self.max_revision, rev)

    def _check_v2(self, url: str, key: str) -> None:
        try:
            request(
                "GET",
                f"{url}/v2/keys/{key}?quorum=true",
                timeout=self.timeout,
                context=self.writer.gateway.context,
            )
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
            self.stale.append(StaleRead(time.monotonic(), url, f"acknowledged v2 key {key} not found"))


def missing_acks(url: str, acks: Sequence[Ack], gateway: Gateway, timeout: float = 30.0) -> list[str]:
    """Acknowledged keys that linearizable reads from `url` do not find (v3 and v2 listed once each)."""
    body = {"key": b64(V3_PREFIX), "range_end": b64(v3_range_end(V3_PREFIX)), "keys_only": True}
    answer = gateway.post(url, "kv/range", body, timeout)
    v3 = {base64.b64decode(kv["key"]).decode() for kv in answer.get("kvs", [])}
    v2: set[str] = set()
    if any(a.api == "v2" for a in acks):
        listing, _ = request(
            "GET", f"{url}/v2/keys/{V2_DIR}?quorum=true", timeout=timeout, context=gateway.context
        )
        v2 = {str(node["key"]).lstrip("/") for node in listing["node"].get("nodes", [])}
    return [a.key for a in acks if a.key not in (v3 if a.api == "v3" else v2)]
