"""The manager's own certificates: peer API server and client (from etcd-manager-ca) and its
etcd client certificate (from etcd-clients-ca); issued at start, renewed and reloaded while running.

The peer API's SSL contexts are rebuilt whenever what they hold changed on disk: the CA bundle
(a CA rotation adds or drops a certificate, which an SSL context cannot forget), or a leaf
reissued because it ran low or the CA key changed. New connections use the new contexts; open
ones go on with the old until they close.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from etcdmgr.daemon.config import DaemonConfig, PeerTls
from etcdmgr.model.tls import ClientTLS
from etcdmgr.node.layout import DataLayout
from etcdmgr.peer.streams import TlsSource
from etcdmgr.pki.ca import ALL_CAS, CLIENTS_CA, MANAGER_CA, ca_exists, ca_paths, load_or_create_ca
from etcdmgr.pki.etcd_tls import manager_client_tls
from etcdmgr.pki.leaf import renewal_reason
from etcdmgr.pki.peer_tls import PeerTlsFiles, issue_peer_tls_files
from etcdmgr.pki.reload import PeerTlsContexts, load_peer_contexts, summarize

log = logging.getLogger(__name__)


@dataclass
class ManagerCerts:
    config: DaemonConfig
    layout: DataLayout
    peer_id: str
    peer_files: PeerTlsFiles | None = None
    contexts: PeerTlsContexts | None = None
    etcd_tls: ClientTLS | None = None

    def __post_init__(self) -> None:
        if self.config.peer_tls is not PeerTls.OFF:
            self.peer_files = self._issue_peer_files()
            self.contexts = load_peer_contexts(self.peer_files)
        self.etcd_tls = self._etcd_client_tls()

    def _issue_peer_files(self) -> PeerTlsFiles:
        assert self.config.pki_dir is not None
        ca = load_or_create_ca(self.config.pki_dir, MANAGER_CA, create=False)
        return issue_peer_tls_files(ca, self.layout.manager_pki, self.peer_id, self.config.cert_duration)

    def _etcd_client_tls(self) -> ClientTLS | None:
        # Held even with --etcd-insecure, so a leader reaches members that already moved to TLS.
        pki = self.config.pki_dir
        if pki is None or not ca_exists(pki, CLIENTS_CA):
            return None
        return manager_client_tls(pki, self.layout.manager_pki, self.config.cert_duration)

    def server_tls(self) -> TlsSource | None:
        """What the peer server handshakes with: the contexts of the moment (None: no TLS)."""
        return None if self.contexts is None else self._server_context

    def client_tls(self) -> TlsSource | None:
        return None if self.contexts is None else self._client_context

    def _server_context(self) -> ssl.SSLContext:
        assert self.contexts is not None
        return self.contexts.server

    def _client_context(self) -> ssl.SSLContext:
        assert self.contexts is not None
        return self.contexts.client

    def watched_files(self) -> list[Path]:
        """The files whose change calls for a look at once: every CA's certificate and key, and
        the peer API's own certificates."""
        pki = self.config.pki_dir
        files = [p for name in ALL_CAS for p in ca_paths(pki, name)] if pki is not None else []
        if self.peer_files is not None:
            f = self.peer_files
            files += [f.server_cert, f.server_key, f.client_cert, f.client_key]
        return files

    def check(self, now: datetime | None = None) -> tuple[PeerTlsContexts | None, str | None]:
        """Reissue what is due, then load new peer API contexts if what they hold changed.
        Returns (the contexts to use, a line on what changed or None). Blocking: key generation,
        fsyncs, file reads; run it in a worker thread and install the contexts on the event loop.
        Raises PkiError or OSError: the old files and contexts still serve meanwhile."""
        notes = []
        if self.peer_files is not None:
            assert self.config.pki_dir is not None
            ca = load_or_create_ca(self.config.pki_dir, MANAGER_CA, create=False)
            # Only the signing certificate counts: after a CA key change, leafs signed by an
            # older certificate that the bundle still trusts move to the new key.
            signer = dataclasses.replace(ca, bundle=(ca.cert,))
            files, at = self.peer_files, now or datetime.now(UTC)
            due = [
                f"{cert.name} {reason}"
                for cert, key in (
                    (files.server_cert, files.server_key),
                    (files.client_cert, files.client_key),
                )
                if (reason := renewal_reason(cert, at, ca=signer, key_path=key))
            ]
            if due:
                notes.append(f"reissued the peer API certificates ({'; '.join(due)})")
                self.peer_files = self._issue_peer_files()
        self.etcd_tls = self._etcd_client_tls()
        if self.peer_files is None or self.contexts is None:
            return self.contexts, None
        summary = summarize(self.peer_files)
        changes = summary.changes_from(self.contexts.summary)
        if changes is None:
            return self.contexts, None
        return load_peer_contexts(self.peer_files, summary), "; ".join([*notes, changes])

    def certificate_files(self) -> dict[str, Path]:
        """The certificates this daemon works with, by name: the CAs and its own."""
        files: dict[str, Path] = {}
        if self.config.pki_dir is not None:
            files |= {name: ca_paths(self.config.pki_dir, name)[0] for name in ALL_CAS}
        if self.peer_files is not None:
            files |= {
                "peer-api-server": self.peer_files.server_cert,
                "peer-api-client": self.peer_files.client_cert,
            }
        if self.etcd_tls is not None and self.etcd_tls.cert is not None:
            files["etcd-client"] = self.etcd_tls.cert
        return files
