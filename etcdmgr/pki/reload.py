"""TLS files that change while a daemon runs (a CA rotation, a renewed certificate): a cheap look
for changes, the peer API's contexts rebuilt from the files, and one line saying what changed.

Blocking (stat, reads, context loading): run these in a worker thread.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from etcdmgr.pki.keys import load_certs
from etcdmgr.pki.leaf import issued_by
from etcdmgr.pki.peer_tls import PeerTlsFiles, client_ssl_context, server_ssl_context

# (inode, size, mtime, ctime) of a file, or None when it cannot be read: a replaced, edited or
# appended file changes it. Taken every few seconds, it costs a stat per file.
Stamp = tuple[int, int, int, int] | None


def stamps(paths: Iterable[Path]) -> tuple[Stamp, ...]:
    out: list[Stamp] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


def fingerprint(cert: x509.Certificate) -> str:
    """Short enough for a log line, long enough to tell an old CA from a new one of the same name."""
    return "sha256:" + cert.fingerprint(hashes.SHA256()).hex()[:12]


def describe(cert: x509.Certificate, issuers: Iterable[x509.Certificate] = ()) -> str:
    """`<CN> <fingerprint> until <date>`, and `from <issuer fingerprint>` when one of `issuers`
    signed it."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = str(cns[0].value) if cns else cert.subject.rfc4514_string()
    text = f"{name} {fingerprint(cert)} until {cert.not_valid_after_utc:%Y-%m-%d}"
    for issuer in issuers:
        if issuer != cert and issued_by(cert, issuer):
            return f"{text} from {fingerprint(issuer)}"
    return text


@dataclass(frozen=True)
class PeerTlsSummary:
    """What the peer API's contexts hold, as text: equal summaries mean equal certificates."""

    trusts: str
    server: str
    client: str

    def changes_from(self, old: PeerTlsSummary) -> str | None:
        """`trusts X (was Y); serves Z; ...` naming what differs from `old`, or None."""
        parts = []
        if self.trusts != old.trusts:
            parts.append(f"trusts {self.trusts} (was {old.trusts})")
        if self.server != old.server:
            parts.append(f"serves {self.server}")
        if self.client != old.client:
            parts.append(f"calls with {self.client}")
        return "; ".join(parts) or None


def summarize(files: PeerTlsFiles) -> PeerTlsSummary:
    """Raises PkiError when a file cannot be read (e.g. caught emptied by an editor; one caught
    half appended to reads as before, the incomplete certificate left out)."""
    bundle = load_certs(files.ca_bundle)
    return PeerTlsSummary(
        trusts=" + ".join(describe(c) for c in bundle),
        server=describe(load_certs(files.server_cert)[0], bundle),
        client=describe(load_certs(files.client_cert)[0], bundle),
    )


@dataclass(frozen=True)
class PeerTlsContexts:
    """The peer API's server and client contexts, and what they were built from."""

    server: ssl.SSLContext
    client: ssl.SSLContext
    summary: PeerTlsSummary


def load_peer_contexts(files: PeerTlsFiles, summary: PeerTlsSummary | None = None) -> PeerTlsContexts:
    """New contexts from the files (summarized first unless given). PkiError when they do not load."""
    summary = summary or summarize(files)
    return PeerTlsContexts(server_ssl_context(files), client_ssl_context(files), summary)
