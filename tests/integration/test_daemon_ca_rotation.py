"""All three CAs rotated on disk under three running TLS daemons, as docs/operations.md says, with
no daemon restarted: (1) each CA file holds the old and the new certificate, (2) the new keys
sign, (3) the old certificates go. Each host has its own copy of the pki folder, edited in turn.

Throughout, the peers stay healthy (no ping fails) and a writer keeps writing through the
members (etcd restarts one member at a time to read its CA bundles: the others keep serving).
At the end a daemon holding only the new CAs joins the peers, and one holding only the old CAs is
refused by them. The metrics' expiry gauges follow the new files.
"""

from __future__ import annotations

import itertools
import re
import shutil
import signal
import ssl
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from cryptography import x509
from harness import Cluster, Daemon, http, wait_for
from prometheus_client.parser import text_string_to_metric_families

from etcdmgr.etcd.versions import find_binaries
from etcdmgr.pki import ALL_CAS, CLIENTS_CA, MANAGER_CA, PEERS_CA

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
METRICS_PORT = 9488
RELOADED = "peer API TLS reloaded for new connections"
RESTARTED = "restarting it to read its CA bundles again"
# The longest time no write went through: one member restarts at a time, so the others serve;
# an etcd leader restarting costs an election.
MAX_WRITE_GAP = 5.0
PHASE_TIMEOUT = 90.0


