"""etcd-manager hosts taken over in place, and handed back.

Each host is built as etcd-manager leaves it: kops' pki folder (RSA CAs, rotated once), `myid`,
the `state` file encoded by protoc (tests/fixtures/etcd_manager), the member's data in
data/<token> and its certificates in pki/<token>, and the store's spec and created marker.
etcdmgr starts with the same flags and data dirs: the members serve again with their ids and
keys, no new cluster and no restore, and a state change is written as etcd-manager would write
it (the bytes protoc gives for the changed state). Going back: etcd as etcd-manager starts it,
from that state and data, holds every key.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from go_pki import go_load_ca, go_load_keypair
from harness import CLIENT_PORT, PEER_PORT, QUARANTINE_PORT, Cluster, wait_for
from kops_pki import write_kops_pki

from etcdmgr.etcd.versions import EtcdBinaries, find_binaries
from etcdmgr.pki.etcd_tls import issue_etcd_node_certs

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "etcd_manager"
NAMES = ("etcd-a", "etcd-b", "etcd-c")


def binaries_or_skip(version: str) -> EtcdBinaries:
    binaries = find_binaries(version)
    if binaries is None:
        pytest.skip(f"etcd {version} is not installed")
    return binaries


@dataclass(frozen=True)
class Host:
    """One etcd-manager host of the fixture: its member name, address and data dir."""

    name: str
    ip: str
    data_dir: Path

    @property
    def client(self) -> str:
        return f"https://{self.ip}:{CLIENT_PORT}"

    @property
    def peer(self) -> str:
        return f"https://{self.ip}:{PEER_PORT}"


def hosts_of(cluster: Cluster) -> list[Host]:
    return [Host(NAMES[d.n - 1], d.ip, d.data_dir) for d in cluster.daemons]


def etcdctl(binaries: EtcdBinaries, cluster: Cluster, host: Host, *args: str) -> str:
    result = subprocess.run(
        [str(binaries.etcdctl), f"--endpoints={host.client}", *cluster.etcdctl_tls(), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "ETCDCTL_API": "3"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def member_ids(binaries: EtcdBinaries, cluster: Cluster, host: Host) -> list[str]:
    members = json.loads(etcdctl(binaries, cluster, host, "member", "list", "-w", "json"))["members"]
    return sorted(f"{m['ID']:x}" for m in members)


@contextmanager
def etcd_as_etcd_manager_runs_it(
    binaries: EtcdBinaries, hosts: list[Host], token: str, state: str, log: Path
) -> Iterator[None]:
    """The members' etcds as etcd-manager's etcdprocess.go starts them from the state: name,
    token and data dir, the certificates in pki/<token>, served on the client URLs."""
    initial = ",".join(f"{h.name}={h.peer}" for h in hosts)
    with ExitStack() as stack, log.open("ab") as out:
        for h in hosts:
            pki = h.data_dir / "pki" / token
            args = [
                str(binaries.etcd),
                f"--name={h.name}",
                f"--data-dir={h.data_dir / 'data' / token}",
                f"--initial-cluster={initial}",
                f"--initial-cluster-token={token}",
                f"--initial-cluster-state={state}",
                f"--listen-peer-urls={h.peer}",
                f"--initial-advertise-peer-urls={h.peer}",
                f"--listen-client-urls={h.client}",
                f"--advertise-client-urls={h.client}",
                f"--cert-file={pki / 'clients' / 'server.crt'}",
                f"--key-file={pki / 'clients' / 'server.key'}",
                f"--trusted-ca-file={pki / 'clients' / 'ca.crt'}",
                "--client-cert-auth",
                f"--peer-cert-file={pki / 'peers' / 'me.crt'}",
                f"--peer-key-file={pki / 'peers' / 'me.key'}",
                f"--peer-trusted-ca-file={pki / 'peers' / 'ca.crt'}",
                "--peer-client-cert-auth",
            ]
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
        yield


def etcd_manager_hosts(cluster: Cluster, binaries: EtcdBinaries, token: str, state_file: str) -> list[str]:
    """Build the hosts etcd-manager leaves, one key written; the members' ids (hex)."""
    hosts = hosts_of(cluster)
    for h in hosts:
        h.data_dir.mkdir(parents=True)
        (h.data_dir / "myid").write_bytes(h.name.encode())  # as PersistentPeerId: no newline
        issue_etcd_node_certs(
            cluster.pki_dir,
            h.data_dir / "pki" / token,
            h.name,
            [h.peer],
            [h.client, f"https://{h.ip}:{QUARANTINE_PORT}"],
            h.ip,
            timedelta(days=730),
        )
    with etcd_as_etcd_manager_runs_it(binaries, hosts, token, "new", cluster.root / "etcd-before.log"):
        for h in hosts:
            wait_for(
                f"{h.name} under etcd-manager",
                lambda h=h: etcdctl(binaries, cluster, h, "endpoint", "health"),
                60,
            )
        etcdctl(binaries, cluster, hosts[0], "put", "/registry/before", "written under etcd-manager")
        ids = member_ids(binaries, cluster, hosts[0])
    for h in hosts:
        state = h.data_dir / "state"
        state.write_bytes((FIXTURES / f"{state_file}.pb").read_bytes())
        state.chmod(0o600)
    control = cluster.root / "backups" / "test" / "control"
    cluster.configure(len(hosts), binaries.version)
    (control / "etcd-cluster-created").write_text(json.dumps({"timestamp": time.time_ns()}))
    return ids


