"""Short-lived etcd certificates are reissued in place while the cluster keeps serving.

With --cert-duration=20s each daemon checks every 2 s and reissues once 6.7 s are left. The test
writes, reads and looks at the served certificates once a second until every port serves a
reissued certificate and the first ones have expired; a certificate etcd kept serving after that
would have expired, and every new TLS connection would fail.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from cryptography import x509
from harness import CLIENT_PORT, PEER_PORT, Cluster, Daemon, http, wait_for

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.store.layout import parse_name

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
CERT_DURATION = "20s"
# The first certificates end at most 20 s after the members start; a run has until then plus
# a few reissues to settle.
RUN_AT_MOST = 90.0
# Seconds of rounds after the first certificates' end, whose new connections must be served.
PAST_FIRST_END = 2.0


@dataclass
class Served:
    """What one member's port served over the run: notAfter first and last, and the lag
    between a new certificate file on disk and etcd serving it."""

    first: datetime
    last: datetime
    disk: datetime
    disk_changed_at: float | None = None
    lags: list[float] = field(default_factory=list)


def _token_dir(d: Daemon) -> Path:
    # The manager's own files live under pki/manager; the member's under pki/<cluster token>.
    dirs = [p for p in (d.data_dir / "pki").iterdir() if p.is_dir() and p.name != "manager"]
    assert len(dirs) == 1, dirs
    return dirs[0]


def _disk_not_after(d: Daemon, port: int) -> datetime:
    rel = "peers/me.crt" if port == PEER_PORT else "clients/server.crt"
    return x509.load_pem_x509_certificate((_token_dir(d) / rel).read_bytes()).not_valid_after_utc


def _served_cert(d: Daemon, port: int, cert: Path, key: Path) -> x509.Certificate:
    """The certificate etcd presents on a fresh connection, read without verifying it, so an
    expired one is seen (and reported) rather than only refused."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # The peer port wants a certificate of etcd-peers-ca whose addresses match where the
    # connection comes from: the member's own one, from its own address.
    ctx.load_cert_chain(cert, key)
    with socket.create_connection((d.ip, port), timeout=3, source_address=(d.ip, 0)) as raw:
        with ctx.wrap_socket(raw, server_hostname=d.ip) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def test_short_lived_certs_are_reissued_in_place_while_serving(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3, tls=True, extra_args=[f"--cert-duration={CERT_DURATION}"])
    # The operator's certificate is long-lived: only the members' own ones may expire here.
    operator = c.root / "operator"
    subprocess.run(
        [
            *c.command,
            "pki",
            "client-cert",
            f"--pki-dir={c.pki_dir}",
            "--name=operator",
            f"--out={operator}",
            "--duration=8760h",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    client = ssl.create_default_context(cafile=str(operator / "ca.crt"))
    client.load_cert_chain(operator / "operator.crt", operator / "operator.key")
    op_cert, op_key = operator / "operator.crt", operator / "operator.key"

    c.configure(3, VERSION)
    c.start()
    c.wait_members(3, timeout=120)

    def served(d: Daemon, port: int) -> x509.Certificate:
        if port == PEER_PORT:
            peers = _token_dir(d) / "peers"
            return _served_cert(d, port, peers / "me.crt", peers / "me.key")
        return _served_cert(d, port, op_cert, op_key)

    ports = (CLIENT_PORT, PEER_PORT)
    seen: dict[tuple[int, int], Served] = {}
    for d in c.daemons:
        for port in ports:
            first = served(d, port).not_valid_after_utc
            seen[d.n, port] = Served(first, first, _disk_not_after(d, port))

    retried: list[str] = []
    failed: list[str] = []

    def attempt(what: str, fn: Callable[[], object]) -> None:
        # One retry: a single refused connection while etcd swaps files is tolerated, two are not.
        for tries in (1, 2):
            try:
                fn()
                return
            except (OSError, ValueError, KeyError, AssertionError) as e:
                (retried if tries == 1 else failed).append(f"{what}: {e!r}")
                time.sleep(0.2)

    def put_get(d: Daemon, key: str, value: str) -> None:
        http("PUT", f"{d.client_url}/v2/keys/{key}", {"value": value}, context=client)
        got = http("GET", f"{d.client_url}/v2/keys/{key}?quorum=true", context=client)["node"]["value"]
        assert got == value, (key, got, value)

    def settled() -> bool:
        end_of_first = max(s.first for s in seen.values())
        past_end = (datetime.now(UTC) - end_of_first).total_seconds() >= PAST_FIRST_END
        return past_end and all(s.last > s.first for s in seen.values())

    start = time.monotonic()
    i = 0
    while not settled() and time.monotonic() - start < RUN_AT_MOST:
        tick = time.monotonic()
        for d in c.daemons:
            attempt(f"put/get via {d.n} at {tick - start:.1f}s", partial(put_get, d, f"r/{i}/{d.n}", str(i)))
            for port in ports:
                s = seen[d.n, port]
                disk = _disk_not_after(d, port)
                if disk != s.disk:
                    s.disk, s.disk_changed_at = disk, time.monotonic()
                try:
                    now_served = served(d, port).not_valid_after_utc
                except (OSError, ssl.SSLError) as e:
                    retried.append(f"reading {d.n}:{port} at {tick - start:.1f}s: {e!r}")
                    continue
                if now_served != s.last:
                    s.last = now_served
                    if s.disk_changed_at is not None and now_served == s.disk:
                        s.lags.append(time.monotonic() - s.disk_changed_at)
        i += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))

    now = datetime.now(UTC)
    report = {f"{n}:{port}": s for (n, port), s in seen.items()}
    print(f"cert renewal: {i} rounds, retried {len(retried)}: {retried}")
    for name, s in report.items():
        print(f"  {name} first notAfter {s.first:%H:%M:%S} last {s.last:%H:%M:%S} lag after disk {s.lags}")

    assert not failed, f"operations failed after one retry: {failed}"
    for d in c.daemons:
        assert "reissuing etcd certificates" in d.log(), f"daemon {d.n} never reissued its certificates"
    stale = {name: s.last for name, s in report.items() if s.last <= s.first}
    assert not stale, f"ports still serving their first certificate (notAfter) after {i} rounds: {stale}"
    expired = {name: s.last for name, s in report.items() if s.last <= now}
    assert not expired, f"ports serving an expired certificate: {expired}"
    # The cluster is still whole, and every write of the run is readable everywhere.
    c.wait_members(3, timeout=30)
    for d in c.daemons:
        try:
            got = http("GET", f"{d.client_url}/v2/keys/r/0/1?quorum=true", context=client)["node"]["value"]
        except urllib.error.HTTPError as e:
            pytest.fail(f"key r/0/1 not readable via {d.n}: {e}")
        assert got == "0", (d.n, got)


def test_manager_certs_are_renewed_while_running(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(1, tls=True, extra_args=["--cert-duration=20s", "--backup-interval=2s"])
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1, timeout=120)
    manager = c[1].data_dir / "pki" / "manager"
    first = {p.name: _not_after(p) for p in manager.rglob("*.crt") if p.name != "ca.crt"}
    assert first, f"no manager certificates under {manager}"
    # A backup is a control cycle that reached the peer API and etcd with the manager's
    # certificates: one begun after the first ones ended shows the renewed ones at work.
    first_end = max(first.values())
    wait_for(
        "a backup begun after the first manager certificates ended",
        lambda: any((t := parse_name(b)) and t[0] > first_end for b in c.ctl("list-backups").stdout.split()),
        timeout=60,
        interval=1.0,
    )
    now = datetime.now(UTC)
    expired = {
        str(p.relative_to(manager)): t
        for p in manager.rglob("*.crt")
        if p.name != "ca.crt" and (t := _not_after(p)) <= now
    }
    assert not expired, f"manager certificates expired while the daemon runs: {expired}"
    assert "cannot list etcd members" not in c[1].log()


def _not_after(path: Path) -> datetime:
    return x509.load_pem_x509_certificate(path.read_bytes()).not_valid_after_utc
