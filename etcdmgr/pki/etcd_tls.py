"""Certificates for etcd itself, issued by each node into `<data dir>/pki/<cluster token>/`:

    peers/ca.crt, me.crt, me.key          etcd-peers-ca bundle; member-to-member certificate
    clients/ca.crt, server.crt, server.key
                                          etcd-clients-ca bundle; client-port server certificate
    clients/etcd-manager-client.crt, .key the manager's own client certificate (etcdctl, /health)

The member certificates name every host of the member's peer and client URLs, the node address,
127.0.0.1 and localhost. 127.0.0.1 matters: with peer client-cert auth, etcd checks a peer's
certificate against the address the connection comes from, and loopback connections come from
127.0.0.1. The bundles copied beside the leafs hold every certificate of the CA file, so a CA
can be rotated; leafs are signed by the certificate that matches the CA key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from etcdmgr.model.tls import ClientTLS, TLSFiles
from etcdmgr.pki.ca import CA, CLIENTS_CA, PEERS_CA, load_or_create_ca
from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.keys import load_certs, write_certs
from etcdmgr.pki.leaf import issue_leaf, renewal_reason

PEERS_DIR = "peers"
CLIENTS_DIR = "clients"
MANAGER_CLIENT_NAME = "etcd-manager-client"
MANAGER_CLIENT_CN = "etcd-manager"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


@dataclasses.dataclass(frozen=True)
class EtcdNodeTls:
    """The files one node's etcd and its manager use: ready for EtcdLaunch and EtcdClient."""

    peer: TLSFiles
    client: TLSFiles
    manager: ClientTLS


def node_tls_paths(out_dir: Path) -> EtcdNodeTls:
    """Where issue_etcd_node_certs writes under out_dir (the files may not exist yet)."""
    peers, clients = out_dir / PEERS_DIR, out_dir / CLIENTS_DIR
    return EtcdNodeTls(
        peer=TLSFiles(peers / "me.crt", peers / "me.key", peers / "ca.crt"),
        client=TLSFiles(clients / "server.crt", clients / "server.key", clients / "ca.crt"),
        manager=ClientTLS(clients / "ca.crt", *_manager_files(out_dir)),
    )


def _manager_files(out_dir: Path) -> tuple[Path, Path]:
    clients = out_dir / CLIENTS_DIR
    return clients / f"{MANAGER_CLIENT_NAME}.crt", clients / f"{MANAGER_CLIENT_NAME}.key"


def cert_hosts(
    peer_urls: Sequence[str], client_urls: Sequence[str], address: str
) -> tuple[list[str], list[ipaddress.IPv4Address | ipaddress.IPv6Address]]:
    """(DNS names, IP addresses) a member's certificates name, without duplicates."""
    hosts = [urllib.parse.urlsplit(u).hostname or "" for u in (*peer_urls, *client_urls)]
    dns: dict[str, None] = {}
    ips: dict[ipaddress.IPv4Address | ipaddress.IPv6Address, None] = {}
    for host in (*hosts, address, *LOOPBACK_HOSTS):
        if not host:
            continue
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            dns[host.lower()] = None
            continue
        # A wildcard listen address is nothing a client can dial or verify.
        if not ip.is_unspecified:
            ips[ip] = None
    return list(dns), list(ips)


def issue_etcd_node_certs(
    pki_dir: Path,
    out_dir: Path,
    member_name: str,
    peer_urls: Sequence[str],
    client_urls: Sequence[str],
    address: str,
    duration: timedelta,
    *,
    now: datetime | None = None,
) -> EtcdNodeTls:
    """(Re)issue this member's peer and client-port certificates and the manager's client
    certificate from the CAs in pki_dir, and copy the CA bundles; keys on disk are reused.

    client_urls should hold every client URL the member may serve, quarantine ones included.
    """
    peers_ca = load_or_create_ca(pki_dir, PEERS_CA, create=False)
    clients_ca = load_or_create_ca(pki_dir, CLIENTS_CA, create=False)
    paths = node_tls_paths(out_dir)
    dns, ips = cert_hosts(peer_urls, client_urls, address)
    # Bundles first: a peer must trust a new CA before it meets a leaf signed by it.
    _write_bundle(peers_ca, paths.peer.ca)
    _write_bundle(clients_ca, paths.client.ca)
    for ca, files in ((peers_ca, paths.peer), (clients_ca, paths.client)):
        issue_leaf(
            ca,
            files.cert.parent,
            files.cert.stem,
            member_name,
            dns,
            ips,
            server=True,
            client=True,
            duration=duration,
            now=now,
        )
    _issue_manager_cert(clients_ca, out_dir, duration, now)
    return paths


