"""Identity on the peer API: certificates named after peer ids, and the TLS contexts using them.

Peer ids (etcdmgr.model.ids) may start with '-' or '_', so they are not always valid host names:
OpenSSL's host name check is off, and the transport compares the id in the certificate with the
one it expected right after the handshake (see peer_id_from_cert).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.x509.oid import NameOID

from etcdmgr.model.errors import InvalidData
from etcdmgr.model.ids import PeerId, parse_peer_id
from etcdmgr.pki.ca import CA
from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.leaf import issue_leaf

SERVER_PREFIX = "etcd-manager-server-"
CLIENT_PREFIX = "etcd-manager-client-"

CertKind = Literal["server", "client"]


def server_name(peer_id: str) -> str:
    return SERVER_PREFIX + peer_id


def client_name(peer_id: str) -> str:
    return CLIENT_PREFIX + peer_id


@dataclass(frozen=True)
class PeerTlsFiles:
    """The files one daemon uses on the peer API."""

    ca_bundle: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def issue_peer_tls_files(
    ca: CA, out_dir: Path, peer_id: str, duration: timedelta, *, now: datetime | None = None
) -> PeerTlsFiles:
    """Issue this daemon's server and client certificates (out_dir/server.*, out_dir/client.*)."""
    try:
        parse_peer_id(peer_id, "peer id")
    except InvalidData as e:
        raise PkiError(str(e)) from None
    name = server_name(peer_id)
    server_cert, server_key = issue_leaf(
        ca, out_dir, "server", name, [name], [], server=True, client=False, duration=duration, now=now
    )
    client_cert, client_key = issue_leaf(
        ca,
        out_dir,
        "client",
        client_name(peer_id),
        [],
        [],
        server=False,
        client=True,
        duration=duration,
        now=now,
    )
    return PeerTlsFiles(ca.cert_path, server_cert, server_key, client_cert, client_key)


def server_ssl_context(files: PeerTlsFiles) -> ssl.SSLContext:
    """Serve with our server certificate; require a client certificate from the CA bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _configure(ctx, files.ca_bundle, files.server_cert, files.server_key)
    return ctx


def client_ssl_context(files: PeerTlsFiles) -> ssl.SSLContext:
    """Connect with our client certificate; require a server certificate from the CA bundle."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False  # the caller checks the peer id instead (module docstring)
    _configure(ctx, files.ca_bundle, files.client_cert, files.client_key)
    return ctx


def _configure(ctx: ssl.SSLContext, ca_bundle: Path, cert: Path, key: Path) -> None:
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.verify_mode = ssl.CERT_REQUIRED
    try:
        ctx.load_verify_locations(cafile=str(ca_bundle))
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as e:
        raise PkiError(f"cannot load TLS files ({ca_bundle}, {cert}, {key}): {e}") from e


def peer_id_from_cert(
    cert: bytes | x509.Certificate | ssl.SSLObject | None, *, kind: CertKind | None = None
) -> PeerId | None:
    """The peer id a verified certificate names, or None when it names none (or two).

    kind restricts the accepted name to server (`etcd-manager-server-<id>`, CN or DNS SAN)
    or client (`etcd-manager-client-<id>`) certificates.
    """
    if isinstance(cert, ssl.SSLObject):
        cert = cert.getpeercert(binary_form=True)
    if cert is None:
        return None
    if isinstance(cert, bytes):
        try:
            cert = x509.load_der_x509_certificate(cert)
        except ValueError:
            return None
    prefixes = {"server": (SERVER_PREFIX,), "client": (CLIENT_PREFIX,), None: (SERVER_PREFIX, CLIENT_PREFIX)}
    ids = {
        name[len(prefix) :] for name in _names(cert) for prefix in prefixes[kind] if name.startswith(prefix)
    }
    if len(ids) != 1:
        return None
    try:
        return parse_peer_id(ids.pop(), "certificate name")
    except InvalidData:
        return None


def _names(cert: x509.Certificate) -> list[str]:
    names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return names
    return names + san.get_values_for_type(x509.DNSName)
