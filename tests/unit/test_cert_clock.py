"""A certificate that is not valid yet (this host's clock went back after it was issued) is due
for reissue: peers on the right time would refuse it until its not-before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.pki import MANAGER_CA, PEERS_CA, issue_peer_tls_files, load_or_create_ca, needs_renewal
from etcdmgr.pki.etcd_tls import issue_etcd_node_certs, manager_client_tls, needs_reissue
from etcdmgr.pki.leaf import issue_leaf, renewal_reason

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)
YEAR = timedelta(days=365)


def init_pki(tmp_path: Path) -> Path:
    pki = tmp_path / "pki"
    assert pki_main(["init", f"--pki-dir={pki}"]) == 0
    return pki


def test_a_leaf_issued_while_the_clock_was_a_day_ahead_is_due_once_it_is_right(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path / "pki", PEERS_CA, create=True)
    cert, key = issue_leaf(
        ca, tmp_path, "x", "x", [], [], server=True, client=False, duration=YEAR, now=NOW + DAY
    )

    reason = renewal_reason(cert, NOW, ca=ca, key_path=key)
    assert reason is not None and "the clock went back" in reason and "2030-01-01T23:55:00Z" in reason
    assert needs_renewal(cert, NOW)
    # Backdated a few minutes at issue, so a clock that steps back less than that changes nothing.
    assert not needs_renewal(cert, NOW + DAY - timedelta(minutes=4), ca=ca, key_path=key)


def test_etcd_member_and_manager_certificates_from_the_future_are_reissued(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    urls = ["https://10.0.0.5:2380"]
    issue_etcd_node_certs(pki, out, "m1", urls, ["https://10.0.0.5:4001"], "10.0.0.5", YEAR, now=NOW + DAY)

    reason = needs_reissue(pki, out, "m1", urls, ["https://10.0.0.5:4001"], "10.0.0.5", now=NOW)
    assert reason is not None and "the clock went back" in reason
    assert needs_reissue(pki, out, "m1", urls, ["https://10.0.0.5:4001"], "10.0.0.5", now=NOW + DAY) is None

    # The leader's own etcd client certificate is issued again when it is not valid yet.
    manager = tmp_path / "leader"
    first = manager_client_tls(pki, manager, YEAR, now=NOW + DAY).cert
    assert first is not None
    before = first.read_bytes()
    assert (
        manager_client_tls(pki, manager, YEAR, now=NOW + DAY).cert == first and first.read_bytes() == before
    )
    manager_client_tls(pki, manager, YEAR, now=NOW)
    assert first.read_bytes() != before


def test_peer_api_certificates_from_the_future_are_due(tmp_path: Path) -> None:
    pki = init_pki(tmp_path)
    ca = load_or_create_ca(pki, MANAGER_CA, create=False)
    files = issue_peer_tls_files(ca, tmp_path / "manager", "m1", YEAR, now=NOW + DAY)
    assert needs_renewal(files.server_cert, NOW, ca=ca) and needs_renewal(files.client_cert, NOW, ca=ca)
    assert not needs_renewal(files.server_cert, NOW + DAY, ca=ca)
