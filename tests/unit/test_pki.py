from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.pki import (
    ALL_CAS,
    CLIENTS_CA,
    MANAGER_CA,
    PEERS_CA,
    PkiError,
    client_ssl_context,
    issue_leaf,
    issue_peer_tls_files,
    load_or_create_ca,
    needs_renewal,
    peer_id_from_cert,
    server_ssl_context,
)

DAY = timedelta(days=1)
PEER_ID = "a-B_c9-_xYz"


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_class(kind).value


def test_ca_is_created_once_and_loaded_after(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path, PEERS_CA, create=True)
    assert isinstance(ca.key, ec.EllipticCurvePrivateKey)
    assert stat.S_IMODE(ca.key_path.stat().st_mode) == 0o600
    bc = ext(ca.cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints) and bc.ca
    again = load_or_create_ca(tmp_path, PEERS_CA, create=True)
    assert again.cert == ca.cert and again.bundle == (ca.cert,)


def test_rsa_ca_on_request(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path, MANAGER_CA, create=True, rsa=True)
    assert isinstance(ca.key, rsa.RSAPrivateKey)
    cert_path, _ = issue_leaf(
        ca, tmp_path / "out", "x", "x", ["x"], [], server=True, client=False, duration=DAY
    )
    assert isinstance(load(cert_path).public_key(), rsa.RSAPublicKey)


def test_missing_or_incomplete_ca_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match="not found"):
        load_or_create_ca(tmp_path, CLIENTS_CA, create=False)
    ca = load_or_create_ca(tmp_path, CLIENTS_CA, create=True)
    ca.key_path.unlink()
    with pytest.raises(PkiError, match="incomplete"):
        load_or_create_ca(tmp_path, CLIENTS_CA, create=True)


