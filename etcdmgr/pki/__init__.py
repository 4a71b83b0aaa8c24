"""Certificate authorities and leaf certificates, for the peer API and for etcd."""

from etcdmgr.pki.ca import ALL_CAS, CLIENTS_CA, MANAGER_CA, PEERS_CA, load_or_create_ca
from etcdmgr.pki.errors import PkiError
from etcdmgr.pki.files import init_pki_dir, loose_keys
from etcdmgr.pki.leaf import issue_leaf, needs_renewal
from etcdmgr.pki.peer_tls import (
    PeerTlsFiles,
    client_ssl_context,
    issue_peer_tls_files,
    peer_id_from_cert,
    server_ssl_context,
)

__all__ = [
    "ALL_CAS",
    "CLIENTS_CA",
    "MANAGER_CA",
    "PEERS_CA",
    "PeerTlsFiles",
    "PkiError",
    "client_ssl_context",
    "init_pki_dir",
    "issue_leaf",
    "issue_peer_tls_files",
    "load_or_create_ca",
    "loose_keys",
    "needs_renewal",
    "peer_id_from_cert",
    "server_ssl_context",
]
