"""The peer API follows a CA rotation on disk: the three phases as ManagerCerts.check sees them,
and handshakes between the contexts of the moment (in memory, no sockets)."""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import pytest
from cryptography import x509

from etcdmgr.cli.pki_cmd import main as pki_main
from etcdmgr.daemon.config import DaemonConfig
from etcdmgr.daemon.manager_certs import ManagerCerts
from etcdmgr.node.layout import DataLayout
from etcdmgr.pki import ALL_CAS, MANAGER_CA, PkiError
from etcdmgr.pki.reload import describe, fingerprint, stamps

PEER_A, PEER_B = "peer-a", "peer-b"


def init_pki(path: Path) -> Path:
    assert pki_main(["init", f"--pki-dir={path}"]) == 0
    return path


def manager(tmp_path: Path, pki: Path, peer_id: str) -> ManagerCerts:
    config = DaemonConfig(
        cluster_name="test",
        address="127.0.0.1",
        etcd_address="127.0.0.1",
        peer_urls=("https://127.0.0.1:2380",),
        client_urls=("https://127.0.0.1:4001",),
        quarantine_client_urls=("https://127.0.0.1:8001",),
        backup_store=f"file://{tmp_path}/store",
        discovery_store=None,
        data_dir=tmp_path / peer_id,
        pki_dir=pki,
    )
    return ManagerCerts(config, DataLayout(config.data_dir), peer_id)


def handshake(server: ssl.SSLContext, client: ssl.SSLContext) -> bool:
    """Whether a client with `client` and a server with `server` complete a mutual handshake."""
    s_in, s_out, c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
    s = server.wrap_bio(s_in, s_out, server_side=True)
    c = client.wrap_bio(c_in, c_out, server_side=False)
    done = {"s": False, "c": False}
    for _ in range(10):
        for name, end in (("c", c), ("s", s)):
            if done[name]:
                continue
            try:
                end.do_handshake()
                done[name] = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError:
                return False
        s_in.write(c_out.read())
        c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3 refuses a client certificate after the client is done: read once more.
            try:
                c.write(b"x")
                s_in.write(c_out.read())
                s.read(1)
            except ssl.SSLError:
                return False
            return True
    return False


def check(m: ManagerCerts) -> str | None:
    contexts, changes = m.check()
    m.contexts = contexts
    return changes


def ca_cert(pki: Path, name: str = MANAGER_CA) -> x509.Certificate:
    return x509.load_pem_x509_certificate((pki / f"{name}.crt").read_bytes())


def test_the_three_phases_of_a_ca_rotation(tmp_path: Path) -> None:
    old = init_pki(tmp_path / "old")
    new = init_pki(tmp_path / "new")
    pki_a, pki_b = shutil.copytree(old, tmp_path / "pki-a"), shutil.copytree(old, tmp_path / "pki-b")
    a, b = manager(tmp_path, pki_a, PEER_A), manager(tmp_path, pki_b, PEER_B)
    old_ca, new_ca = ca_cert(old), ca_cert(new)
    # A daemon that only ever had the old CA, and one made with only the new one.
    old_only = manager(tmp_path, shutil.copytree(old, tmp_path / "pki-old"), "peer-old")
    new_only = manager(tmp_path, shutil.copytree(new, tmp_path / "pki-new"), "peer-new")

    def client_of(m: ManagerCerts) -> ssl.SSLContext:
        src = m.client_tls()
        assert src is not None and not isinstance(src, ssl.SSLContext)
        return src()

    def server_of(m: ManagerCerts) -> ssl.SSLContext:
        src = m.server_tls()
        assert src is not None and not isinstance(src, ssl.SSLContext)
        return src()

    assert handshake(server_of(a), client_of(b))
    assert not handshake(server_of(a), client_of(new_only))
    assert check(a) is None  # nothing changed: nothing reloaded

    # Phase 1: every CA file holds the old and the new certificate; the old key still signs.
    for pki in (pki_a, pki_b):
        for name in ALL_CAS:
            both = (old / f"{name}.crt").read_bytes() + (new / f"{name}.crt").read_bytes()
            (pki / f"{name}.crt").write_bytes(both)
    changes = check(a)
    assert changes is not None and changes.startswith("trusts ")
    assert f"{fingerprint(old_ca)}" in changes and fingerprint(new_ca) in changes
    assert "serves" not in changes  # the old key still signs: no reissue
    check(b)
    assert len(server_of(a).get_ca_certs()) == len(client_of(a).get_ca_certs()) == 2
    # A daemon of the new CA alone still refuses a and b: their certificates are the old key's.
    assert not handshake(server_of(a), client_of(new_only))
    assert handshake(server_of(a), client_of(b))

    # Phase 2: the new key signs; leaf certificates move to it.
    for pki in (pki_a, pki_b):
        for name in ALL_CAS:
            shutil.copyfile(new / f"{name}.key", pki / f"{name}.key")
    changes = check(a)
    assert changes is not None and "reissued the peer API certificates" in changes
    assert f"from {fingerprint(new_ca)}" in changes and "trusts" not in changes
    server_cert = x509.load_pem_x509_certificate(a.peer_files.server_cert.read_bytes())  # type: ignore[union-attr]
    server_cert.verify_directly_issued_by(new_ca)
    assert handshake(server_of(a), client_of(b)), "a on the new key, b still on the old: both trusted"
    check(b)
    assert handshake(server_of(a), client_of(b)) and handshake(server_of(new_only), client_of(a))

    # Phase 3: the old certificate leaves the CA files.
    for pki in (pki_a, pki_b):
        for name in ALL_CAS:
            shutil.copyfile(new / f"{name}.crt", pki / f"{name}.crt")
    changes = check(a)
    assert changes is not None and changes.startswith(f"trusts {describe(new_ca)} (was ")
    check(b)
    assert handshake(server_of(a), client_of(b))
    assert handshake(server_of(a), client_of(new_only)) and handshake(server_of(new_only), client_of(a))
    assert not handshake(server_of(a), client_of(old_only)), "the old CA is refused after phase 3"
    assert not handshake(server_of(old_only), client_of(a))


def test_a_ca_file_caught_half_written_keeps_the_old_contexts(tmp_path: Path) -> None:
    pki = init_pki(tmp_path / "pki")
    other = init_pki(tmp_path / "other")
    m = manager(tmp_path, pki, PEER_A)
    before = m.contexts
    ca = pki / f"{MANAGER_CA}.crt"
    whole, added = ca.read_bytes(), (other / f"{MANAGER_CA}.crt").read_bytes()
    # Half appended: the incomplete certificate is not read yet, nothing changed.
    ca.write_bytes(whole + added[: len(added) // 2])
    assert check(m) is None and m.contexts is before
    # Emptied, as an editor may leave it for a moment: refused, the old contexts stay.
    ca.write_bytes(b"")
    with pytest.raises(PkiError, match="cannot read certificates"):
        m.check()
    assert m.contexts is before
    ca.write_bytes(whole + added)
    assert (check(m) or "").startswith("trusts ")


def test_stamps_change_when_a_file_is_appended_to_or_replaced(tmp_path: Path) -> None:
    f = tmp_path / "ca.crt"
    f.write_bytes(b"one")
    first = stamps([f, tmp_path / "missing"])
    assert first[1] is None and stamps([f, tmp_path / "missing"]) == first
    with f.open("ab") as out:
        out.write(b"two")
    second = stamps([f])
    assert second != first[:1]
    (tmp_path / "other").write_bytes(b"onetwo")
    (tmp_path / "other").replace(f)
    assert stamps([f]) != second
