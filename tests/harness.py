"""Start N etcdmgr daemons as real processes, node n on its own loopback address 127.X.Y.n.

Each cluster gets a fresh 127.X.Y.0/24 block (X from the process id and the pytest-xdist worker, Y
from a counter), its own store, discovery folder and data dirs under the test's tmp dir, so tests
never collide with each other or with a demo on 127.0.0.x. Every process started here is stopped by pid.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from etcdmgr.etcd.versions import all_binaries, version_key

ROOT = Path(__file__).resolve().parent.parent
CLIENT_PORT = 4001
QUARANTINE_PORT = 8001
PEER_PORT = 2380
T = TypeVar("T")

_blocks = itertools.count(1)


def new_block() -> str:
    """A fresh '127.X.Y' prefix for one cluster.

    Under pytest-xdist, X is `index + workers * k`, so the workers of one run never share an X,
    and k comes from the process id, as X does for a run without workers."""
    n = next(_blocks)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    x = 20 + index + workers * (os.getpid() % (200 // workers))
    return f"127.{x}.{n % 250 + 1}"


def wait_for(what: str, fn: Callable[[], T | None], timeout: float = 60.0, interval: float = 0.2) -> T:
    """Poll `fn` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
        except Exception as e:  # a poll that fails now may succeed later
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error})")


def http(
    method: str,
    url: str,
    data: dict[str, str] | None = None,
    timeout: float = 3.0,
    context: ssl.SSLContext | None = None,
) -> Any:
    body = "&".join(f"{k}={v}" for k, v in (data or {}).items()).encode() if data else None
    req = urllib.request.Request(url, data=body, method=method)
    if body:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        return json.loads(resp.read())


@dataclass
class Daemon:
    n: int
    ip: str
    data_dir: Path
    log_path: Path
    args: list[str]
    scheme: str = "http"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://{self.ip}:{CLIENT_PORT}"

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
            )

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM and wait: the daemon stops its etcd and exits."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon {self.n} did not exit within {timeout}s of SIGTERM") from None

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def logged_at(self, text: str, after: float) -> float | None:
        """Wall-clock time of the first log line containing `text` stamped at or after `after`."""
        for line in self.log().splitlines():
            if text in line:
                try:
                    at = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
                except ValueError:  # a continuation line of a multi-line record
                    continue
                if at >= after:
                    return at
        return None

    def peer_id(self) -> str:
        return (self.data_dir / "myid").read_text().strip()


