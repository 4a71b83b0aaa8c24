"""Certificates for etcd members and for the manager's own etcd client."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.pki import CLIENTS_CA, PEERS_CA, PkiError, load_or_create_ca
from etcdmgr.pki.etcd_tls import cert_hosts, issue_etcd_node_certs, manager_client_tls, needs_reissue
from etcdmgr.pki.keys import load_certs

DAY = timedelta(days=1)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
PEER_URLS = ["https://10.0.0.5:2380"]
CLIENT_URLS = ["https://10.0.0.5:4001", "https://etcd-a.internal:3994"]
ADDRESS = "10.0.0.5"


def init_pki(tmp_path: Path) -> Path:
    pki = tmp_path / "pki"
    assert pki_main(["init", f"--pki-dir={pki}"]) == 0
    return pki


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def issue(pki: Path, out: Path, *, duration: timedelta = DAY, now: datetime = NOW) -> None:
    issue_etcd_node_certs(pki, out, "m1", PEER_URLS, CLIENT_URLS, ADDRESS, duration, now=now)


def reissue_reason(
    pki: Path,
    out: Path,
    now: datetime = NOW,
    *,
    member_name: str = "m1",
    client_urls: list[str] = CLIENT_URLS,
    address: str = ADDRESS,
) -> str | None:
    return needs_reissue(pki, out, member_name, PEER_URLS, client_urls, address, now=now)


def sans(cert: x509.Certificate) -> tuple[set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set()
    return set(san.get_values_for_type(x509.DNSName)), {
        str(ip) for ip in san.get_values_for_type(x509.IPAddress)
    }


def usages(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_member_and_manager_certificates(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    tls = issue_etcd_node_certs(pki, out, "m1", PEER_URLS, CLIENT_URLS, ADDRESS, DAY, now=NOW)
    assert tls.peer.cert == out / "peers" / "me.crt" and tls.peer.ca == out / "peers" / "ca.crt"
    assert tls.client.cert == out / "clients" / "server.crt" and tls.client.ca == out / "clients" / "ca.crt"
    assert tls.manager.cert == out / "clients" / "etcd-manager-client.crt"
    peers_ca = load_or_create_ca(pki, PEERS_CA, create=False)
    clients_ca = load_or_create_ca(pki, CLIENTS_CA, create=False)

    both = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    names = ({"etcd-a.internal", "localhost"}, {"10.0.0.5", "127.0.0.1"})
    for path, ca in ((tls.peer.cert, peers_ca), (tls.client.cert, clients_ca)):
        cert = load(path)
        cert.verify_directly_issued_by(ca.cert)
        assert cn(cert) == "m1"
        assert sans(cert) == names
        assert usages(cert) == both
        assert cert.not_valid_after_utc == NOW + DAY

    assert tls.manager.cert is not None
    manager = load(tls.manager.cert)
    manager.verify_directly_issued_by(clients_ca.cert)
    assert cn(manager) == "etcd-manager"
    assert usages(manager) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    assert sans(manager) == (set(), set())
    assert load_certs(tls.peer.ca) == [peers_ca.cert]
    assert load_certs(tls.client.ca) == [clients_ca.cert]
    assert tls.peer.client_cert_auth and tls.client.client_cert_auth


def test_hosts_from_urls() -> None:
    dns, ips = cert_hosts(
        ["https://[fd00::1]:2380", "https://Node-A.example:2380"],
        ["https://0.0.0.0:4001", "https://10.0.0.5:4001", "https://node-a.example:4001"],
        "10.0.0.5",
    )
    assert dns == ["node-a.example", "localhost"]
    assert ips == [ipaddress.ip_address(a) for a in ("fd00::1", "10.0.0.5", "127.0.0.1")]


def test_keys_are_reused(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    issue(pki, out)
    keys = {p: p.read_bytes() for p in out.rglob("*.key")}
    certs = {p: p.read_bytes() for p in out.rglob("*.crt") if p.name != "ca.crt"}
    assert len(keys) == 3 and len(certs) == 3
    issue(pki, out, now=NOW + DAY / 2)
    assert {p: p.read_bytes() for p in out.rglob("*.key")} == keys
    assert all(p.read_bytes() != old for p, old in certs.items())


def test_missing_ca_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="not found"):
        issue(tmp_path / "empty", tmp_path / "node")


def test_reissue_when_a_third_of_the_lifetime_is_left(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    issue(pki, out, duration=timedelta(seconds=30))
    # The certificates are backdated a few minutes; that must not count as lifetime.
    assert reissue_reason(pki, out) is None
    assert reissue_reason(pki, out, NOW + timedelta(seconds=19)) is None
    assert "expiring" in (reissue_reason(pki, out, NOW + timedelta(seconds=21)) or "")
    assert "expiring" in (reissue_reason(pki, out, NOW + timedelta(seconds=31)) or "")


def test_reissue_when_names_change(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    issue(pki, out)
    assert reissue_reason(pki, out, address="10.0.0.5") is None  # already named by the URLs
    assert "other hosts" in (reissue_reason(pki, out, address="10.0.0.6") or "")
    quarantined = [*CLIENT_URLS, "https://etcd-b.internal:3994"]
    assert "other hosts" in (reissue_reason(pki, out, client_urls=quarantined) or "")
    assert "another member" in (reissue_reason(pki, out, member_name="m2") or "")


def test_reissue_when_files_are_missing_or_foreign(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    assert reissue_reason(pki, out) is not None
    issue(pki, out)
    (out / "clients" / "etcd-manager-client.key").unlink()
    assert "etcd-manager-client.crt" in (reissue_reason(pki, out) or "")
    issue(pki, out)
    other = init_pki(tmp_path / "other")
    assert "differs from the CA file" in (reissue_reason(other, out) or "")


def test_ca_rotation(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "node"
    new = init_pki(tmp_path / "new")
    issue(pki, out)
    old_peers = load_or_create_ca(pki, PEERS_CA, create=False)
    new_peers = load_or_create_ca(new, PEERS_CA, create=False)

    # Step 1: the CA file trusts the new certificate too; the old key still signs.
    old_peers.cert_path.write_bytes(old_peers.cert_path.read_bytes() + new_peers.cert_path.read_bytes())
    assert "differs from the CA file" in (reissue_reason(pki, out) or "")
    issue(pki, out)
    assert load_certs(out / "peers" / "ca.crt") == [old_peers.cert, new_peers.cert]
    assert reissue_reason(pki, out) is None

    # Step 2: the new key signs; leafs by the old certificate are due although still trusted.
    old_peers.key_path.write_bytes(new_peers.key_path.read_bytes())
    assert "not from the current etcd-peers-ca key" in (reissue_reason(pki, out) or "")
    issue(pki, out)
    load(out / "peers" / "me.crt").verify_directly_issued_by(new_peers.cert)
    assert reissue_reason(pki, out) is None


def test_manager_client_tls_issues_only_when_due(tmp_path: Path) -> None:
    pki, out = init_pki(tmp_path), tmp_path / "leader"
    tls = manager_client_tls(pki, out, DAY, now=NOW)
    assert tls.cert is not None and tls.key is not None
    first = tls.cert.read_bytes()
    assert load_certs(tls.ca) == [load_or_create_ca(pki, CLIENTS_CA, create=False).cert]
    assert manager_client_tls(pki, out, DAY, now=NOW + DAY / 2).cert == tls.cert
    assert tls.cert.read_bytes() == first
    manager_client_tls(pki, out, DAY, now=NOW + DAY * 0.7)
    assert tls.cert.read_bytes() != first
    assert load(tls.cert).not_valid_after_utc == NOW + DAY * 1.7
