"""An etcd-manager host taken over in place, and handed back.

The host is built as etcd-manager leaves it: kops' pki folder (RSA CAs, rotated once), `myid`,
the `state` file encoded by protoc (tests/fixtures/etcd_manager), the member's data in
data/<token> and its certificates in pki/<token>, and the store's spec and created marker. The
member ran quarantined when etcd-manager stopped. etcdmgr starts with the same flags and data
dir: the member serves again with its id and keys, no new cluster and no restore, and its state
file is what etcd-manager would have written (the bytes protoc gives for the lifted state).
Going back: etcd-manager's etcd starts from that state and data and holds every key.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from go_pki import go_load_ca, go_load_keypair
from harness import CLIENT_PORT, PEER_PORT, Cluster, wait_for
from kops_pki import write_kops_pki

from etcdmgr.etcd.versions import EtcdBinaries, find_binaries
from etcdmgr.pki.etcd_tls import issue_etcd_node_certs

pytestmark = [pytest.mark.etcd, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "etcd_manager"
# The fixture's own addresses: outside the blocks tests/harness.py hands out.
BLOCK = "127.250.13"
IP = f"{BLOCK}.1"
NAME, TOKEN, VERSION = "etcd-a", "takeover-token", "3.5.30"


def etcdctl(binaries: EtcdBinaries, cluster: Cluster, *args: str) -> str:
    result = subprocess.run(
        [str(binaries.etcdctl), f"--endpoints=https://{IP}:{CLIENT_PORT}", *cluster.etcdctl_tls(), *args],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "ETCDCTL_API": "3"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def member_ids(binaries: EtcdBinaries, cluster: Cluster) -> list[str]:
    members = json.loads(etcdctl(binaries, cluster, "member", "list", "-w", "json"))["members"]
    return [f"{m['ID']:x}" for m in members]


@contextmanager
def etcd_as_etcd_manager_runs_it(
    binaries: EtcdBinaries, data_dir: Path, log: Path, state: str
) -> Iterator[None]:
    """The member's etcd as etcd-manager's etcdprocess.go starts it from the state: its name,
    token and data dir, the certificates in pki/<token>, the client URL the state allows."""
    pki = data_dir / "pki" / TOKEN
    peer, client = f"https://{IP}:{PEER_PORT}", f"https://{IP}:{CLIENT_PORT}"
    args = [
        str(binaries.etcd),
        f"--name={NAME}",
        f"--data-dir={data_dir / 'data' / TOKEN}",
        f"--initial-cluster={NAME}={peer}",
        f"--initial-cluster-token={TOKEN}",
        f"--initial-cluster-state={state}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--cert-file={pki / 'clients' / 'server.crt'}",
        f"--key-file={pki / 'clients' / 'server.key'}",
        f"--trusted-ca-file={pki / 'clients' / 'ca.crt'}",
        "--client-cert-auth",
        f"--peer-cert-file={pki / 'peers' / 'me.crt'}",
        f"--peer-key-file={pki / 'peers' / 'me.key'}",
        f"--peer-trusted-ca-file={pki / 'peers' / 'ca.crt'}",
        "--peer-client-cert-auth",
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def etcd_manager_host(cluster: Cluster, binaries: EtcdBinaries) -> str:
    """Build the host etcd-manager leaves; the member's id (hex) and one key written."""
    d = cluster[1].data_dir
    d.mkdir(parents=True)
    (d / "myid").write_bytes(NAME.encode())  # as PersistentPeerId writes it: no newline
    issue_etcd_node_certs(
        cluster.pki_dir,
        d / "pki" / TOKEN,
        NAME,
        [f"https://{IP}:{PEER_PORT}"],
        [f"https://{IP}:{CLIENT_PORT}", f"https://{IP}:8001"],
        IP,
        timedelta(days=730),
    )
    with etcd_as_etcd_manager_runs_it(binaries, d, cluster.root / "etcd-before.log", "new"):
        wait_for("etcd-manager's member", lambda: etcdctl(binaries, cluster, "endpoint", "health"), 30)
        etcdctl(binaries, cluster, "put", "/registry/before", "written under etcd-manager")
        (member_id,) = member_ids(binaries, cluster)
    state = d / "state"
    state.write_bytes((FIXTURES / "takeover-quarantined.pb").read_bytes())
    state.chmod(0o600)
    cluster.configure(1, VERSION)
    control = cluster.root / "backups" / "test" / "control"
    (control / "etcd-cluster-created").write_text(json.dumps({"timestamp": time.time_ns()}))
    return member_id


def test_an_etcd_manager_host_is_taken_over_in_place_and_handed_back(
    make_cluster: Callable[..., Cluster], tmp_path: Path
) -> None:
    binaries = find_binaries(VERSION)
    if binaries is None:
        pytest.skip(f"etcd {VERSION} is not installed")
    pki = tmp_path / "etcd-manager-main"
    write_kops_pki(pki)
    cluster = make_cluster(1, tls=True, made_pki_dir=pki, block=BLOCK)
    member_id = etcd_manager_host(cluster, binaries)
    d = cluster[1].data_dir

    cluster.start()
    # Quarantine lifted: the member serves on its client URL again, as itself.
    cluster.wait_members(1, timeout=90)
    assert member_ids(binaries, cluster) == [member_id]
    assert cluster.get3("/registry/before", 1) == "written under etcd-manager"
    etcdctl(binaries, cluster, "put", "/registry/during", "written under etcdmgr")
    lifted = (FIXTURES / "takeover-lifted.pb").read_bytes()
    wait_for("the lifted state written back", lambda: (d / "state").read_bytes() == lifted, 30)
    log = cluster[1].log()
    assert "the state file is etcd-manager's (protobuf) and stays so" in log
    assert "restor" not in log.lower() and "creating new cluster" not in log.lower()
    assert not any((d / "data-trashcan").glob("*")), "the member's data never left data/"
    assert sorted(p.name for p in (d / "data").iterdir()) == [TOKEN]

    # Back to etcd-manager: a swap of binaries. It finds what it reads, in its own forms.
    assert cluster[1].stop() == 0
    assert (d / "state").read_bytes() == lifted
    assert (d / "myid").read_bytes() == NAME.encode()
    for ca in ("etcd-manager-ca", "etcd-peers-ca", "etcd-clients-ca"):
        go_load_ca(pki, ca)
    go_load_keypair(d / "pki" / TOKEN / "peers", "me")
    go_load_keypair(d / "pki" / TOKEN / "clients", "server")
    with etcd_as_etcd_manager_runs_it(binaries, d, cluster.root / "etcd-after.log", "existing"):
        wait_for(
            "the member under etcd-manager again",
            lambda: etcdctl(binaries, cluster, "endpoint", "health"),
            30,
        )
        assert member_ids(binaries, cluster) == [member_id]
        for key, value in (("before", "written under etcd-manager"), ("during", "written under etcdmgr")):
            assert (
                etcdctl(binaries, cluster, "get", f"/registry/{key}", "--print-value-only").strip() == value
            )
