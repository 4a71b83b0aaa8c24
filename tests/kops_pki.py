"""A pki folder laid out as kops' nodeup lays out /etc/kubernetes/pki/etcd-manager-<cluster>.

nodeup (nodeup/pkg/model/etcd_manager_tls.go) writes, for etcd-manager-ca, etcd-peers-ca and
etcd-clients-ca, `<name>.key` (the primary keypair's key, pkg/pki/privatekey.go: RSA as
`RSA PRIVATE KEY`, PKCS#1) and `<name>.crt` (every trusted certificate of the keyset, oldest
first: upup/pkg/fi/ca.go ToCertificateBytes). Keys are RSA 2048 (pkg/pki DefaultPrivateKeySize);
CA certificates carry kops' "CA,KeyUsageCRLSign,KeyUsageCertSign" (pkg/pki/issue.go) and Go's
key id, here the truncated SHA-256 of newer Go (golang/go#71746), not the SHA-1 etcdmgr derives.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

CAS = ("etcd-manager-ca", "etcd-peers-ca", "etcd-clients-ca")


def _go_key_id(key: rsa.RSAPrivateKey) -> bytes:
    raw = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return hashlib.sha256(raw).digest()[:20]


def kops_ca_cert(key: rsa.RSAPrivateKey, common_name: str, not_before: datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(secrets.randbits(120))
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=3650))
        .add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier(_go_key_id(key)), critical=False)
        .sign(key, hashes.SHA256())
    )


def write_kops_pki(pki_dir: Path, cluster: str = "main") -> None:
    """Each CA rotated once: its .crt holds the retired certificate, then the primary one, and
    its .key the primary key. The clients CA of main is shared, named without the cluster."""
    pki_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    now = datetime.now(UTC)
    for name in CAS:
        common_name = name if name == "etcd-clients-ca" else f"{name}-{cluster}"
        retired = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        primary = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        certs = [
            kops_ca_cert(retired, common_name, now - timedelta(days=400)),
            kops_ca_cert(primary, common_name, now - timedelta(hours=1)),
        ]
        crt = pki_dir / f"{name}.crt"
        crt.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        os.chmod(crt, 0o644)
        key = pki_dir / f"{name}.key"
        key.write_bytes(
            primary.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        os.chmod(key, 0o600)