def test_leaf_has_sans_usages_and_reuses_its_key(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path / "pki", PEERS_CA, create=True)
    out = tmp_path / "out"
    args = (ca, out, "me", "node-1", ["node-1.internal"], ["127.0.0.2", "127.0.0.1"])
    cert_path, key_path = issue_leaf(*args, server=True, client=True, duration=DAY)
    cert = load(cert_path)
    assert cn(cert) == "node-1"
    san = ext(cert, x509.SubjectAlternativeName)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["node-1.internal"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.2"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    bc = ext(cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints) and not bc.ca
    cert.verify_directly_issued_by(ca.cert)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    key_before = key_path.read_bytes()
    cert_path2, _ = issue_leaf(*args, server=False, client=True, duration=DAY)
    reissued = load(cert_path2)
    assert key_path.read_bytes() == key_before
    assert reissued.serial_number != cert.serial_number
    assert reissued.public_key() == cert.public_key()
    eku2 = ext(reissued, x509.ExtendedKeyUsage)
    assert isinstance(eku2, x509.ExtendedKeyUsage) and list(eku2) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_leaf_rejects_bad_input(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path, PEERS_CA, create=True)
    with pytest.raises(PkiError, match="not an IP"):
        issue_leaf(ca, tmp_path, "x", "x", [], ["nope"], server=True, client=False, duration=DAY)
    with pytest.raises(PkiError, match="neither"):
        issue_leaf(ca, tmp_path, "x", "x", [], [], server=False, client=False, duration=DAY)


def test_leaf_never_outlives_its_ca(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path, PEERS_CA, create=True)
    cert_path, _ = issue_leaf(ca, tmp_path, "x", "x", [], [], server=True, client=False, duration=DAY * 99999)
    assert load(cert_path).not_valid_after_utc == ca.cert.not_valid_after_utc


def test_needs_renewal(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path / "pki", PEERS_CA, create=True)
    now = datetime.now(UTC)
    cert_path, key_path = issue_leaf(
        ca, tmp_path, "x", "x", [], [], server=True, client=False, duration=timedelta(days=30), now=now
    )
    assert not needs_renewal(cert_path, now, ca=ca, key_path=key_path)
    assert not needs_renewal(cert_path, now + timedelta(days=19))
    assert needs_renewal(cert_path, now + timedelta(days=21))
    assert needs_renewal(cert_path, now + timedelta(days=31))
    assert needs_renewal(tmp_path / "missing.crt", now)
    garbage = tmp_path / "garbage.crt"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")
    assert needs_renewal(garbage, now)
    other_ca = load_or_create_ca(tmp_path / "other", PEERS_CA, create=True)
    assert needs_renewal(cert_path, now, ca=other_ca)
    _, other_key = issue_leaf(other_ca, tmp_path, "y", "y", [], [], server=True, client=False, duration=DAY)
    assert needs_renewal(cert_path, now, key_path=other_key)


def test_ca_file_with_several_certificates(tmp_path: Path) -> None:
    old = load_or_create_ca(tmp_path / "old", MANAGER_CA, create=True)
    new = load_or_create_ca(tmp_path / "new", MANAGER_CA, create=True)
    now = datetime.now(UTC)
    leaf_by_old, _ = issue_leaf(
        old, tmp_path, "leaf", "leaf", [], [], server=True, client=False, duration=DAY
    )

    # Rotation: the new CA's file also trusts the old certificate; the key is the new one.
    new.cert_path.write_bytes(new.cert_path.read_bytes() + old.cert_path.read_bytes())
    rotated = load_or_create_ca(tmp_path / "new", MANAGER_CA, create=False)
    assert rotated.bundle == (new.cert, old.cert)
    assert rotated.cert == new.cert
    assert not needs_renewal(leaf_by_old, now, ca=rotated)
    leaf_by_new, _ = issue_leaf(rotated, tmp_path, "n", "n", [], [], server=True, client=False, duration=DAY)
    load(leaf_by_new).verify_directly_issued_by(new.cert)
    # Once the old certificate is dropped from the bundle, its leaves must be reissued.
    assert needs_renewal(leaf_by_old, now, ca=new)

    # A key matching no certificate of the file is refused.
    (tmp_path / "new" / f"{MANAGER_CA}.key").write_bytes(old.key_path.read_bytes())
    new.cert_path.write_bytes(new.cert.public_bytes(Encoding.PEM))
    with pytest.raises(PkiError, match="matches the key"):
        load_or_create_ca(tmp_path / "new", MANAGER_CA, create=False)


def test_peer_certificates_name_the_peer(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path / "pki", MANAGER_CA, create=True)
    files = issue_peer_tls_files(ca, tmp_path / "me", PEER_ID, DAY)
    server, client = load(files.server_cert), load(files.client_cert)
    assert cn(server) == f"etcd-manager-server-{PEER_ID}"
    san = ext(server, x509.SubjectAlternativeName)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == [f"etcd-manager-server-{PEER_ID}"]
    assert cn(client) == f"etcd-manager-client-{PEER_ID}"

    assert peer_id_from_cert(server, kind="server") == PEER_ID
    assert peer_id_from_cert(server, kind="client") is None
    assert peer_id_from_cert(client, kind="client") == PEER_ID
    assert peer_id_from_cert(client.public_bytes(Encoding.DER)) == PEER_ID
    assert peer_id_from_cert(b"not a certificate") is None
    assert peer_id_from_cert(None) is None
    assert peer_id_from_cert(ca.cert) is None
    # Both contexts load what was issued.
    server_ssl_context(files)
    client_ssl_context(files)
    with pytest.raises(PkiError, match="is not a valid peer id"):
        issue_peer_tls_files(ca, tmp_path / "bad", "no/slash", DAY)


def test_a_certificate_naming_two_peers_names_none(tmp_path: Path) -> None:
    ca = load_or_create_ca(tmp_path, MANAGER_CA, create=True)
    names = ["etcd-manager-server-b"]
    path, _ = issue_leaf(ca, tmp_path, "x", "etcd-manager-server-a", names, [], True, False, DAY)
    assert peer_id_from_cert(load(path)) is None


def test_cli_init_creates_cas_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pki = tmp_path / "pki"
    assert pki_main(["init", "--pki-dir", str(pki)]) == 0
    before = {p.name: p.read_bytes() for p in pki.iterdir()}
    assert set(before) == {f"{n}.{e}" for n in ALL_CAS for e in ("crt", "key")}
    capsys.readouterr()
    assert pki_main(["init", f"--pki-dir={pki}", "--rsa"]) == 1
    assert "refusing to overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in pki.iterdir()} == before


def test_cli_init_rsa(tmp_path: Path) -> None:
    assert pki_main(["init", "--pki-dir", str(tmp_path), "--rsa"]) == 0
    assert isinstance(load_or_create_ca(tmp_path, PEERS_CA, create=False).key, rsa.RSAPrivateKey)


def test_cli_client_cert(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pki, out = tmp_path / "pki", tmp_path / "out"
    args = ["client-cert", "--pki-dir", str(pki), "--name", "operator", "--out", str(out)]
    assert pki_main(args) == 1
    assert "not found" in capsys.readouterr().err
    assert pki_main(["init", "--pki-dir", str(pki)]) == 0
    assert pki_main([*args, "--duration", "90d"]) == 0
    cert = load(out / "operator.crt")
    assert cn(cert) == "operator"
    eku = ext(cert, x509.ExtendedKeyUsage)
    assert isinstance(eku, x509.ExtendedKeyUsage) and list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=90, minutes=5)
    clients_ca = load_or_create_ca(pki, CLIENTS_CA, create=False)
    cert.verify_directly_issued_by(clients_ca.cert)
    assert (out / "ca.crt").read_bytes() == clients_ca.cert_path.read_bytes()
    assert stat.S_IMODE((out / "operator.key").stat().st_mode) == 0o600
    assert pki_main([*args, "--duration", "soon"]) == 2


def test_cli_help_and_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert pki_main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--pki-dir", "--rsa", "--name", "--out", "--duration", "init", "client-cert"):
        assert flag in out
    assert pki_main(["init"]) == 2
    assert pki_main(["frobnicate"]) == 2
