"""Private keys and PEM files: ECDSA P-256 by default, RSA 2048 on request.

RSA keys are written as kops and etcd-manager write them (PKCS#1, `RSA PRIVATE KEY`), so
etcd-manager, which loads RSA keys only, can use what etcdmgr writes; ECDSA keys as PKCS#8.
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.files import KEY_DIR_MODE, KEY_MODE
from etcdmgr.util.atomic import write_atomic

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def generate_key(use_rsa: bool) -> PrivateKey:
    if use_rsa:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKey) -> bytes:
    form = (
        serialization.PrivateFormat.TraditionalOpenSSL  # PKCS#1 for RSA
        if isinstance(key, rsa.RSAPrivateKey)
        else serialization.PrivateFormat.PKCS8
    )
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())


def load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as e:
        raise PkiError(f"cannot read private key {path}: {e}") from e
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{path}: only ECDSA and RSA keys are supported, got {type(key).__name__}")
    return key


def write_key(path: Path, key: PrivateKey) -> None:
    """0600 in a folder made 0700 if missing, whatever the umask."""
    write_atomic(path, key_pem(key), mode=KEY_MODE, dir_mode=KEY_DIR_MODE)


def write_certs(path: Path, certs: list[x509.Certificate]) -> None:
    """Certificates (public, 0644) beside keys: a missing folder is made 0700 all the same."""
    write_atomic(path, certs_pem(certs), mode=0o644, dir_mode=KEY_DIR_MODE)


def load_certs(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file (a CA file may hold several while CAs rotate)."""
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as e:
        raise PkiError(f"cannot read certificates from {path}: {e}") from e
    return certs


def certs_pem(certs: list[x509.Certificate]) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)
