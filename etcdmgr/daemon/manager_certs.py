"""The manager's own certificates: peer API server and client (from etcd-manager-ca) and its
etcd client certificate (from etcd-clients-ca); issued at start and renewed while running."""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import trio

from etcdmgr.daemon.config import DaemonConfig, PeerTls
from etcdmgr.model.tls import ClientTLS
from etcdmgr.node.layout import DataLayout
from etcdmgr.pki.ca import ALL_CAS, CLIENTS_CA, MANAGER_CA, ca_exists, ca_paths, load_or_create_ca
from etcdmgr.pki.etcd_tls import manager_client_tls
from etcdmgr.pki.leaf import needs_renewal
from etcdmgr.pki.peer_tls import PeerTlsFiles, client_ssl_context, issue_peer_tls_files, server_ssl_context

log = logging.getLogger(__name__)


@dataclass
class ManagerCerts:
    config: DaemonConfig
    layout: DataLayout
    peer_id: str
    peer_files: PeerTlsFiles | None = None
    server_ctx: ssl.SSLContext | None = None
    client_ctx: ssl.SSLContext | None = None
    etcd_tls: ClientTLS | None = None

    def __post_init__(self) -> None:
        if self.config.peer_tls is not PeerTls.OFF:
            self.peer_files = self._issue_peer_files()
            self.server_ctx = server_ssl_context(self.peer_files)
            self.client_ctx = client_ssl_context(self.peer_files)
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

    def reissue_due(self) -> bool:
        """Reissue what has less than a third of its life left (blocking: key generation and
        fsyncs); True when the peer API files changed. The etcd client certificate is read per call."""
        reissued = False
        if self.peer_files is not None:
            assert self.config.pki_dir is not None
            ca = load_or_create_ca(self.config.pki_dir, MANAGER_CA, create=False)
            now = datetime.now(UTC)
            files = self.peer_files
            if needs_renewal(files.server_cert, now, ca=ca) or needs_renewal(files.client_cert, now, ca=ca):
                log.info("reissuing the peer API certificates")
                self.peer_files = self._issue_peer_files()
                reissued = True
        self.etcd_tls = self._etcd_client_tls()
        return reissued

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

    def _reload_contexts(self) -> None:
        """The contexts load the new files in place, so new connections use them. On the event
        loop's thread: handshakes read the contexts there."""
        files = self.peer_files
        if files is not None and self.server_ctx is not None and self.client_ctx is not None:
            self.server_ctx.load_cert_chain(files.server_cert, files.server_key)
            self.client_ctx.load_cert_chain(files.client_cert, files.client_key)

    async def renew(self, every: float) -> None:
        while True:
            await trio.sleep(every)
            try:
                if await trio.to_thread.run_sync(self.reissue_due):
                    self._reload_contexts()
            except Exception as e:  # a failed renewal is retried; the old files still serve meanwhile
                log.warning("certificate renewal failed: %s", e)