def check_taken_over(cluster: Cluster, hosts: list[Host], token: str) -> None:
    for h, d in zip(hosts, cluster.daemons, strict=True):
        log = d.log()
        assert "the state file is etcd-manager's (protobuf) and stays so" in log
        for decision in ("CreateCluster", "MarkCreated", "RestoreBackup", "AddMember", "RemoveMember"):
            assert f"decision: {decision}" not in log, "the members were adopted as they were"
        assert not any((h.data_dir / "data-trashcan").glob("*")), "the member's data never left data/"
        assert sorted(p.name for p in (h.data_dir / "data").iterdir()) == [token]


def check_etcd_manager_can_read(pki: Path, hosts: list[Host], token: str, state_file: str) -> None:
    """What etcd-manager reads at start, in its forms."""
    for ca in ("etcd-manager-ca", "etcd-peers-ca", "etcd-clients-ca"):
        go_load_ca(pki, ca)
    for h in hosts:
        assert (h.data_dir / "state").read_bytes() == (FIXTURES / f"{state_file}.pb").read_bytes()
        assert (h.data_dir / "myid").read_bytes() == h.name.encode()
        go_load_keypair(h.data_dir / "pki" / token / "peers", "me")
        go_load_keypair(h.data_dir / "pki" / token / "clients", "server")


def kops_cluster(
    make_cluster: Callable[..., Cluster], tmp_path: Path, size: int, block: str
) -> tuple[Cluster, Path]:
    pki = tmp_path / "etcd-manager-main"
    write_kops_pki(pki)
    # The fixtures' own addresses, outside the blocks tests/harness.py hands out.
    return make_cluster(size, tls=True, made_pki_dir=pki, block=block), pki


def test_a_quarantined_etcd_manager_host_is_taken_over_and_handed_back(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    binaries = binaries_or_skip("3.5.30")
    token = "takeover-token"
    cluster, pki = kops_cluster(make_cluster, tmp_path, 1, "127.250.13")
    ids = etcd_manager_hosts(cluster, binaries, token, "takeover-quarantined")
    (host,) = hosts_of(cluster)

    cluster.start()
    # The member etcd-manager left quarantined (mid-restore) serves on its client URL again.
    cluster.wait_members(1, timeout=90)
    assert member_ids(binaries, cluster, host) == ids
    assert cluster.get3("/registry/before", 1) == "written under etcd-manager"
    etcdctl(binaries, cluster, host, "put", "/registry/during", "written under etcdmgr")
    lifted = (FIXTURES / "takeover-lifted.pb").read_bytes()
    wait_for("the lifted state written back", lambda: (host.data_dir / "state").read_bytes() == lifted, 30)
    check_taken_over(cluster, [host], token)

    # Back to etcd-manager: a swap of binaries.
    assert cluster[1].stop() == 0
    check_etcd_manager_can_read(pki, [host], token, "takeover-lifted")
    with etcd_as_etcd_manager_runs_it(binaries, [host], token, "existing", tmp_path / "etcd-after.log"):
        wait_for(
            "the member under etcd-manager again",
            lambda: etcdctl(binaries, cluster, host, "endpoint", "health"),
            30,
        )
        assert member_ids(binaries, cluster, host) == ids
        for key, value in (("before", "written under etcd-manager"), ("during", "written under etcdmgr")):
            assert (
                etcdctl(binaries, cluster, host, "get", f"/registry/{key}", "--print-value-only").strip()
                == value
            )


def test_three_etcd_manager_hosts_are_taken_over_together_upgraded_and_handed_back(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    old, new = binaries_or_skip("3.5.16"), binaries_or_skip("3.5.30")
    token = "takeover-three-token"
    cluster, pki = kops_cluster(make_cluster, tmp_path, 3, "127.250.14")
    ids = etcd_manager_hosts(cluster, old, token, "takeover-three")
    hosts = hosts_of(cluster)

    cluster.start()
    cluster.wait_members(3, timeout=120)
    assert member_ids(new, cluster, hosts[2]) == ids
    assert cluster.get3("/registry/before", 3) == "written under etcd-manager"
    check_taken_over(cluster, hosts, token)
    for h in hosts:  # nothing changed: not a byte rewritten
        assert (h.data_dir / "state").read_bytes() == (FIXTURES / "takeover-three.pb").read_bytes()

    # The first change under etcdmgr, a patch release in place, is written in etcd-manager's form.
    cluster.configure(3, "3.5.30")
    upgraded = (FIXTURES / "takeover-three-upgraded.pb").read_bytes()
    wait_for(
        "every state upgraded",
        lambda: all((h.data_dir / "state").read_bytes() == upgraded for h in hosts),
        timeout=180,
    )
    cluster.wait_members(3, timeout=120)
    etcdctl(new, cluster, hosts[0], "put", "/registry/during", "written under etcdmgr")

    cluster.stop_all()
    check_etcd_manager_can_read(pki, hosts, token, "takeover-three-upgraded")
    with etcd_as_etcd_manager_runs_it(new, hosts, token, "existing", tmp_path / "etcd-after.log"):
        for h in hosts:
            wait_for(
                f"{h.name} under etcd-manager again",
                lambda h=h: etcdctl(new, cluster, h, "endpoint", "health"),
                60,
            )
        assert member_ids(new, cluster, hosts[1]) == ids
        for key, value in (("before", "written under etcd-manager"), ("during", "written under etcdmgr")):
            got = etcdctl(
                new, cluster, hosts[1], "get", f"/registry/{key}", "--print-value-only", "--consistency=l"
            )
            assert got.strip() == value