def manager_client_tls(
    pki_dir: Path, out_dir: Path, duration: timedelta, *, now: datetime | None = None
) -> ClientTLS:
    """The manager's etcd client certificate under out_dir, issued only when missing or due.

    Every member's client port trusts etcd-clients-ca, so the leader reaches all members with it.
    """
    clients_ca = load_or_create_ca(pki_dir, CLIENTS_CA, create=False)
    files = node_tls_paths(out_dir).manager
    if _bundle_stale(clients_ca, files.ca) or _leaf_reason(clients_ca, *_manager_files(out_dir), now):
        _write_bundle(clients_ca, files.ca)
        _issue_manager_cert(clients_ca, out_dir, duration, now)
    return files


def needs_reissue(
    pki_dir: Path,
    out_dir: Path,
    member_name: str,
    peer_urls: Sequence[str],
    client_urls: Sequence[str],
    address: str,
    *,
    now: datetime | None = None,
) -> str | None:
    """Why the files under out_dir must be reissued, or None when they are fine.

    Due when a file is missing or unreadable, a certificate is not valid yet (the clock went
    back), has less than a third of its lifetime left, is not signed by the certificate matching
    the CA key, does not match its key, or names other hosts or another member; or when a CA
    file's certificates changed. Reads a
    few small files and checks a few signatures: cheap enough to run every minute.
    """
    peers_ca = load_or_create_ca(pki_dir, PEERS_CA, create=False)
    clients_ca = load_or_create_ca(pki_dir, CLIENTS_CA, create=False)
    paths = node_tls_paths(out_dir)
    dns, ips = cert_hosts(peer_urls, client_urls, address)
    wanted: set[x509.GeneralName] = {x509.DNSName(n) for n in dns} | {x509.IPAddress(ip) for ip in ips}
    for ca, files in ((peers_ca, paths.peer), (clients_ca, paths.client)):
        if _bundle_stale(ca, files.ca):
            return f"{files.ca} differs from the CA file {ca.cert_path}"
        if reason := _leaf_reason(ca, files.cert, files.key, now):
            return f"{files.cert} {reason}"
        if _names(files.cert) != (member_name, wanted):
            return f"{files.cert} names another member or other hosts"
    manager_cert, manager_key = _manager_files(out_dir)
    if reason := _leaf_reason(clients_ca, manager_cert, manager_key, now):
        return f"{manager_cert} {reason}"
    return None


def _issue_manager_cert(ca: CA, out_dir: Path, duration: timedelta, now: datetime | None) -> None:
    issue_leaf(
        ca,
        out_dir / CLIENTS_DIR,
        MANAGER_CLIENT_NAME,
        MANAGER_CLIENT_CN,
        [],
        [],
        server=False,
        client=True,
        duration=duration,
        now=now,
    )


def _write_bundle(ca: CA, path: Path) -> None:
    write_certs(path, list(ca.bundle))


def _bundle_stale(ca: CA, path: Path) -> bool:
    try:
        return load_certs(path) != list(ca.bundle)
    except PkiError:
        return True


def _leaf_reason(ca: CA, cert: Path, key: Path, now: datetime | None) -> str | None:
    # Only the signing certificate counts: after a CA key rotation, leafs signed by an older
    # certificate that the bundle still trusts must move to the new key.
    signer_only = dataclasses.replace(ca, bundle=(ca.cert,))
    return renewal_reason(cert, now or datetime.now(UTC), ca=signer_only, key_path=key)


def _names(cert_path: Path) -> tuple[str, set[x509.GeneralName]]:
    """(common name, SANs) of a certificate; empty when unreadable."""
    try:
        cert = load_certs(cert_path)[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (PkiError, IndexError, x509.ExtensionNotFound):
        return "", set()
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return (str(cns[0].value) if cns else ""), set(san)
