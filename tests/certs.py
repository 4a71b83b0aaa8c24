"""Make CAs and peer-API certificates in a temporary folder, through etcdmgr.pki itself."""

from __future__ import annotations

import ssl
from datetime import timedelta
from pathlib import Path

from etcdmgr.pki import (
    MANAGER_CA,
    PeerTlsFiles,
    client_ssl_context,
    issue_peer_tls_files,
    load_or_create_ca,
    server_ssl_context,
)

DAY = timedelta(days=1)


def peer_files(root: Path, peer_id: str, *, ca_dir: str = "pki", rsa: bool = False) -> PeerTlsFiles:
    """Server and client certificates for peer_id, from the etcd-manager CA in root/ca_dir."""
    ca = load_or_create_ca(root / ca_dir, MANAGER_CA, create=True, rsa=rsa)
    return issue_peer_tls_files(ca, root / ca_dir / "peers" / peer_id, peer_id, DAY)


def peer_contexts(root: Path, peer_id: str, *, ca_dir: str = "pki") -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) for peer_id."""
    files = peer_files(root, peer_id, ca_dir=ca_dir)
    return server_ssl_context(files), client_ssl_context(files)
