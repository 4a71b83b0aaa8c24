"""Certificate authorities kept as `<pki dir>/<name>.crt` and `<name>.key`.

The .crt file may hold several certificates so that a CA can be rotated: every one of them is
trusted, and new certificates are signed with the one that matches the key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import NameOID

from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.keys import (
    PrivateKey,
    generate_key,
    load_certs,
    load_key,
    same_public_key,
    write_certs,
    write_key,
)

MANAGER_CA = "etcd-manager-ca"
PEERS_CA = "etcd-peers-ca"
CLIENTS_CA = "etcd-clients-ca"
ALL_CAS = (MANAGER_CA, PEERS_CA, CLIENTS_CA)

CA_DURATION = timedelta(days=10 * 365)
# Backdating absorbs clock skew between the host that issues and the host that verifies.
BACKDATE = timedelta(minutes=5)


@dataclass(frozen=True)
class CA:
    name: str
    cert_path: Path
    key_path: Path
    cert: x509.Certificate
    key: PrivateKey
    bundle: tuple[x509.Certificate, ...]

    @property
    def uses_rsa(self) -> bool:
        return isinstance(self.key, RSAPrivateKey)


def ca_paths(pki_dir: Path, name: str) -> tuple[Path, Path]:
    return pki_dir / f"{name}.crt", pki_dir / f"{name}.key"


def ca_exists(pki_dir: Path, name: str) -> bool:
    return any(p.exists() for p in ca_paths(pki_dir, name))


def load_or_create_ca(pki_dir: Path, name: str, *, create: bool, rsa: bool = False) -> CA:
    """Load the CA `name` from pki_dir; when both files are absent and create is set, make it."""
    cert_path, key_path = ca_paths(pki_dir, name)
    have_cert, have_key = cert_path.exists(), key_path.exists()
    if not have_cert and not have_key:
        if not create:
            raise PkiError(f"CA {name} not found: {cert_path} and {key_path} are missing")
        return _create_ca(pki_dir, name, rsa)
    if not (have_cert and have_key):
        present, missing = (cert_path, key_path) if have_cert else (key_path, cert_path)
        raise PkiError(f"CA {name} is incomplete: {present} exists but {missing} is missing")
    return _load_ca(name, cert_path, key_path)


def _load_ca(name: str, cert_path: Path, key_path: Path) -> CA:
    bundle = load_certs(cert_path)
    key = load_key(key_path)
    matching = [c for c in bundle if same_public_key(c, key)]
    if not matching:
        raise PkiError(f"CA {name}: no certificate in {cert_path} matches the key {key_path}")
    # A CA certificate renewed with the same key appears twice: sign with the longest-lived one.
    signer = max(matching, key=lambda c: c.not_valid_after_utc)
    return CA(name, cert_path, key_path, signer, key, tuple(bundle))


def _create_ca(pki_dir: Path, name: str, rsa: bool) -> CA:
    cert_path, key_path = ca_paths(pki_dir, name)
    key = generate_key(rsa)
    now = datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_DURATION)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    # Key first: a crash in between leaves a lone key, which load reports as incomplete.
    write_key(key_path, key)
    write_certs(cert_path, [cert])
    return CA(name, cert_path, key_path, cert, key, (cert,))


def random_serial() -> int:
    # RFC 5280: positive, at most 20 octets.
    return secrets.randbits(159) | 1