class Writer(threading.Thread):
    """Writes a key every 0.2 s through any of the members that answers; remembers when."""

    def __init__(self, daemons: list[Daemon], context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.daemons = daemons
        self.context = context  # replaced by the test when the client certificate changes
        self.done = threading.Event()
        self.written: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.done.is_set():
            for d in self.daemons[i % 3 :] + self.daemons[: i % 3]:
                try:
                    http("PUT", f"{d.client_url}/v2/keys/rot/{i}", {"value": str(i)}, 2.0, self.context)
                    self.written.append(time.monotonic())
                    break
                except (OSError, ValueError) as e:
                    self.errors.append(f"{time.strftime('%H:%M:%S')} via {d.n}: {e}")
            i += 1
            time.sleep(0.2)

    def longest_gap(self, since: float) -> float:
        times = [since, *(t for t in self.written if t > since), time.monotonic()]
        return max(b - a for a, b in itertools.pairwise(times))


def client_context(ca_files: list[Path], cert_dir: Path, name: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cadata="".join(p.read_text() for p in ca_files))
    ctx.load_cert_chain(cert_dir / f"{name}.crt", cert_dir / f"{name}.key")
    return ctx


def tool(c: Cluster, *args: str) -> None:
    subprocess.run([*c.command, *args], check=True, capture_output=True, timeout=60)


def own_pki(d: Daemon, pki: Path) -> None:
    d.args = [f"--pki-dir={pki}" if a.startswith("--pki-dir=") else a for a in d.args]


def log_times(d: Daemon, what: str) -> list[datetime]:
    """When each line of d's log holding `what` was written (the log's local time)."""
    return [
        datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f") for line in d.log().splitlines() if what in line
    ]


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def signed_by(path: Path, ca: x509.Certificate) -> bool:
    try:
        cert(path).verify_directly_issued_by(ca)
    except Exception:
        return False
    return True


def leafs(d: Daemon) -> list[Path]:
    """The daemon's own certificates, each in a folder named after its CA: the peer API's
    (manager/), etcd's (<token>/peers, <token>/clients) and the manager's etcd client ones."""
    found = [p for p in (d.data_dir / "pki").rglob("*.crt") if p.name != "ca.crt"]
    assert len(found) == 6, found
    return found


def gauges(d: Daemon) -> dict[str, float]:
    with urllib.request.urlopen(f"http://{d.ip}:{METRICS_PORT}/metrics", timeout=5) as resp:
        body = resp.read().decode()
    return {
        s.labels["cert"]: s.value
        for family in text_string_to_metric_families(body)
        if family.name == "etcdmgr_cert_expiry_timestamp_seconds"
        for s in family.samples
    }


def test_ca_rotation_in_three_phases_under_running_daemons(make_cluster: Callable[..., Cluster]) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(5, tls=True)
    old, new = c.pki_dir, c.root / "pki-new"
    time.sleep(1.1)  # the new CAs end a second later than the old: the expiry gauges tell them apart
    tool(c, "pki", "init", f"--pki-dir={new}")
    tool(c, "pki", "client-cert", f"--pki-dir={new}", "--name=tester", f"--out={c.root / 'client-new'}")
    hosts = [c.root / f"pki-host{n}" for n in (1, 2, 3)]
    for d, pki in zip(c.daemons[:3], hosts, strict=True):
        own_pki(d, shutil.copytree(old, pki))
    own_pki(c[4], shutil.copytree(new, c.root / "pki-new-only"))
    own_pki(c[5], shutil.copytree(old, c.root / "pki-old-only"))
    c[1].args.append(f"--etcd-manager-metrics-port={METRICS_PORT}")
    old_ca = {name: cert(old / f"{name}.crt") for name in ALL_CAS}
    new_ca = {name: cert(new / f"{name}.crt") for name in ALL_CAS}

    c.start(1, 2, 3)
    c.configure(3, VERSION)
    c.wait_members(3, timeout=120)
    members = c.daemons[:3]
    ids = {d.n: d.peer_id() for d in members}
    trust_both = [old / f"{CLIENTS_CA}.crt", new / f"{CLIENTS_CA}.crt"]
    writer = Writer(members, client_context(trust_both, c.client_dir, "tester"))
    c.context = writer.context
    writer.start()
    began = time.monotonic()
    pings_before = {d.n: d.log().count("ping to peer") for d in members}
    latencies: dict[str, list[float]] = {}

    def edit_hosts(phase: str, edit: Callable[[Path, str], None], *, hup: bool = False) -> datetime:
        """Edit each host's CA files in turn; with `hup`, signal its daemon to look at once."""
        edited: list[datetime] = []
        for d, pki in zip(members, hosts, strict=True):
            edited.append(datetime.now())
            for name in ALL_CAS:
                edit(pki, name)
            if hup:
                assert d.proc is not None
                d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.5)  # one host after the other, as an operator would
        wait_for(
            f"every daemon reloading its peer API TLS after phase {phase}",
            lambda: all(
                any(t >= e for t in log_times(d, RELOADED)) for d, e in zip(members, edited, strict=True)
            ),
            timeout=30,
        )
        latencies[phase] = [
            round((min(t for t in log_times(d, RELOADED) if t >= e) - e).total_seconds(), 2)
            for d, e in zip(members, edited, strict=True)
        ]
        return edited[0]

    def restarts_since(since: datetime) -> dict[int, int]:
        return {d.n: sum(1 for t in log_times(d, RESTARTED) if t >= since) for d in members}

    def wait_restarted(phase: str, since: datetime) -> None:
        wait_for(
            f"every member's etcd restarted once for its new CA bundles (phase {phase})",
            lambda: all(n >= 1 for n in restarts_since(since).values()),
            timeout=PHASE_TIMEOUT,
            interval=0.5,
        )
        c.wait_members(3, timeout=60)

    # Phase 1: trust both.
    def append_new(pki: Path, name: str) -> None:
        with (pki / f"{name}.crt").open("ab") as f:
            f.write((new / f"{name}.crt").read_bytes())

    p1 = edit_hosts("1", append_new)
    wait_restarted("1", p1)
    # Every member's etcd trusts the new clients CA now: the writer moves to a new certificate.
    writer.context = c.context = client_context(trust_both, c.root / "client-new", "tester")
    c.put("after-phase-1", "yes")

    # Phase 2: the new keys sign; every certificate is reissued in place, etcd restarts for none.
    def new_key(pki: Path, name: str) -> None:
        shutil.copyfile(new / f"{name}.key", pki / f"{name}.key")

    p2 = edit_hosts("2", new_key)
    issuer = {"manager": new_ca[MANAGER_CA], "peers": new_ca[PEERS_CA], "clients": new_ca[CLIENTS_CA]}
    wait_for(
        "every certificate of the daemons issued by the new keys",
        lambda: all(signed_by(p, issuer[p.parent.name]) for d in members for p in leafs(d)),
        timeout=PHASE_TIMEOUT,
    )
    assert restarts_since(p2) == {1: 0, 2: 0, 3: 0}, "etcd reads new leaf certificates without a restart"
    # Every member serves a certificate of the new key: etcdctl may trust the new CA alone.
    c.client_dir = c.root / "client-new"

    # Phase 3: the old certificates leave the CA files.
    def drop_old(pki: Path, name: str) -> None:
        shutil.copyfile(new / f"{name}.crt", pki / f"{name}.crt")

    p3 = edit_hosts("3", drop_old, hup=True)
    wait_restarted("3", p3)
    c.put("after-phase-3", "yes")
    assert all(c.get("after-phase-1", d.n) == "yes" for d in members)
    gap = writer.longest_gap(began)
    writer.done.set()
    writer.join()
    rotation = time.monotonic() - began

    # The peers never lost each other.
    pings = {d.n: d.log().count("ping to peer") - pings_before[d.n] for d in members}
    assert pings == {1: 0, 2: 0, 3: 0}, f"pings failed during the rotation: {pings}"
    assert gap < MAX_WRITE_GAP, f"no write went through for {gap:.1f}s: {writer.errors[-10:]}"

    # The metrics follow the files: the CA gauges show the new CAs, the leaf gauges the new leafs.
    expected = {name: ca.not_valid_after_utc.timestamp() for name, ca in new_ca.items()}
    expected["peer-api-server"] = cert(
        c[1].data_dir / "pki" / "manager" / "server.crt"
    ).not_valid_after_utc.timestamp()
    wait_for(
        "the expiry gauges of the new files",
        lambda: all(abs(gauges(c[1]).get(k, 0) - v) < 1 for k, v in expected.items()),
        timeout=30,
    )
    assert all(abs(gauges(c[1])[k] - old_ca[k].not_valid_after_utc.timestamp()) >= 1 for k in ALL_CAS)

    # A daemon with only the new CAs joins the peers.
    c.start(4)
    joined = wait_for("daemon 4's id", lambda: (c[4].data_dir / "myid").exists() and c[4].peer_id())
    wait_for(
        "daemon 4 and the others verifying each other",
        lambda: (
            all(f"peer {joined} is healthy" in d.log() for d in members)
            and all(f"peer {ids[n]} is healthy" in c[4].log() for n in ids)
        ),
        timeout=30,
    )
    # A daemon with only the old CAs is refused by every one of them.
    c.start(5)
    refused = re.compile(rf"refused connection from {re.escape(c[5].ip)}:\d+")
    wait_for(
        "daemons 1-4 refusing daemon 5's connections",
        lambda: all(refused.search(d.log()) for d in [*members, c[4]]),
        timeout=30,
    )
    outsider = c[5].peer_id()
    assert not any(f"peer {outsider} is healthy" in d.log() for d in [*members, c[4]])
    assert not any(f"peer {pid} is healthy" in c[5].log() for pid in [*ids.values(), joined])
    print(
        f"CA rotation: {rotation:.1f}s for three phases; peer API reloaded after its host's edit "
        f"per phase (s, SIGHUP in phase 3): {latencies}; longest write gap {gap:.2f}s; "
        f"{len(writer.written)} writes, {len(writer.errors)} tried again on another member: {writer.errors[:3]}"
    )
