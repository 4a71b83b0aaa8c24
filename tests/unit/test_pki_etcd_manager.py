"""CAs and keys in the forms etcd-manager loads, and CAs as kops writes them.

What etcd-manager expects, from its source (kubernetes-sigs/etcd-manager):
- cmd/etcd-manager/main.go: `LoadCA("etcd-manager-ca")`, `"etcd-peers-ca"`, `"etcd-clients-ca"`
  from --pki-dir; pkg/pki/fs.go LoadCA: `<name>.key` and `<name>.crt`.
- pkg/pki/fs.go loadPrivateKey: keyutil.ParsePrivateKeyPEM (the first block of type
  `RSA PRIVATE KEY`, `EC PRIVATE KEY` or `PRIVATE KEY` that parses), then RSA only.
- certutil.ParseCertsPEM: `CERTIFICATE` blocks without headers, at least one; LoadCA signs with
  the certificate whose public key is the key's. Leaves (pkg/etcd/pki.go: peers/me, clients/
  server, each with ca.crt) are read by ParseOneCertificate: exactly one certificate.
"""

from __future__ import annotations

import ssl
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from go_pki import go_load_ca, go_load_keypair, go_parse_certs, is_pkcs1, pem_blocks
from kops_pki import write_kops_pki

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.pki import (
    ALL_CAS,
    MANAGER_CA,
    PEERS_CA,
    client_ssl_context,
    issue_peer_tls_files,
    load_or_create_ca,
    peer_id_from_cert,
    server_ssl_context,
)
from etcdmgr.pki.etcd_tls import issue_etcd_node_certs

DAY = timedelta(days=1)


def test_pki_init_rsa_writes_the_cas_etcd_manager_loads(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    assert pki_main(["init", f"--pki-dir={pki}", "--rsa"]) == 0
    assert {p.name for p in pki.iterdir()} == {f"{n}.{e}" for n in ALL_CAS for e in ("crt", "key")}
    for name in ALL_CAS:
        primary = go_load_ca(pki, name)
        assert primary == load_or_create_ca(pki, name, create=False).cert
        assert is_pkcs1(pki / f"{name}.key"), "written as kops and etcd-manager write RSA keys"
        assert [kind for kind, _ in pem_blocks((pki / f"{name}.crt").read_bytes())] == [b"CERTIFICATE"]
        assert stat.S_IMODE((pki / f"{name}.key").stat().st_mode) == 0o600


def test_leaves_of_rsa_cas_are_keypairs_etcd_manager_reads_back(tmp_path: Path) -> None:
    # The member's certificates in <data dir>/pki/<token>, where etcd-manager looks after a rollback.
    pki, out = tmp_path / "pki", tmp_path / "data" / "pki" / "token"
    assert pki_main(["init", f"--pki-dir={pki}", "--rsa"]) == 0
    issue_etcd_node_certs(
        pki, out, "etcd-a", ["https://10.0.0.1:2380"], ["https://10.0.0.1:4001"], "10.0.0.1", DAY
    )
    go_load_keypair(out / "peers", "me")
    go_load_keypair(out / "clients", "server")
    for folder in ("peers", "clients"):
        go_parse_certs(out / folder / "ca.crt")
    assert is_pkcs1(out / "peers" / "me.key") and is_pkcs1(out / "clients" / "server.key")


def test_the_default_ecdsa_cas_are_ones_etcd_manager_refuses(tmp_path: Path) -> None:
    assert pki_main(["init", f"--pki-dir={tmp_path / 'pki'}"]) == 0
    with pytest.raises(ValueError, match="unexpected private key type"):
        go_load_ca(tmp_path / "pki", PEERS_CA)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> x509.Certificate:
    """A TLS handshake through memory buffers; the certificate the server presented."""
    c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(c_in, c_out, server_side=False)
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {"c": False, "s": False}
    for _ in range(10):
        for name, side in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            break
    assert all(done.values()), "handshake did not finish"
    raw = c.getpeercert(binary_form=True)
    assert raw is not None
    return x509.load_der_x509_certificate(raw)


def test_a_kops_pki_folder_serves_the_peer_api_over_tls(tmp_path: Path) -> None:
    pki = tmp_path / "etcd-manager-main"
    write_kops_pki(pki)
    ca = load_or_create_ca(pki, MANAGER_CA, create=False)
    assert len(ca.bundle) == 2 and ca.cert == ca.bundle[1], "signs with the primary, the newer"
    a = issue_peer_tls_files(ca, tmp_path / "a", "etcd-a", DAY)
    b = issue_peer_tls_files(ca, tmp_path / "b", "etcd-b", DAY)
    # OpenSSL finds the issuer by the key id kops' CA carries (not the SHA-1 etcdmgr derives).
    presented = handshake(server_ssl_context(a), client_ssl_context(b))
    assert peer_id_from_cert(presented) == "etcd-a"


def test_a_kops_pki_folder_issues_etcd_certificates_that_verify(tmp_path: Path) -> None:
    pki, out = tmp_path / "etcd-manager-main", tmp_path / "token"
    write_kops_pki(pki)
    tls = issue_etcd_node_certs(
        pki, out, "etcd-a", ["https://127.0.0.1:2380"], ["https://127.0.0.1:4001"], "127.0.0.1", DAY
    )
    for files in (tls.peer, tls.client):
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(files.cert, files.key)
        client = ssl.create_default_context(cafile=str(files.ca))
        client.check_hostname = False
        handshake(server, client)
        assert len(go_parse_certs(files.ca)) == 2, "the bundle trusts the retired CA too"
