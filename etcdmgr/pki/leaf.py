"""Leaf certificates: issue (reusing the key on disk) and decide when to reissue."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from etcdmgr.pki.ca import BACKDATE, CA, random_serial
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

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def issue_leaf(
    ca: CA,
    out_dir: Path,
    basename: str,
    common_name: str,
    dns_names: Sequence[str],
    ip_addresses: Sequence[str | IPAddress],
    server: bool,
    client: bool,
    duration: timedelta,
    *,
    now: datetime | None = None,
) -> tuple[Path, Path]:
    """Write `<out_dir>/<basename>.crt` and `.key`, signed by ca; returns (cert path, key path).

    An existing readable key is reused, so a reissue never invalidates pinned keys or running
    processes that still hold the old certificate.
    """
    if not (server or client):
        raise PkiError(f"certificate {common_name}: neither server nor client usage requested")
    ips = [_parse_ip(ip) for ip in ip_addresses]
    now = now or datetime.now(UTC)
    cert_path, key_path = out_dir / f"{basename}.crt", out_dir / f"{basename}.key"
    key = _reuse_or_generate_key(key_path, ca.uses_rsa)

    # A leaf must not outlive its CA: verifiers would refuse it anyway.
    not_after = min(now + duration, ca.cert.not_valid_after_utc)
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server else []
    usages += [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names)]
    sans += [x509.IPAddress(ip) for ip in dict.fromkeys(ips)]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(random_serial())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=ca.uses_rsa,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(_authority_key_id(ca), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    write_certs(cert_path, [cert])
    return cert_path, key_path


def needs_renewal(
    cert_path: Path,
    now: datetime,
    fraction: float = 1 / 3,
    *,
    ca: CA | None = None,
    key_path: Path | None = None,
) -> bool:
    """True when the certificate should be reissued (see renewal_reason)."""
    return renewal_reason(cert_path, now, fraction, ca=ca, key_path=key_path) is not None


def renewal_reason(
    cert_path: Path,
    now: datetime,
    fraction: float = 1 / 3,
    *,
    ca: CA | None = None,
    key_path: Path | None = None,
) -> str | None:
    """Why the certificate should be reissued, or None.

    That is when it is missing or unreadable, not valid yet at `now` (this host's clock went
    back since it was issued: its peers, on the right time, would refuse it until then), has
    less than `fraction` of its lifetime left, is not signed by any certificate of ca's bundle
    (the CA was rotated), or does not match the key at key_path.
    """
    try:
        cert = load_certs(cert_path)[0]
    except (PkiError, IndexError):
        return "is missing or unreadable"
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    if start > now:
        return f"is not valid before {start:%Y-%m-%dT%H:%M:%SZ}, later than now ({now:%Y-%m-%dT%H:%M:%SZ}): the clock went back"
    # The lifetime runs from issue, not from the backdated start: counting the backdating made
    # a short-lived certificate look due for renewal the moment it was issued.
    issued = min(start + BACKDATE, end)
    if now >= end or (end - now) < (end - issued) * fraction:
        return "is expiring"
    if ca is not None and not any(issued_by(cert, c) for c in ca.bundle):
        return f"is not from the current {ca.name} key"
    if key_path is not None:
        try:
            if same_public_key(cert, load_key(key_path)):
                return None
        except PkiError:
            pass
        return "does not match its key"
    return None


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _authority_key_id(ca: CA) -> x509.AuthorityKeyIdentifier:
    """The CA certificate's own key id where it has one: CAs made elsewhere (kops with newer Go:
    a truncated SHA-256) may derive it other than from the SHA-1 of the key, and OpenSSL does not
    take a certificate whose authority key id differs from its issuer's key id as issued by it."""
    try:
        ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _reuse_or_generate_key(key_path: Path, use_rsa: bool) -> PrivateKey:
    if key_path.exists():
        try:
            return load_key(key_path)
        except PkiError as e:
            log.warning("replacing unreadable key: %s", e)
    key = generate_key(use_rsa)
    write_key(key_path, key)
    return key


def _parse_ip(value: str | IPAddress) -> IPAddress:
    if not isinstance(value, str):
        return value
    try:
        return ipaddress.ip_address(value)
    except ValueError as e:
        raise PkiError(f"{value!r} is not an IP address") from e
