"""etcd-manager's readers of pki files, mirrored: what it accepts, it accepts here.

From kubernetes-sigs/etcd-manager pkg/pki/fs.go (LoadCA, loadPrivateKey, MutateKeypair) and
the client-go helpers it calls (keyutil.ParsePrivateKeyPEM, certutil.ParseCertsPEM).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----\n(.*?)-----END \1-----\n?", re.S)
_KEY_TYPES = (b"RSA PRIVATE KEY", b"EC PRIVATE KEY", b"PRIVATE KEY")


def pem_blocks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each PEM block; a body with headers (a line holding ':') keeps them."""
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(data)]


def der(body: bytes) -> bytes:
    return base64.b64decode(b"".join(body.split()))


def go_load_private_key(path: Path) -> rsa.RSAPrivateKey:
    """pkg/pki/fs.go loadPrivateKey, over the PEM forms keyutil.ParsePrivateKeyPEM takes."""
    for kind, body in pem_blocks(path.read_bytes()):
        if kind not in _KEY_TYPES:
            continue
        key = serialization.load_der_private_key(der(body), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"unexpected private key type in {path}: {type(key).__name__}")
        return key
    raise ValueError(f"{path}: data does not contain a valid RSA or ECDSA private key")


def go_parse_certs(path: Path) -> list[x509.Certificate]:
    """certutil.ParseCertsPEM."""
    certs = [
        x509.load_der_x509_certificate(der(body))
        for kind, body in pem_blocks(path.read_bytes())
        if kind == b"CERTIFICATE" and b":" not in body
    ]
    if not certs:
        raise ValueError(f"{path}: data does not contain any valid RSA or ECDSA certificates")
    return certs


def go_load_ca(pki_dir: Path, name: str) -> x509.Certificate:
    """pkg/pki/fs.go LoadCA: the primary certificate."""
    key = go_load_private_key(pki_dir / f"{name}.key")
    for cert in sorted(
        go_parse_certs(pki_dir / f"{name}.crt"), key=lambda c: c.public_bytes(serialization.Encoding.DER)
    ):
        if cert.public_key() == key.public_key():
            return cert
    raise ValueError(f"did not find certificate for private key {name}")


def go_load_keypair(directory: Path, name: str) -> None:
    """pkg/pki/fs.go MutateKeypair's reads: loadPrivateKey and ParseOneCertificate."""
    go_load_private_key(directory / f"{name}.key")
    assert len(go_parse_certs(directory / f"{name}.crt")) == 1


def is_pkcs1(key_path: Path) -> bool:
    ((kind, body),) = pem_blocks(key_path.read_bytes())
    key = go_load_private_key(key_path)
    pkcs1 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return kind == b"RSA PRIVATE KEY" and der(body) == pkcs1
