"""Three daemons with the metrics port: what /metrics, /healthz and /readyz say through a create, a
backup, an etcd killed under its daemon, a member lost and a restore."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from harness import Cluster, Daemon, wait_for
from prometheus_client.parser import text_string_to_metric_families

from etcdmgr import __version__
from etcdmgr.etcd.versions import find_binaries

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

VERSION = "3.5.30"
PORT = 9181  # each daemon has its own address, so one port serves them all
CERTS = {
    "etcd-manager-ca",
    "etcd-peers-ca",
    "etcd-clients-ca",
    "peer-api-server",
    "peer-api-client",
    "etcd-manager-client",
    "etcd-peer",
    "etcd-server",
}
YEAR = 365 * 86400

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def get(d: Daemon, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://{d.ip}:{PORT}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(d: Daemon) -> Samples:
    status, body = get(d, "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def leader_of(c: Cluster) -> Daemon:
    leaders = [d for d in c.running_daemons() if value(scrape(d), "etcdmgr_is_leader") == 1]
    assert len(leaders) == 1, f"{len(leaders)} leaders"
    return leaders[0]


def members(d: Daemon) -> tuple[float | None, ...]:
    m = scrape(d)
    return tuple(value(m, "etcdmgr_etcd_members", state=s) for s in ("healthy", "unhealthy", "learner"))


def test_metrics_and_health_through_create_backup_member_loss_and_restore(
    make_cluster: Callable[..., Cluster],
) -> None:
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    c = make_cluster(3, tls=True, extra_args=[f"--etcd-manager-metrics-port={PORT}"])
    c.configure(3, VERSION)
    c.start()
    c.wait_members(3)

    # --- after the create ---------------------------------------------------------------------
    leader = wait_for("one leader", lambda: leader_of(c), timeout=30)
    wait_for("the leader's view of 3 healthy members", lambda: members(leader) == (3, 0, 0), timeout=30)
    m = scrape(leader)
    assert value(m, "etcdmgr_etcd_member_count_desired") == 3
    assert value(m, "etcdmgr_decisions_total", action="CreateCluster") == 1
    assert (value(m, "etcdmgr_control_cycles_total") or 0) > 0
    assert value(m, "etcdmgr_control_cycle_running_seconds") is not None
    for d in c.daemons:
        m = scrape(d)
        assert value(m, "etcdmgr_quarantined") == 0
        assert value(m, "etcdmgr_peers", state="healthy") == 2
        assert value(m, "etcdmgr_build_info", python=platform.python_version(), version=__version__) == 1
        assert value(m, "etcdmgr_backup_interval_seconds") == 15 * 60
        assert value(m, "etcdmgr_etcd_restarts_total") == 0
        if d is not leader:
            assert value(m, "etcdmgr_is_leader") == 0
            assert value(m, "etcdmgr_etcd_members", state="healthy") is None, "only the leader reports it"
        assert get(d, "/healthz") == (200, "ok\n")
        status, body = get(d, "/readyz")
        assert status == 200 and body.startswith("ok\ncontrol loop: "), body

        def all_certs(d: Daemon = d) -> Samples | None:
            got = scrape(d)
            names = {dict(k[1])["cert"] for k in got if k[0] == "etcdmgr_cert_expiry_timestamp_seconds"}
            return got if names == CERTS else None

        m = wait_for(f"daemon {d.n}'s certificates", all_certs, timeout=30)
        now = time.time()
        for cert in CERTS:
            expiry = value(m, "etcdmgr_cert_expiry_timestamp_seconds", cert=cert) or 0
            # CAs: 10 years; leaf certificates: --cert-duration's 2 years.
            assert (9 * YEAR if cert.endswith("-ca") else YEAR) < expiry - now < 11 * YEAR, cert

    # --- a backup (the first is taken at once, there being none) -----------------------------
    def backed_up() -> Samples | None:
        got = scrape(leader)
        return got if value(got, "etcdmgr_backups_total", result="success") else None

    m = wait_for("a backup", backed_up, timeout=60)
    assert value(m, "etcdmgr_backups_total", result="failure") == 0
    assert value(m, "etcdmgr_decisions_total", action="TakeBackup") == 1
    assert value(m, "etcdmgr_backup_duration_seconds_count") == 1
    newest = value(m, "etcdmgr_backup_last_success_timestamp_seconds") or 0
    assert time.time() - 60 < newest <= time.time() + 1
    backup = c.ctl("list-backups").stdout.split()[-1]
    stored = c.root / "backups" / "test" / backup
    data = [stored / name for name in ("etcd.backup.gz", "etcd.v2.json.gz") if (stored / name).exists()]
    assert value(m, "etcdmgr_backup_size_bytes") == sum(p.stat().st_size for p in data)

    # --- etcd killed under a follower's daemon: not ready, still alive, restarted -------------
    follower = next(d for d in c.daemons if d is not leader)
    etcd_pid = int(json.loads((follower.data_dir / "etcd.pid").read_text())["pid"])
    os.kill(etcd_pid, signal.SIGKILL)
    status, body = wait_for(
        "/readyz to say 503", lambda: (r := get(follower, "/readyz"))[0] == 503 and r, 10, 0.05
    )
    assert body.splitlines()[0] in (
        "etcd is not running",
        f"etcd does not answer healthy at {follower.client_url}",
    )
    assert get(follower, "/healthz") == (200, "ok\n"), "its daemon is alive: no reason to restart it"
    wait_for("etcd restarted and ready", lambda: get(follower, "/readyz")[0] == 200, timeout=60)
    assert value(scrape(follower), "etcdmgr_etcd_restarts_total") == 1

    # --- a member lost: its daemon stopped ---------------------------------------------------
    lost = next(d for d in c.daemons if d not in (leader, follower))
    assert lost.stop() == 0
    wait_for("the leader to see a member unhealthy", lambda: members(leader) == (2, 1, 0), timeout=60)
    wait_for(
        "the peers to see the lost daemon",
        lambda: all(value(scrape(d), "etcdmgr_peers", state="unhealthy") == 1 for d in (leader, follower)),
        timeout=30,
    )

    # --- a restore: quarantined (not ready) on the two nodes, then ready again ----------------
    c.ctl("restore-backup", backup)
    seen_quarantined: set[int] = set()

    def restored() -> bool:
        for d in (leader, follower):
            status, body = get(d, "/readyz")
            if status == 503 and "quarantined" in body and value(scrape(d), "etcdmgr_quarantined") == 1:
                seen_quarantined.add(d.n)
        return value(scrape(leader), "etcdmgr_restores_total", result="success") == 1

    wait_for("the restore", restored, timeout=120, interval=0.05)
    wait_for(
        "both nodes ready",
        lambda: all(get(d, "/readyz")[0] == 200 for d in (leader, follower)),
        timeout=60,
    )
    assert seen_quarantined == {leader.n, follower.n}
    m = scrape(leader)
    assert value(m, "etcdmgr_restores_total", result="failure") == 0
    assert value(m, "etcdmgr_decisions_total", action="RestoreBackup") == 1
    assert value(m, "etcdmgr_etcd_member_count_desired") == 3
    wait_for("the restored cluster's members", lambda: members(leader) == (2, 0, 0), timeout=60)
    assert all(value(scrape(d), "etcdmgr_quarantined") == 0 for d in (leader, follower))


def test_a_control_cycle_stuck_on_the_store_is_no_liveness_failure(
    make_cluster: Callable[..., Cluster],
) -> None:
    """A hung store (a read that never returns, as on a dead NFS mount) stalls the leader's cycle:
    /healthz stays 200, so nothing restarts the daemon and its etcd; /readyz and the metrics say it."""
    if find_binaries(VERSION) is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    # No deadline cuts the hung read short while the test looks.
    stuck_flags = ["--store-timeout=5m", "--leader-stall-timeout=10m"]
    c = make_cluster(1, extra_args=[f"--etcd-manager-metrics-port={PORT}", *stuck_flags])
    c.configure(1, VERSION)
    c.start()
    c.wait_members(1)
    d = c[1]
    wait_for("a backup", lambda: "took backup" in d.log(), timeout=60)
    spec = c.root / "backups" / "test" / "control" / "etcd-cluster-spec"
    saved = spec.read_bytes()
    spec.unlink()
    os.mkfifo(spec)  # reading it blocks until someone writes: a hung store
    try:

        def stuck() -> float | None:
            running = value(scrape(d), "etcdmgr_control_cycle_running_seconds") or 0
            return running if running > 5 else None

        wait_for("a control cycle stuck for 5 s", stuck, timeout=60)
        assert get(d, "/healthz") == (200, "ok\n")
        status, body = get(d, "/readyz")
        assert status == 200 and re.fullmatch(r"ok\ncontrol loop: leading, cycle running for \d+s\n", body), (
            body
        )
        assert c.healthy(d), "etcd serves all along"
    finally:
        # Let the blocked reads finish (they read nothing), then put the spec back.
        with contextlib.suppress(OSError):  # ENXIO: no read was blocked
            os.close(os.open(spec, os.O_WRONLY | os.O_NONBLOCK))
        spec.unlink()
        spec.write_bytes(saved)


def test_a_metrics_port_in_use_stops_the_daemon_with_one_line(make_cluster: Callable[..., Cluster]) -> None:
    c = make_cluster(1, extra_args=[f"--etcd-manager-metrics-port={PORT}"])
    d = c[1]
    with socket.create_server((d.ip, PORT)):
        d.start()
        assert d.proc is not None and d.proc.wait(30) == 1
    errors = [line for line in d.log().splitlines() if " ERROR " in line or "Traceback" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"cannot serve metrics on {d.ip}:{PORT}: Address already in use"
    )