@dataclass
class Cluster:
    root: Path
    size: int
    command: Sequence[str] = field(default_factory=lambda: [sys.executable, str(ROOT / "etcdmgr.py")])
    extra_args: Sequence[str] = ()
    tls: bool = False  # mutual TLS for the peer API and etcd, from CAs made by `etcdmgr pki init`
    made_pki_dir: Path | None = None  # with tls: CAs made elsewhere (kops), used as they are
    discovery_store: bool = True  # False: no --discovery-store flag (peers named some other way)
    block: str = field(default_factory=new_block)
    daemons: list[Daemon] = field(default_factory=list)
    context: ssl.SSLContext | None = None

    def __post_init__(self) -> None:
        self.store_url = f"file://{self.root}/backups/test"
        self.discovery_url = f"file://{self.root}/discovery"
        self.pki_dir = self.made_pki_dir or self.root / "pki"
        self.client_dir = self.root / "client-cert"
        if self.tls:
            self.root.mkdir(parents=True, exist_ok=True)
            if self.made_pki_dir is None:
                self._tool("pki", "init", f"--pki-dir={self.pki_dir}")
            self._tool(
                "pki", "client-cert", f"--pki-dir={self.pki_dir}", "--name=tester", f"--out={self.client_dir}"
            )
            self.context = ssl.create_default_context(cafile=str(self.client_dir / "ca.crt"))
            self.context.load_cert_chain(self.client_dir / "tester.crt", self.client_dir / "tester.key")
        for n in range(1, self.size + 1):
            self.daemons.append(self._daemon(n))

    def _daemon(self, n: int) -> Daemon:
        ip = f"{self.block}.{n}"
        data_dir = self.root / "data" / str(n)
        scheme = "https" if self.tls else "http"
        security = [f"--pki-dir={self.pki_dir}"] if self.tls else ["--insecure", "--etcd-insecure"]
        args = [
            *self.command,
            "daemon",
            *security,
            f"--address={ip}",
            f"--etcd-address={ip}",
            "--cluster-name=test",
            f"--backup-store={self.store_url}",
            *([f"--discovery-store={self.discovery_url}"] if self.discovery_store else []),
            f"--data-dir={data_dir}",
            f"--client-urls={scheme}://{ip}:{CLIENT_PORT}",
            f"--quarantine-client-urls={scheme}://{ip}:{QUARANTINE_PORT}",
            f"--peer-urls={scheme}://{ip}:{PEER_PORT}",
            "--discovery-poll-interval=2s",
            "--cycle-interval=2s",
            *self.extra_args,
        ]
        return Daemon(n, ip, data_dir, self.root / f"daemon-{n}.log", args, scheme)

    def __getitem__(self, n: int) -> Daemon:
        return self.daemons[n - 1]

    def start(self, *ns: int) -> None:
        for n in ns or range(1, self.size + 1):
            self[n].start()

    def stop_all(self) -> None:
        for d in self.daemons:
            try:
                d.stop()
            except AssertionError:
                pass

    def _tool(self, *args: str) -> None:
        subprocess.run([*self.command, *args], check=True, capture_output=True, timeout=60, cwd=ROOT)

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*self.command, "ctl", f"--backup-store={self.store_url}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"ctl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def backups_after_writes(self, timeout: float = 60) -> list[str]:
        """Backup names, once two more have been taken: the second one started after every
        write made before this call, so it holds them."""
        before = len(self.ctl("list-backups").stdout.split())
        return wait_for(
            "a backup holding the writes so far",
            lambda: names if len(names := self.ctl("list-backups").stdout.split()) >= before + 2 else None,
            timeout=timeout,
        )

    def configure(self, member_count: int, version: str) -> None:
        self.ctl(f"-member-count={member_count}", f"-etcd-version={version}", "configure-cluster")

    # --- what etcd says ------------------------------------------------------------------------

    def running_daemons(self) -> Iterator[Daemon]:
        return (d for d in self.daemons if d.running)

    def members(self) -> list[dict[str, Any]] | None:
        """The v2 member list from any running daemon's etcd (None when none answers)."""
        for d in self.running_daemons():
            try:
                return list(http("GET", f"{d.client_url}/v2/members", context=self.context)["members"])
            except (OSError, ValueError):
                continue
        return None

    def etcdctl(self, n: int, *args: str) -> str:
        """Run the newest installed etcdctl (v3 API) against daemon n's etcd; return stdout."""
        etcdctl = max(all_binaries().values(), key=lambda b: version_key(b.version)).etcdctl
        result = subprocess.run(
            [str(etcdctl), f"--endpoints={self[n].client_url}", *self.etcdctl_tls(), *args],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "ETCDCTL_API": "3"},
        )
        if result.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def get3(self, key: str, n: int) -> str | None:
        out = self.etcdctl(n, "get", key, "--print-value-only")
        return out.rstrip("\n") if out else None

    def learners(self) -> int | None:
        """How many learners the v3 member list shows (the v2 list cannot tell)."""
        etcdctl = max(all_binaries().values(), key=lambda b: version_key(b.version)).etcdctl
        for d in self.running_daemons():
            result = subprocess.run(
                [
                    str(etcdctl),
                    f"--endpoints={d.client_url}",
                    *self.etcdctl_tls(),
                    "member",
                    "list",
                    "-w",
                    "json",
                ],
                capture_output=True,
                text=True,
                timeout=10,
                env={**os.environ, "ETCDCTL_API": "3"},
            )
            if result.returncode == 0:
                return sum(1 for m in json.loads(result.stdout)["members"] if m.get("isLearner"))
        return None

    def etcdctl_tls(self) -> list[str]:
        if not self.tls:
            return []
        d = self.client_dir
        return [f"--cacert={d / 'ca.crt'}", f"--cert={d / 'tester.crt'}", f"--key={d / 'tester.key'}"]

    def healthy(self, d: Daemon) -> bool:
        try:
            return http("GET", f"{d.client_url}/health", timeout=2, context=self.context).get("health") in (
                "true",
                True,
            )
        except (OSError, ValueError):
            return False

    def wait_members(
        self, count: int, timeout: float = 90.0, on: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        """Wait until etcd lists `count` started members and each of them is healthy."""

        def check() -> list[dict[str, Any]] | None:
            members = self.members()
            if members is None or len(members) != count or not all(m.get("name") for m in members):
                return None
            urls = [m["clientURLs"][0] for m in members if m.get("clientURLs")]
            if len(urls) != count:
                return None
            for url in urls:
                if http("GET", f"{url}/health", timeout=2, context=self.context).get("health") not in (
                    "true",
                    True,
                ):
                    return None
            if on is not None and {self._n_of(m) for m in members} != set(on):
                return None
            return members if self.learners() == 0 else None

        return wait_for(f"{count} healthy members", check, timeout)

    def _n_of(self, member: dict[str, Any]) -> int:
        return int(member["peerURLs"][0].split("//")[1].split(":")[0].rsplit(".", 1)[1])

    def put(self, key: str, value: str, n: int | None = None) -> None:
        daemons = [self[n]] if n else list(self.running_daemons())
        wait_for(
            f"put {key}",
            lambda: any(self._try_put(d, key, value, self.context) for d in daemons),
            timeout=30,
        )

    @staticmethod
    def _try_put(d: Daemon, key: str, value: str, context: ssl.SSLContext | None) -> bool:
        try:
            http("PUT", f"{d.client_url}/v2/keys/{key}", {"value": value}, context=context)
            return True
        except (OSError, ValueError):
            return False

    def get(self, key: str, n: int) -> str | None:
        try:
            return str(
                http("GET", f"{self[n].client_url}/v2/keys/{key}?quorum=true", context=self.context)["node"][
                    "value"
                ]
            )
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def logs(self) -> str:
        return "\n".join(f"===== daemon {d.n}\n{d.log()[-6000:]}" for d in self.daemons)
